//! Mesh names with real `spore node run` processes: a publisher signs its names with
//! `spore publish --sign` and `spore names publish`; another node, trusting that key for
//! `billing.*`, calls them by name, follows a new version and a rollback, and shows who
//! signed them.

use std::time::{Duration, Instant};

use crate::support::{RunningNode, Spore, exit, module_path};

/// Runs `spore invoke NAME ARGS --json` on `node` until it returns `expected` (10 s).
fn invokes_to(node: &RunningNode, name: &str, args: &[&str], expected: i64) {
    let started = Instant::now();
    loop {
        let mut argv = vec!["--json", "invoke", name];
        argv.extend_from_slice(args);
        argv.push("--no-memo");
        let run = node.spore.run(&argv);
        if run.code == 0 && run.json()["result"] == expected {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "`{name}` did not give {expected} within 10 s: {} {}",
            run.stdout,
            run.stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_name_signed_on_one_node_is_called_by_name_on_another_and_follows_its_rollback() {
    let publisher_home = Spore::new();
    let key = publisher_home
        .run(&["key", "new", "billing"])
        .ok()
        .trim()
        .to_owned();
    let reader_home = Spore::new();
    reader_home.configure(&format!("[trust.names]\n\"billing.*\" = [\"{key}\"]\n"));
    let publisher = RunningNode::start_with(publisher_home, &[]);
    let reader = RunningNode::start_with(reader_home, &[&publisher]);

    let arith = module_path("arith");
    let published = publisher
        .spore
        .run(&[
            "--json",
            "publish",
            arith.to_str().unwrap(),
            "--name",
            "billing",
            "--sign",
            "billing",
        ])
        .json();
    let hash = published["published"]["manifest"]["module"]
        .as_str()
        .unwrap()
        .to_owned();
    let publications = published["publications"].as_array().unwrap();
    assert!(
        publications
            .iter()
            .any(|p| p["name"] == "billing.add" && p["seq"] == 1 && p["publisher"] == key),
        "{published}"
    );

    invokes_to(&reader, "billing.add", &["2", "3"], 5);
    let names = reader.spore.run(&["--json", "names", "ls"]).json();
    let add = names
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "billing.add")
        .unwrap_or_else(|| panic!("{names}"));
    assert_eq!(
        (&add["source"], &add["publisher"], &add["seq"]),
        (&"mesh".into(), &key.clone().into(), &1.into())
    );
    let listed = reader.spore.run(&["names", "ls"]).ok().to_owned();
    assert!(
        listed.contains("billing.add") && listed.contains(&format!("signed by {key}")),
        "{listed}"
    );

    // A new version, then the rollback.
    let said = publisher
        .spore
        .run(&[
            "names",
            "publish",
            "billing.add",
            &format!("{hash}:mul"),
            "--sign",
            "billing",
        ])
        .ok()
        .to_owned();
    assert!(said.starts_with("billing.add #2 -> "), "{said}");
    invokes_to(&reader, "billing.add", &["2", "3"], 6);
    publisher.spore.run(&[
        "names",
        "publish",
        "billing.add",
        &format!("{hash}:add"),
        "--sign",
        "billing",
    ]);
    invokes_to(&reader, "billing.add", &["2", "3"], 5);

    // Signing needs a key the home holds.
    let refused = publisher.spore.run(&[
        "names",
        "publish",
        "billing.sub",
        &format!("{hash}:sub"),
        "--sign",
        "nobody",
    ]);
    let message = refused.fails_with(exit::NOT_FOUND);
    assert!(message.contains("no key named `nobody`"), "{message}");
}
