//! `spore node status`: what a running node is doing, as its operator sees it.

use crate::support::{RunningNode, Spore};

#[test]
fn node_status_shows_the_peer_its_connection_and_the_functions_called() {
    let cloud = RunningNode::start(&[]);
    let edge = RunningNode::start(&[&cloud]);
    let arith = cloud.spore.publish("arith", Some("arith"));
    // Pure: the edge may run it where it likes; `--no-memo` so that each call runs.
    for _ in 0..3 {
        assert_eq!(cloud.spore.invoke("arith.add", &["2", "3", "--no-memo"]), 5);
    }
    cloud
        .spore
        .run(&["invoke", "arith.div", "1", "0", "--no-memo"]);

    let status = cloud.spore.run(&["--json", "node", "status"]).json();
    assert_eq!(status["peer_id"], cloud.peer_id.as_str());
    assert!(status["mesh"].is_string(), "{status}");
    assert_eq!(status["calls_in_flight"], 0, "{status}");
    let peers = status["peers"].as_array().unwrap();
    let edge_seen = peers
        .iter()
        .find(|p| p["peer_id"] == edge.peer_id.as_str())
        .unwrap_or_else(|| panic!("the edge is listed: {status}"));
    assert_eq!(edge_seen["member"], true, "{status}");
    assert_eq!(edge_seen["roles"], serde_json::json!(["test"]), "{status}");
    let connection = &edge_seen["connections"][0];
    assert!(
        connection["address"]
            .as_str()
            .unwrap()
            .starts_with("/ip4/127.0.0.1/"),
        "{status}"
    );
    assert_eq!(connection["relayed"], false, "{status}");
    let functions = status["functions"].as_array().unwrap();
    let add = functions
        .iter()
        .find(|f| f["function"] == format!("{arith}:add"))
        .unwrap_or_else(|| panic!("add is listed: {status}"));
    assert_eq!(add["calls"], 3, "{status}");
    assert_eq!(add["errors"], 0, "{status}");
    let div = functions
        .iter()
        .find(|f| f["function"] == format!("{arith}:div"))
        .unwrap_or_else(|| panic!("div is listed: {status}"));
    assert_eq!(div["errors"], 1, "{status}");

    let text = cloud.spore.run(&["node", "status"]);
    let text = text.ok();
    assert!(text.contains(&edge.peer_id), "{text}");
    assert!(text.contains("roles test"), "{text}");
    assert!(
        text.contains(&format!("{arith}:add  3 calls, 0 errors")),
        "{text}"
    );
}

#[test]
fn node_status_without_a_running_node_says_how_to_start_one() {
    let spore = Spore::new();
    let stderr = spore.run(&["node", "status"]).fails_with(3).to_owned();
    assert!(stderr.contains("spore node run"), "{stderr}");
}
