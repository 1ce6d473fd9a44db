//! A real network (issue 13, items 4 and 5): `spore node run` processes, each in a Linux
//! network namespace of its own with its own address, joined by veth pairs to a bridge.
//! One node's link is taken down in the middle of a call, then brought back (here);
//! edges that cannot be dialled are called through a relay, and two behind NATs punch a
//! hole (`relays`).
//!
//! The tests make the namespaces, links, bridge and NATs themselves and remove them when
//! they end (also when they fail). Without the privilege to make them (not root, no
//! `ip`, no `nft`), they say so loudly and pass without running: the in-process
//! partition and relay tests of `spore-mesh` (`tests/mesh/partition.rs`,
//! `tests/mesh/nat.rs`) still cover the same code on loopback.

mod network;
mod relays;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::{RunningNode, Spore};
use network::Network;

/// How long a node may take to notice a dead link (pings a second apart, 4 s of silence:
/// `spore-mesh/src/liveness.rs`), plus scheduling on a loaded machine.
const DETECTION_BOUND: Duration = Duration::from_secs(8);
/// How soon after the link is back calls must succeed again (issue 13).
const RECOVERY_BOUND: Duration = Duration::from_secs(5);
/// How long the link stays cut: long enough for dials into the cut to be made and to
/// back off, and for the old connection's retransmissions to be seconds apart.
const CUT_FOR: Duration = Duration::from_secs(15);

/// The default configuration, binding no `kv`: the call that needs it goes to the edge.
fn without_kv() -> String {
    spore_node::config::default_config().replace(
        "[abilities.kv]\nprovider = \"kv\"\nnamespace = \"default\"\nmax_value_bytes = \"1MiB\"\n",
        "",
    )
}

/// `spore ARGS` on `node`'s home, run inside its namespace (where its API is).
fn spore_in(network: &Network, i: usize, node: &RunningNode, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", &network.hosts[i].namespace])
        .arg(env!("CARGO_BIN_EXE_spore"))
        .arg("--home")
        .arg(node.spore.home())
        .args(args)
        .env_remove("SPORE_HOME")
        .env_remove("SPORE_LOG")
        .output()
        .unwrap()
}

/// Invokes `reference` with `args` from `from` (host `i`), pinned to `on`, with `timeout`.
fn invoke_on(
    network: &Network,
    i: usize,
    from: &RunningNode,
    on: &RunningNode,
    reference: &str,
    args: &[&str],
    timeout: &str,
) -> Result<serde_json::Value, serde_json::Value> {
    let mut all = vec!["--json", "invoke", reference];
    all.extend(args);
    all.extend(["--on", &on.peer_id, "--timeout", timeout]);
    let out = spore_in(network, i, from, &all);
    let text = if out.status.success() {
        out.stdout
    } else {
        out.stderr
    };
    let report: serde_json::Value = serde_json::from_slice(&text).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&text),
            from.log()
        )
    });
    if out.status.success() {
        Ok(report)
    } else {
        Err(report)
    }
}

#[test]
fn a_link_cut_mid_call_fails_the_call_within_its_deadline_and_calls_succeed_soon_after_it_is_back()
{
    let Some(network) = Network::create(3) else {
        return;
    };
    // Each home has the modules, so no call waits on a fetch.
    let homes: Vec<Spore> = (0..3).map(|_| Spore::new()).collect();
    let mut arith = String::new();
    let mut faults = String::new();
    for home in &homes {
        arith = home.publish("arith", None);
        faults = home.publish("faults", None);
    }
    let mut homes = homes.into_iter();
    let a = RunningNode::launch_in_namespace(
        homes.next().unwrap(),
        &network.hosts[0].namespace,
        &network.hosts[0].address,
        &[],
        &[],
    );
    let b = RunningNode::launch_in_namespace(
        homes.next().unwrap(),
        &network.hosts[1].namespace,
        &network.hosts[1].address,
        &[&a.listen],
        &[],
    );
    let c = RunningNode::launch_in_namespace(
        homes.next().unwrap(),
        &network.hosts[2].namespace,
        &network.hosts[2].address,
        &[&a.listen],
        &[],
    );
    let add = format!("{arith}:add");
    for (n, on) in [(1, &b), (2, &c)] {
        let report = invoke_on(&network, 0, &a, on, &add, &[&n.to_string(), "1"], "10s")
            .unwrap_or_else(|e| panic!("a call across the bridge failed: {e}\n{}", a.log()));
        assert_eq!(report["result"], n + 1, "{report}");
    }

    // A call running on B (a function that never returns) when B's link is cut fails
    // once A finds the link dead, well before the call's own deadline of 30 s.
    let spin = format!("{faults}:spin");
    let caught = std::thread::scope(|scope| {
        let call = scope.spawn(|| {
            let started = Instant::now();
            let result = invoke_on(&network, 0, &a, &b, &spin, &[], "30s");
            (result, started.elapsed())
        });
        std::thread::sleep(Duration::from_secs(1));
        network.cut(1);
        let cut = Instant::now();
        let (result, _) = call.join().unwrap();
        (result, cut.elapsed())
    });
    let (result, after_cut) = caught;
    let error = result.expect_err("a call through a cut link");
    eprintln!("the call caught by the cut failed {after_cut:?} after it: {error}");
    assert!(
        after_cut < DETECTION_BOUND,
        "failed {after_cut:?} after the cut: {error}"
    );
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&b.peer_id),
        "the error names the peer: {error}"
    );

    // C, on its own link, still answers A meanwhile.
    let report = invoke_on(&network, 0, &a, &c, &add, &["40", "2"], "10s")
        .unwrap_or_else(|e| panic!("C became unreachable with B's link: {e}"));
    assert_eq!(report["result"], 42);

    // A call made into the cut fails by its deadline, naming the peer it could not reach.
    let started = Instant::now();
    let error =
        invoke_on(&network, 0, &a, &b, &add, &["50", "1"], "3s").expect_err("a call into the cut");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}: {error}");
    let kind = error["error"]["kind"].as_str().unwrap_or_default();
    assert!(
        ["unavailable", "timeout"].contains(&kind) && error.to_string().contains(&b.peer_id),
        "{error}"
    );

    // Back on the bridge: calls to B succeed within the recovery bound.
    std::thread::sleep(CUT_FOR.saturating_sub(after_cut + took));
    network.mend(1);
    let mended = Instant::now();
    let mut n = 100;
    let recovered = loop {
        n += 1;
        match invoke_on(&network, 0, &a, &b, &add, &[&n.to_string(), "1"], "2s") {
            Ok(report) => {
                assert_eq!(report["result"], n + 1, "{report}");
                break mended.elapsed();
            }
            Err(error) if mended.elapsed() < RECOVERY_BOUND * 3 => {
                eprintln!("{:?} after the mend: {error}", mended.elapsed());
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(error) => panic!("no call got through in {:?}: {error}", mended.elapsed()),
        }
    };
    eprintln!("a call to B succeeded {recovered:?} after its link was back");
    assert!(
        recovered < RECOVERY_BOUND,
        "calls succeeded only {recovered:?} after the link was back"
    );
}
