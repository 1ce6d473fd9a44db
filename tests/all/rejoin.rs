//! A node keeps its place in the mesh across restarts: it comes back on the ports its
//! peers know, and it redials the peers it knew, even those that are down when it starts.

use std::time::{Duration, Instant};

use crate::mesh::RunningNode;
use crate::support::Spore;

/// Invokes `arith:add` with `n` (so that no memo answers it) pinned to `on`; returns the
/// node the path says ran it, or the failure.
fn add_on(from: &RunningNode, arith: &str, n: i64, on: &str) -> Result<String, String> {
    let run = from.spore.run(&[
        "--json",
        "invoke",
        &format!("{arith}:add"),
        &n.to_string(),
        "1",
        "--on",
        on,
        "--timeout",
        "10s",
    ]);
    if run.code != 0 {
        return Err(run.stderr);
    }
    let report = run.json();
    assert_eq!(report["result"], n + 1, "{report}");
    let ran = report["path"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"].as_str().unwrap().starts_with("ran"))
        .unwrap_or_else(|| panic!("no step ran: {report}"));
    Ok(ran["node"].as_str().unwrap().to_owned())
}

#[test]
fn a_node_restarted_on_its_home_comes_back_on_its_port_and_is_called_again() {
    // Without --listen: all interfaces, on the ports of the last run.
    let origin = RunningNode::launch(Spore::new(), &[], &[]);
    let edge = RunningNode::start(&[&origin]);
    let arith = origin.spore.publish("arith", None);
    assert_eq!(
        add_on(&edge, &arith, 1, &origin.peer_id),
        Ok(origin.peer_id.clone())
    );

    let port = origin.tcp_port();
    let peer_id = origin.peer_id.clone();
    let origin = RunningNode::launch(origin.stop(), &[], &[]);
    assert_eq!(origin.peer_id, peer_id);
    assert_eq!(origin.tcp_port(), port, "the origin moved to another port");
    let remembered: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(origin.spore.home().join("mesh.json")).unwrap(),
    )
    .unwrap();
    assert!(
        remembered["listen"]
            .as_array()
            .unwrap()
            .contains(&format!("/ip4/0.0.0.0/tcp/{port}").into()),
        "{remembered}"
    );

    // The edge was given nothing new: it reaches the origin where it was.
    assert_eq!(
        add_on(&edge, &arith, 2, &origin.peer_id),
        Ok(origin.peer_id.clone())
    );
}

#[test]
fn a_node_whose_last_port_is_taken_listens_on_a_fresh_one() {
    let node = RunningNode::launch(Spore::new(), &[], &[]);
    let port = node.tcp_port();
    let home = node.stop();
    let squatter = std::net::TcpListener::bind(("0.0.0.0", port)).unwrap();
    let node = RunningNode::launch(home, &[], &[]);
    assert_ne!(node.tcp_port(), port);
    drop(squatter);
    let arith = node.spore.publish("arith", None);
    assert_eq!(node.spore.invoke(&format!("{arith}:add"), &["2", "2"]), 4);
}

#[test]
fn a_node_restarted_while_its_peer_is_down_redials_it_when_it_comes_back() {
    let first = RunningNode::start(&[]);
    let second = RunningNode::start(&[&first]);
    let first_port = first.tcp_port();
    let first_id = first.peer_id.clone();
    let first_home = first.stop();

    // The second node restarts with no bootstrap peer while the first is down.
    let second = RunningNode::start_with(second.stop(), &[]);
    let arith = second.spore.publish("arith", None);
    std::thread::sleep(Duration::from_secs(2));

    // The first comes back on its port having forgotten the second, so only the
    // second's redial can bring them together: the first has no address to dial.
    std::fs::remove_file(first_home.home().join("mesh.json")).unwrap();
    let first = RunningNode::launch(
        first_home,
        &[],
        &["--listen", &format!("/ip4/127.0.0.1/tcp/{first_port}")],
    );
    assert_eq!(first.peer_id, first_id);
    let started = Instant::now();
    let mut n = 0;
    let ran = loop {
        n += 1;
        match add_on(&first, &arith, n, &second.peer_id) {
            Ok(ran) => break ran,
            Err(stderr) => assert!(
                started.elapsed() < Duration::from_secs(40),
                "the second node never redialed the first: {stderr}"
            ),
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(ran, second.peer_id);
}
