//! Edges that cannot be dialled: called through a relay of the mesh, and, when both
//! sit behind NATs, over the hole DCUtR punches through them, or through the relay for
//! good where the NATs are symmetric.

use std::time::{Duration, Instant};

use super::network::{Nat, Network};
use super::{spore_in, without_kv};
use crate::support::{RunningNode, Spore};

/// A relay (host 0, with the role `relay`), an edge (host 1, listening on
/// `edge_listen`, reachable through the relay; it binds kv for the tests' mesh), and a
/// caller that binds no kv (host 2, listening on `caller_listen`) and holds `visits`.
struct RelayScene {
    relay: RunningNode,
    edge: RunningNode,
    caller: RunningNode,
}

fn relay_scene(network: &Network, edge_listen: &str, caller_listen: &str) -> RelayScene {
    let relay_home = Spore::new();
    crate::test_mesh::join_with_roles(relay_home.home(), &["test", "relay"]);
    relay_home.write_config(&without_kv());
    let relay = RunningNode::launch_in_namespace(
        relay_home,
        &network.hosts[0].namespace,
        &network.hosts[0].address,
        &[],
        &["--serve-relay"],
    );
    let edge_home = Spore::new();
    edge_home.write_config(&spore_node::config::default_config().replacen(
        "[abilities.kv]\n",
        "[abilities.kv]\ncallers = [\"role:test\"]\n",
        1,
    ));
    let relay_addr = relay.listen.clone();
    let edge = RunningNode::launch_in_namespace(
        edge_home,
        &network.hosts[1].namespace,
        edge_listen,
        &[&relay_addr],
        &["--relay", &relay_addr],
    );
    let caller_home = Spore::new();
    caller_home.write_config(&without_kv());
    caller_home.publish("visits", Some("visits"));
    let caller = RunningNode::launch_in_namespace(
        caller_home,
        &network.hosts[2].namespace,
        caller_listen,
        &[&relay_addr],
        &[],
    );
    RelayScene {
        relay,
        edge,
        caller,
    }
}

/// Calls `visits.hit` (it needs kv) from the caller until it gets through, and checks
/// it ran on the edge (placed there, the edge fetching the module from the caller) and
/// counted the `visits`-th visit.
fn hit_on_the_edge(network: &Network, scene: &RelayScene, visits: u64) {
    hit(network, &scene.caller, &scene.edge, visits);
}

/// [`hit_on_the_edge`], from `caller` (host 2) to `edge`.
fn hit(network: &Network, caller: &RunningNode, edge: &RunningNode, visits: u64) {
    let started = Instant::now();
    let report = loop {
        let args = [
            "--json",
            "invoke",
            "visits.hit",
            r#""home""#,
            "--timeout",
            "10s",
        ];
        let out = spore_in(network, 2, caller, &args);
        if out.status.success() {
            break serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap();
        }
        // The edge's relayed address reaches the DHT a moment after it starts.
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the call never reached the edge: {}\ncaller log:\n{}\nedge log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            caller.log(),
            edge.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(report["result"], visits, "{report}");
    let ran_on = report["path"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["step"].as_str().unwrap().starts_with("ran"))
        .map(|step| step["node"].as_str().unwrap().to_owned());
    assert_eq!(ran_on.as_deref(), Some(edge.peer_id.as_str()), "{report}");
}

/// `spore node status --json` of `node`, host `i`.
fn status_of(network: &Network, i: usize, node: &RunningNode) -> serde_json::Value {
    let out = spore_in(network, i, node, &["--json", "node", "status"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The caller's connections to `peer`, as `spore node status --json` lists them.
fn connections_to(network: &Network, scene: &RelayScene, peer: &str) -> Vec<serde_json::Value> {
    status_of(network, 2, &scene.caller)["peers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["peer_id"] == peer)
        .flat_map(|p| p["connections"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn an_edge_that_no_one_can_dial_is_called_through_the_relay_and_shown_relayed() {
    let Some(network) = Network::create(3) else {
        return;
    };
    // Each listens on its own loopback: no one can dial the edge, nor the caller, so
    // the connection stays relayed.
    let scene = relay_scene(&network, "127.0.0.1", "127.0.0.1");
    hit_on_the_edge(&network, &scene, 1);

    let to_edge = connections_to(&network, &scene, &scene.edge.peer_id);
    assert!(
        !to_edge.is_empty() && to_edge.iter().all(|c| c["relayed"] == true),
        "{to_edge:?}"
    );
    let to_relay = connections_to(&network, &scene, &scene.relay.peer_id);
    assert!(
        !to_relay.is_empty() && to_relay.iter().all(|c| c["relayed"] == false),
        "{to_relay:?}"
    );
    let text = spore_in(&network, 2, &scene.caller, &["node", "status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(" relayed "), "{text}");
}

#[test]
fn a_relayed_connection_becomes_direct_when_the_edge_can_dial_its_caller() {
    let Some(network) = Network::create(3) else {
        return;
    };
    // The caller listens on its bridge address: the edge can dial it.
    let scene = relay_scene(&network, "127.0.0.1", &network.hosts[2].address);
    hit_on_the_edge(&network, &scene, 1);

    // The edge, told the caller's address over the relay, dials it: a direct
    // connection appears beside the relayed one.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !connections_to(&network, &scene, &scene.edge.peer_id)
        .iter()
        .any(|c| c["relayed"] == false)
    {
        assert!(
            Instant::now() < deadline,
            "no direct connection to the edge\nedge log:\n{}",
            scene.edge.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A relay on the bridge, and the edge and the caller each behind a NAT of `nat`'s kind,
/// listening on its private address, which no one else can reach: the only way from
/// the caller to the edge is the relay, unless DCUtR punches a hole through both NATs
/// (each dials the other's router at once, from its listen port). The first call has
/// gone through.
fn scene_behind_nats(nat: Nat) -> Option<(Network, RelayScene)> {
    let mut network = Network::bridge(&["nft"])?;
    network.add_host();
    network.add_host_behind_nat(nat);
    network.add_host_behind_nat(nat);
    let scene = relay_scene(
        &network,
        &network.hosts[1].address,
        &network.hosts[2].address,
    );
    hit_on_the_edge(&network, &scene, 1);
    Some((network, scene))
}

/// Waits (30 s at most) until the edge or the caller counts a hole punch with
/// `outcome` (`holes_punched` or `hole_punches_failed` in `spore node status`), and
/// returns the two statuses then.
fn wait_for_hole_punch(
    network: &Network,
    scene: &RelayScene,
    outcome: &str,
) -> (serde_json::Value, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let edge = status_of(network, 1, &scene.edge);
        let caller = status_of(network, 2, &scene.caller);
        let counted = |status: &serde_json::Value| status["reachability"][outcome] != 0;
        if counted(&edge) || counted(&caller) {
            return (edge, caller);
        }
        assert!(
            Instant::now() < deadline,
            "no hole punch counted as {outcome}: edge {}\ncaller {}\nedge log:\n{}",
            edge["reachability"],
            caller["reachability"],
            scene.edge.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn two_edges_behind_nats_call_through_the_relay_and_then_over_a_punched_hole() {
    let Some((network, scene)) = scene_behind_nats(Nat::KeepsPorts) else {
        return;
    };
    let edge_router = &network.hosts[1].router.as_ref().unwrap().1;
    let called = Instant::now();
    let deadline = called + Duration::from_secs(30);
    let direct = loop {
        let to_edge = connections_to(&network, &scene, &scene.edge.peer_id);
        if let Some(direct) = to_edge.iter().find(|c| c["relayed"] == false) {
            break direct.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no direct connection to the edge: {to_edge:?}\ncaller log:\n{}\nedge log:\n{}",
            scene.caller.log(),
            scene.edge.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!(
        "direct {:?} after the first call: {direct}",
        called.elapsed()
    );
    // Through the edge's NAT: its router's address, not the edge's own.
    let remote = direct["address"].as_str().unwrap();
    assert!(
        remote.starts_with(&format!("/ip4/{edge_router}/tcp/")),
        "{direct}"
    );
    let (edge, _) = wait_for_hole_punch(&network, &scene, "holes_punched");
    // The edge knows how it is reached: through the relay, and not dialable once
    // AutoNAT has judged (its peers cannot dial it back through the NAT).
    let relays = &edge["reachability"]["relays"];
    assert_eq!(relays, &serde_json::json!([scene.relay.peer_id]), "{edge}");
    assert_ne!(edge["reachability"]["dialable"], "yes", "{edge}");
    let text = spore_in(&network, 1, &scene.edge, &["node", "status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    let through = format!("; through relays {}; holes punched ", scene.relay.peer_id);
    assert!(text.contains(&through), "{text}");
    // And calls keep reaching the edge, and the relay is spared the circuit: once the
    // direct connection carries the streams, the relayed one is closed.
    let mut visits = 1;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        // Calls keep coming meanwhile: they move to the direct connection too.
        visits += 1;
        hit_on_the_edge(&network, &scene, visits);
        let to_edge = connections_to(&network, &scene, &scene.edge.peer_id);
        if to_edge.iter().all(|c| c["relayed"] == false) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the relayed connection outlived the direct one by 15 s: {to_edge:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    hit_on_the_edge(&network, &scene, visits + 1);

    // The relay can go: the two talk directly.
    let RelayScene {
        relay,
        edge,
        caller,
    } = scene;
    relay.kill();
    hit(&network, &caller, &edge, visits + 2);
}

#[test]
fn two_edges_behind_symmetric_nats_keep_calling_through_the_relay() {
    let Some((network, scene)) = scene_behind_nats(Nat::Symmetric) else {
        return;
    };
    let (edge, caller) = wait_for_hole_punch(&network, &scene, "hole_punches_failed");
    for status in [&edge, &caller] {
        assert_eq!(status["reachability"]["holes_punched"], 0, "{status}");
    }
    let to_edge = connections_to(&network, &scene, &scene.edge.peer_id);
    assert!(
        !to_edge.is_empty() && to_edge.iter().all(|c| c["relayed"] == true),
        "{to_edge:?}"
    );
    hit_on_the_edge(&network, &scene, 2);
}
