//! Keys and mesh membership on the command line: `spore key`, `spore node id`,
//! `spore mesh init | admit | join | revoke | show` (docs/cli.md, spec/trust.md).

use std::os::unix::fs::PermissionsExt;

use crate::support::{RunningNode, Spore, exit};

const NOT_ALLOWED: i32 = 9;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn peer_id(spore: &Spore) -> String {
    let id = spore.run(&["--json", "node", "id"]).json();
    id["peer_id"].as_str().unwrap().to_owned()
}

/// `spore mesh admit PEER ARGS...` on `mesh`: the certificate's text.
fn admit(mesh: &Spore, peer: &str, args: &[&str]) -> String {
    let mut all = vec!["mesh", "admit", peer];
    all.extend(args);
    mesh.run(&all).ok().to_owned()
}

/// A mesh made on one home, and a second home admitted to it as `edge`.
fn two_homes() -> (Spore, Spore) {
    let (cloud, edge) = (Spore::new(), Spore::new());
    cloud.run(&["mesh", "init", "--role", "cloud"]).ok();
    let certificate = admit(&cloud, &peer_id(&edge), &["--role", "edge"]);
    edge.run(&["mesh", "join", &certificate]).ok();
    (cloud, edge)
}

#[test]
fn a_key_is_made_under_a_free_name_listed_and_kept_owner_only() {
    let spore = Spore::new();
    let public = spore.run(&["key", "new", "publisher"]).ok().to_owned();
    assert!(
        public.starts_with("ed25519:") && public.len() == 72,
        "{public}"
    );
    let made = spore.run(&["--json", "key", "new", "mesh"]).json();
    assert_eq!(made["name"], "mesh");

    let file = spore.home().join("keys/publisher.key");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&spore.home().join("keys")), 0o700);
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .starts_with("ed25519-secret:")
    );

    let listed = spore.run(&["key", "ls"]).ok().to_owned();
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].starts_with("mesh ") && lines[1].starts_with("publisher "));
    assert!(lines[1].ends_with(&public), "{listed}");
    let rows = spore.run(&["--json", "key", "ls"]).json();
    assert_eq!(
        rows,
        serde_json::json!([
            { "name": "mesh", "public_key": made["public_key"] },
            { "name": "publisher", "public_key": public },
        ])
    );

    let secret = std::fs::read_to_string(&file).unwrap();
    let refused = spore.run(&["key", "new", "publisher"]);
    let message = refused.fails_with(exit::USAGE);
    assert!(
        message.contains("holds a key named `publisher` already"),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), secret, "kept");
    let message = spore
        .run(&["key", "new", "Bad/Name"])
        .fails_with(exit::USAGE)
        .to_owned();
    assert!(message.contains("is not a label"), "{message}");
}

#[test]
fn a_node_id_is_the_one_its_running_node_uses() {
    let spore = Spore::new();
    let text = spore.run(&["node", "id"]).ok().to_owned();
    let id = spore.run(&["--json", "node", "id"]).json();
    assert_eq!(
        text,
        format!(
            "{}\n{}",
            id["peer_id"].as_str().unwrap(),
            id["key"].as_str().unwrap()
        )
    );
    assert_eq!(mode(&spore.home().join("identity.key")), 0o600);
    let node = RunningNode::start_with(spore, &[]);
    assert_eq!(node.peer_id, id["peer_id"].as_str().unwrap());
}

#[test]
fn two_homes_make_a_mesh_by_init_admit_and_join() {
    let (cloud, edge) = (Spore::new(), Spore::new());
    let init = cloud
        .run(&["--json", "mesh", "init", "--role", "cloud"])
        .json();
    let mesh = init["mesh"].as_str().unwrap().to_owned();
    assert_eq!(init["key"], "mesh");
    assert_eq!(init["made_key"], true);
    assert_eq!(init["roles"], serde_json::json!(["cloud"]));
    assert_eq!(init["expires_ms"], serde_json::Value::Null);
    assert_eq!(init["peer_id"].as_str().unwrap(), peer_id(&cloud));
    // Run again it reuses the key: the same mesh.
    let text = cloud
        .run(&["mesh", "init", "--role", "cloud"])
        .ok()
        .to_owned();
    assert_eq!(text.lines().next(), Some(mesh.as_str()), "{text}");
    assert!(
        text.contains("spore mesh admit"),
        "says what to run next: {text}"
    );

    let peer = peer_id(&edge);
    let certificate = admit(
        &cloud,
        &peer,
        &[
            "--role", "edge", "--role", "alpha", "--role", "edge", "--serves", "sensor",
        ],
    );
    assert!(
        certificate.starts_with("spore-membership-1:"),
        "{certificate}"
    );
    let joined = edge.run_with_stdin(&["mesh", "join", "-"], Some(&certificate));
    let joined = joined.ok();
    assert!(joined.contains(&format!("joined mesh {mesh}")), "{joined}");
    assert!(
        joined.contains("roles        alpha, edge"),
        "sorted, without repeats: {joined}"
    );
    assert!(joined.contains("serves       sensor"), "{joined}");
    assert!(joined.contains("expires      never"), "{joined}");

    let shown = edge.run(&["--json", "mesh", "show"]).json();
    assert_eq!(shown["mesh"], mesh.as_str());
    assert_eq!(shown["peer_id"], peer.as_str());
    assert_eq!(shown["roles"], serde_json::json!(["alpha", "edge"]));
    assert_eq!(shown["serves"], serde_json::json!(["sensor"]));
    assert_eq!(shown["status"], "member");
    assert_eq!(shown["revocations"], 0);
    assert_eq!(
        shown["key"],
        serde_json::Value::Null,
        "the edge cannot admit"
    );
    let shown = cloud.run(&["--json", "mesh", "show"]).json();
    assert_eq!(shown["mesh"], mesh.as_str());
    assert_eq!(shown["status"], "member");
    assert_eq!(shown["key"], "mesh");
    let text = cloud.run(&["mesh", "show"]).ok().to_owned();
    assert!(text.contains("its key `mesh` is in this home"), "{text}");
    assert!(text.contains("status       member"), "{text}");

    // A certificate from a file, and one written to a file by `--out`, by identity key.
    let key = edge.run(&["--json", "node", "id"]).json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = edge.home().join("cert.txt");
    let written = cloud
        .run(&[
            "--json",
            "mesh",
            "admit",
            &key,
            "--expires",
            "30d",
            "--out",
            file.to_str().unwrap(),
        ])
        .json();
    assert_eq!(written["peer_id"], peer.as_str());
    let days = written["expires_ms"].as_u64().unwrap() - written["issued_ms"].as_u64().unwrap();
    assert_eq!(days, 30 * 24 * 3600 * 1000);
    let joined = edge
        .run(&["--json", "mesh", "join", file.to_str().unwrap()])
        .json();
    assert_eq!(joined["expires_ms"], written["expires_ms"]);
    assert_eq!(joined["roles"], serde_json::json!([]));
}

#[test]
fn join_refuses_a_certificate_for_another_node_a_tampered_one_and_an_expired_one() {
    let (cloud, edge, stranger) = (Spore::new(), Spore::new(), Spore::new());
    cloud.run(&["mesh", "init"]).ok();
    let peer = peer_id(&edge);

    let theirs = admit(&cloud, &peer_id(&stranger), &[]);
    let message = edge
        .run(&["mesh", "join", &theirs])
        .fails_with(NOT_ALLOWED)
        .to_owned();
    assert!(message.contains("wrong node"), "{message}");

    // `edge` raised to `edgf` in the signed body: the CBOR text string "edge".
    let honest = admit(&cloud, &peer, &["--role", "edge"]);
    let tampered = honest.replacen("6465646765", "6465646766", 1);
    assert_ne!(tampered, honest);
    let message = edge
        .run(&["mesh", "join", &tampered])
        .fails_with(NOT_ALLOWED)
        .to_owned();
    assert!(message.contains("signature does not verify"), "{message}");

    let brief = admit(&cloud, &peer, &["--expires", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let message = edge
        .run(&["mesh", "join", &brief])
        .fails_with(NOT_ALLOWED)
        .to_owned();
    assert!(message.contains("expired"), "{message}");

    let run = edge.run(&["--json", "mesh", "join", "spore-membership-1:00"]);
    let error: serde_json::Value = serde_json::from_str(run.fails_with(exit::USAGE)).unwrap();
    assert_eq!(error["error"]["kind"], "bad_request");
    let message = edge
        .run(&["mesh", "admit", "12D3KooWnope"])
        .fails_with(exit::USAGE)
        .to_owned();
    assert!(message.contains("neither a peer id"), "{message}");
    let message = edge
        .run(&["mesh", "admit", &peer])
        .fails_with(exit::NOT_FOUND)
        .to_owned();
    assert!(message.contains("no key named `mesh`"), "{message}");

    let shown = edge.run(&["--json", "mesh", "show"]).json();
    assert_eq!(
        shown["mesh"],
        serde_json::Value::Null,
        "nothing was installed"
    );
    edge.run(&["mesh", "join", &honest]).ok();
}

#[test]
fn a_revocation_is_kept_counted_and_passed_on_by_join() {
    let (cloud, edge) = two_homes();
    let revoked = cloud
        .run(&[
            "--json",
            "mesh",
            "revoke",
            &peer_id(&edge),
            "--reason",
            "lost laptop",
        ])
        .json();
    assert_eq!(revoked["reason"], "lost laptop");
    assert_eq!(revoked["kept"], true);
    let text = revoked["revocation"].as_str().unwrap();
    assert!(text.starts_with("spore-revocation-1:"), "{text}");
    assert_eq!(
        cloud.run(&["--json", "mesh", "show"]).json()["revocations"],
        1
    );
    let again = cloud.run(&["mesh", "revoke", "--reason", "again", &peer_id(&edge)]);
    assert!(again.ok().starts_with("spore-revocation-1:"));
    assert_eq!(
        cloud.run(&["--json", "mesh", "show"]).json()["revocations"],
        2
    );

    // The edge takes it in, once, and sees that it no longer belongs.
    let joined = edge.run(&["--json", "mesh", "join", text]).json();
    assert_eq!(joined["kept"], true);
    let joined = edge.run(&["--json", "mesh", "join", text]).json();
    assert_eq!(joined["kept"], false);
    let shown = edge.run(&["--json", "mesh", "show"]).json();
    assert_eq!(shown["revocations"], 1);
    assert_eq!(shown["status"], "revoked");
    let shown = edge.run(&["mesh", "show"]).ok().to_owned();
    assert!(
        shown.contains("revoked at") && shown.contains("lost laptop"),
        "{shown}"
    );

    // A revocation of another mesh is not this node's to keep.
    let other = Spore::new();
    other.run(&["mesh", "init"]).ok();
    let foreign = other
        .run(&["mesh", "revoke", &peer_id(&cloud)])
        .ok()
        .to_owned();
    let message = cloud
        .run(&["mesh", "join", &foreign])
        .fails_with(NOT_ALLOWED)
        .to_owned();
    assert!(message.contains("not this node's mesh"), "{message}");
}

#[test]
fn a_home_leaves_its_mesh_for_another_only_with_force() {
    let (cloud, edge) = two_homes();
    let before = edge.run(&["--json", "mesh", "show"]).json()["mesh"].clone();
    let message = edge
        .run(&["mesh", "init"])
        .fails_with(exit::USAGE)
        .to_owned();
    assert!(message.contains("--force"), "{message}");
    assert_eq!(
        edge.run(&["key", "ls"]).ok(),
        "",
        "a refused init keeps no key"
    );
    assert_eq!(edge.run(&["--json", "mesh", "show"]).json()["mesh"], before);

    let made = edge.run(&["--json", "mesh", "init", "--force"]).json();
    assert_ne!(made["mesh"], before);
    // And back, by a certificate of the first mesh.
    let certificate = admit(&cloud, &peer_id(&edge), &[]);
    edge.run(&["mesh", "join", &certificate])
        .fails_with(exit::USAGE);
    edge.run(&["mesh", "join", "--force", &certificate]).ok();
    assert_eq!(edge.run(&["--json", "mesh", "show"]).json()["mesh"], before);
}

#[test]
fn show_says_when_the_node_belongs_to_no_mesh_and_names_a_damaged_line() {
    let spore = Spore::new();
    let text = spore.run(&["mesh", "show"]).ok().to_owned();
    assert_eq!(
        text,
        "this node belongs to no mesh; `spore mesh init` makes one, `spore mesh join` joins one"
    );
    let shown = spore.run(&["--json", "mesh", "show"]).json();
    assert_eq!(shown["mesh"], serde_json::Value::Null);
    assert_eq!(shown["status"], "none");

    spore.run(&["mesh", "init"]).ok();
    let path = spore.home().join("mesh/revocations");
    std::fs::write(&path, "spore-revocation-1:zz\n").unwrap();
    let message = spore
        .run(&["mesh", "show"])
        .fails_with(exit::CORRUPT)
        .to_owned();
    assert!(message.contains("mesh/revocations, line 1: "), "{message}");
}
