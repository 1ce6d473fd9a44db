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

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build(),
    )
}

/// `GET /v1/fetches` with the node's token: the status and the body as JSON.
fn get_fetches(node: &RunningNode) -> (u16, serde_json::Value) {
    let mut answer = agent()
        .get(format!("http://{}/v1/fetches", node.api))
        .header("authorization", node.spore.api_authorization())
        .call()
        .unwrap();
    let body = answer.body_mut().read_to_string().unwrap();
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    (answer.status().as_u16(), json)
}

#[test]
fn fetches_of_an_idle_node_are_an_empty_list_given_only_with_the_token() {
    let node = RunningNode::start(&[]);
    assert_eq!(get_fetches(&node), (200, serde_json::json!([])));

    let url = format!("http://{}/v1/fetches", node.api);
    let refused = agent().get(&url).call().unwrap();
    assert_eq!(refused.status(), 401, "without a token");
    let wrong = format!("Bearer {}", "0".repeat(64));
    let refused = agent()
        .get(&url)
        .header("authorization", wrong)
        .call()
        .unwrap();
    assert_eq!(refused.status(), 401, "with another token");

    let status = node.spore.run(&["--json", "node", "status"]).json();
    assert_eq!(status["fetches"], serde_json::json!([]), "{status}");
    let text = node.spore.run(&["node", "status"]);
    assert!(text.ok().contains("fetching  none"), "{}", text.ok());
}

/// A node lists a fetch only while it runs: once its module arrived, or once no peer
/// had it, the list is empty again. And a CLI whose stderr is no terminal (a pipe,
/// here) draws no progress while its call waits on a fetch.
#[test]
fn fetches_are_gone_once_a_fetch_succeeded_or_failed_and_a_pipe_gets_no_bars() {
    let origin = RunningNode::start(&[]);
    let edge = RunningNode::start(&[&origin]);
    let arith = origin.spore.publish("arith", None);

    let run = edge
        .spore
        .run(&["invoke", &format!("{arith}:add"), "2", "3"]);
    assert_eq!(run.ok(), "5");
    assert_eq!(run.stderr, "", "nothing drawn on a pipe");
    let listed = edge.spore.run(&["ls"]);
    assert!(
        listed.ok().contains(&arith[..12]),
        "the edge fetched it: {listed:#?}"
    );
    assert_eq!(get_fetches(&edge), (200, serde_json::json!([])));

    let nobody_has = blake3::hash(b"held by no node").to_hex().to_string();
    let failed = edge.spore.run(&[
        "invoke",
        &format!("{nobody_has}:add"),
        "1",
        "2",
        "--timeout",
        "3s",
    ]);
    assert_ne!(failed.code, 0, "{failed:#?}");
    assert_eq!(get_fetches(&edge), (200, serde_json::json!([])));
}
