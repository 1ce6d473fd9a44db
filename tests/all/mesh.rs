//! The mesh with real `spore node run` processes on loopback: code travels to where it
//! runs, verified and cached; calls go to the node whose abilities they need.

use std::process::Command;
use std::time::{Duration, Instant};

pub(crate) use crate::support::RunningNode;
use crate::support::{Spore, exit, module_path};

fn hash_of(module: &str) -> String {
    blake3::hash(&std::fs::read(module_path(module)).unwrap())
        .to_hex()
        .to_string()
}

pub(crate) fn steps(report: &serde_json::Value) -> Vec<String> {
    report["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn code_published_on_one_node_runs_on_another_and_stays_after_the_origin_dies() {
    let origin = RunningNode::start(&[]);
    let edge = RunningNode::start(&[&origin]);
    let arith = origin.spore.publish("arith", None);
    assert_eq!(arith, hash_of("arith"));

    let report = edge
        .spore
        .invoke_report(&format!("{arith}:add"), &["2", "3"]);
    assert_eq!(report["result"], 5);
    let path = steps(&report);
    assert!(
        path.iter()
            .any(|s| s.starts_with("fetched") && s.contains(&origin.peer_id)),
        "{path:?}"
    );

    // The verified code is now in the edge's codebase: the origin can go.
    drop(origin);
    let report = edge
        .spore
        .invoke_report(&format!("{arith}:mul"), &["6", "7", "--no-memo"]);
    assert_eq!(report["result"], 42);
    assert!(
        !steps(&report).iter().any(|s| s.starts_with("fetched")),
        "no network needed: {report}"
    );
    // And it survives the edge's restart too.
    let home = edge.stop();
    assert_eq!(
        home.invoke(&format!("{arith}:sub"), &["6", "7", "--local"]),
        -1
    );
}

#[test]
fn a_call_goes_to_the_node_that_binds_its_abilities() {
    let (cloud, edge) = cloud_and_edge();
    let visits = edge.spore.publish("visits", None);

    let refusal = edge
        .spore
        .run(&["invoke", &format!("{visits}:hit"), r#""home""#, "--local"]);
    assert!(refusal.fails_with(exit::NOT_FOUND).contains("kv"));

    for expected in 1..=2 {
        let report = edge
            .spore
            .invoke_report(&format!("{visits}:hit"), &[r#""home""#]);
        assert_eq!(report["result"], expected, "{report}");
        let path = steps(&report);
        assert!(
            path.iter()
                .any(|s| s.contains(&format!("forwarded {visits}:hit to {}", cloud.peer_id))),
            "{path:?}"
        );
        assert!(
            report["path"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["node"] == cloud.peer_id.as_str()
                    && s["step"].as_str().unwrap().starts_with("ran")),
            "{report}"
        );
    }
    // The count lives in the cloud's kv.
    assert_eq!(
        cloud
            .spore
            .invoke(&format!("{visits}:count"), &[r#""home""#]),
        2
    );
}

#[test]
fn a_fetch_uses_another_provider_when_the_first_is_gone() {
    let origin = RunningNode::start(&[]);
    let second = RunningNode::start(&[&origin]);
    let cpu = origin.spore.publish("cpu", None);
    // The second node fetches (and from then on provides) the module.
    assert_eq!(
        second
            .spore
            .invoke(&format!("{cpu}:mandelbrot"), &["8", "8", "10"]),
        314
    );
    let third = RunningNode::start(&[&origin, &second]);
    drop(origin);
    let report = third
        .spore
        .invoke_report(&format!("{cpu}:mandelbrot"), &["8", "8", "10"]);
    assert_eq!(report["result"], 314);
    let path = steps(&report);
    assert!(
        path.iter()
            .any(|s| s.starts_with("fetched") && s.contains(&second.peer_id)),
        "{path:?}"
    );
}

#[test]
fn a_pure_call_pinned_to_a_peer_is_answered_however_long_it_runs() {
    // The peer serves a short pure call on its mesh thread, within a budget of a few
    // milliseconds, and runs a longer one again on its blocking pool: both must answer,
    // and the path shows the one run that counted.
    let origin = RunningNode::start(&[]);
    let edge = RunningNode::start(&[&origin]);
    let cpu = origin.spore.publish("cpu", None);
    // 27,655,257 iterations take a few hundred milliseconds in Wasm.
    for (size, max_iter, iterations) in [("8", "10", 314), ("400", "1000", 27_655_257)] {
        let report = edge.spore.invoke_report(
            &format!("{cpu}:mandelbrot"),
            &[size, size, max_iter, "--on", &origin.peer_id],
        );
        assert_eq!(report["result"], iterations, "{report}");
        let runs: Vec<&serde_json::Value> = report["path"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["step"].as_str().unwrap().starts_with("ran"))
            .collect();
        assert_eq!(runs.len(), 1, "{report}");
        assert_eq!(runs[0]["node"], origin.peer_id.as_str(), "{report}");
    }
}

#[test]
fn a_remote_node_that_dies_mid_invoke_gives_a_clear_error_within_the_deadline() {
    let sensor_home = Spore::new();
    let script = crate::support::repo_root().join("examples/sensor-provider/sensor.py");
    sensor_home.configure(&format!(
        "[abilities.sensor]\nprovider = \"process\"\noperations = [\"read\"]\ncommand = [\"python3\", \"{}\"]\ncallers = [\"*\"]\n",
        script.display()
    ));
    let sensor_node = RunningNode::start_with(sensor_home, &[]);
    let edge_home = Spore::new();
    edge_home.configure("[abilities.sensor]\noperations = [\"read\"]\n");
    let edge = RunningNode::start_with(edge_home, &[&sensor_node]);
    let sensors = edge.spore.publish("sensors", None);
    // Warm up: the sensor node fetches and compiles the module, and starts its provider.
    let warm = edge
        .spore
        .invoke_report(&format!("{sensors}:read"), &[r#""attic""#]);
    assert_eq!(warm["result"]["id"], "attic");

    // `slow` takes 1.5 s to read; the sensor node is killed while it does.
    let killer = {
        let pid = sensor_node.child.id();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        })
    };
    let started = Instant::now();
    let run = edge.spore.run(&[
        "invoke",
        &format!("{sensors}:read"),
        r#""slow""#,
        "--timeout",
        "5s",
    ]);
    killer.join().unwrap();
    let stderr = run.fails_with(exit::UNAVAILABLE).to_owned();
    assert!(
        stderr.contains(&sensor_node.peer_id),
        "names the peer: {stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "within the deadline: {:?}",
        started.elapsed()
    );
    // The edge keeps serving: its own functions run, and the lost peer is reported.
    let arith = edge.spore.publish("arith", None);
    assert_eq!(edge.spore.invoke(&format!("{arith}:add"), &["1", "2"]), 3);
}

#[test]
fn an_unreachable_bootstrap_peer_does_not_stop_a_node() {
    let ghost = RunningNode::start(&[]);
    let ghost_addr = ghost.listen.clone();
    drop(ghost);
    let node = RunningNode::start_at(Spore::new(), &[&ghost_addr]);
    let info = node.spore.run(&["--json", "node", "info"]).json();
    assert_eq!(info["peer_id"], node.peer_id.as_str());
    let arith = node.spore.publish("arith", None);
    assert_eq!(node.spore.invoke(&format!("{arith}:add"), &["2", "2"]), 4);
}

#[test]
fn the_cli_gives_the_same_answers_through_a_running_node() {
    const COMMANDS: [&str; 5] = [
        "ls",
        "names ls",
        "abilities",
        "inspect math.add",
        "names history math.add",
    ];
    let answers = |spore: &Spore| -> Vec<serde_json::Value> {
        COMMANDS
            .iter()
            .map(|command| {
                let mut args = vec!["--json"];
                args.extend(command.split(' '));
                spore.run(&args).json()
            })
            .collect()
    };
    let spore = Spore::new();
    let hash = spore.publish("arith", Some("math"));
    let direct = answers(&spore);
    let node = RunningNode::start_with(spore, &[]);
    assert_eq!(
        answers(&node.spore),
        direct,
        "the same commands answer differently through the node"
    );
    assert_eq!(node.spore.invoke("math.add", &["2", "3"]), 5);
    let stderr = node
        .spore
        .run(&["invoke", "math.div", "1", "0"])
        .fails_with(exit::GUEST_ERROR)
        .to_owned();
    assert!(stderr.contains("division by zero"), "{stderr}");
    node.spore
        .run(&["names", "set", "plus", &format!("{hash}:add")])
        .ok();
    assert_eq!(node.spore.invoke("plus", &["1", "1"]), 2);
}

/// A module of one function that answers 42, with `salt` in a data segment so that each
/// salt gives other bytes and another hash.
fn answer_module(salt: u32) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module (memory (export "memory") 1)
            (func (export "spore_alloc") (param i32) (result i32) i32.const 1024)
            (data (i32.const 16) "\00\18\2a")
            (data (i32.const 32) "{salt:08x}")
            (func (export "answer") (param i32 i32) (result i64)
              (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 3))))"#
    ))
    .unwrap()
}

/// A 64-hex text is a hash even when it starts with a letter and so could be a name:
/// a node that lacks the module fetches it, instead of looking the text up as a name.
#[test]
fn a_bare_full_hash_that_could_be_a_name_is_fetched_from_the_mesh() {
    let (bytes, hash) = (0..)
        .map(answer_module)
        .map(|bytes| {
            let hash = blake3::hash(&bytes).to_hex().to_string();
            (bytes, hash)
        })
        .find(|(_, hash)| hash.starts_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap();
    let origin = RunningNode::start(&[]);
    let edge = RunningNode::start(&[&origin]);
    let (_dir, path) = crate::support::temp_file("answer.wasm", &bytes);
    assert_eq!(
        origin.spore.run(&["publish", path.to_str().unwrap()]).ok(),
        hash
    );

    let report = edge.spore.invoke_report(&hash, &[]);
    assert_eq!(report["result"], 42, "{report}");
    assert!(
        steps(&report).iter().any(|s| s.starts_with("fetched")),
        "{report}"
    );
}

#[test]
fn a_node_in_no_mesh_says_so_and_no_member_serves_it() {
    let member = RunningNode::start(&[]);
    let arith = member.spore.publish("arith", None);
    let stranger = RunningNode::launch_as_is(
        Spore::new(),
        &[&member.listen],
        &["--listen", "/ip4/127.0.0.1/tcp/0"],
    );

    let info = stranger.spore.run(&["node", "info"]).ok().to_owned();
    assert!(info.contains("serves no peer"), "{info}");
    let info = member.spore.run(&["node", "info", "--json"]).json();
    assert_eq!(
        info["mesh"]["key"],
        crate::test_mesh::key().public().to_string(),
        "{info}"
    );

    // The stranger can fetch nothing from the member: the call fails, saying why.
    let refused = stranger.spore.run(&[
        "invoke",
        &format!("{arith}:add"),
        "1",
        "2",
        "--timeout",
        "5s",
    ]);
    let stderr = refused.fails_with(exit::NOT_FOUND).to_owned();
    assert!(!stderr.is_empty(), "a reason is given");
}

/// A cloud node that serves its kv to the mesh's members with role `test` (every test
/// node), and an edge that binds no kv, bootstrapped to it.
pub(crate) fn cloud_and_edge() -> (RunningNode, RunningNode) {
    let cloud = kv_server(&[]);
    let edge = RunningNode::start_with(edge_without_kv(), &[&cloud]);
    (cloud, edge)
}

/// A node that serves its kv to the mesh's members with role `test` (every test node).
pub(crate) fn kv_server(bootstrap: &[&RunningNode]) -> RunningNode {
    let home = Spore::new();
    home.write_config(&spore_node::config::default_config().replacen(
        "[abilities.kv]\n",
        "[abilities.kv]\ncallers = [\"role:test\"]\n",
        1,
    ));
    RunningNode::start_with(home, bootstrap)
}

/// A home whose configuration binds no kv, so that its node places kv calls on peers.
pub(crate) fn edge_without_kv() -> Spore {
    let home = Spore::new();
    home.write_config(&spore_node::config::default_config().replace(
        "[abilities.kv]\nprovider = \"kv\"\nnamespace = \"default\"\nmax_value_bytes = \"1MiB\"\n",
        "",
    ));
    home
}
