//! A real network (issue 13, items 4 and 5): three `spore node run` processes, each in
//! a Linux network namespace of its own with its own address, joined by veth pairs to a
//! bridge. One node's link is taken down in the middle of a call, then brought back; and
//! an edge that listens on its own loopback only is called through a relay.
//!
//! The test makes the namespaces, links and bridge itself and removes them when it ends
//! (also when it fails). Without the privilege to make them (not root, no `ip`), it says
//! so loudly and passes without running: the in-process partition tests of `spore-mesh`
//! (`tests/mesh/partition.rs`) still cover the same code on loopback.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::{RunningNode, Spore};

/// How long a node may take to notice a dead link (pings a second apart, 4 s of silence:
/// `spore-mesh/src/liveness.rs`), plus scheduling on a loaded machine.
const DETECTION_BOUND: Duration = Duration::from_secs(8);
/// How soon after the link is back calls must succeed again (issue 13).
const RECOVERY_BOUND: Duration = Duration::from_secs(5);
/// How long the link stays cut: long enough for dials into the cut to be made and to
/// back off, and for the old connection's retransmissions to be seconds apart.
const CUT_FOR: Duration = Duration::from_secs(15);

/// Namespaces on a bridge, removed on drop.
struct Network {
    /// Unique per test process and per network, short enough for interface names.
    tag: String,
    /// The bridge's /24, as its first three numbers.
    subnet: String,
    bridge: String,
    hosts: Vec<Host>,
}

/// A namespace a node runs in.
struct Host {
    namespace: String,
    /// The bridge side of the veth pair that links the host (or its router) to the
    /// bridge.
    link: String,
    /// The node's own address: on the bridge, or behind a NAT the private one.
    address: String,
    /// Behind a NAT: the router's namespace, and its address on the bridge.
    router: Option<(String, String)>,
}

impl Network {
    /// `count` namespaces on one bridge, or `None` (after saying why) where this process
    /// may not make them.
    fn create(count: usize) -> Option<Network> {
        let mut network = Network::bridge(&[])?;
        for _ in 0..count {
            network.add_host();
        }
        Some(network)
    }

    /// An empty bridge, or `None` (after saying why) where this process may not make
    /// namespaces or lacks one of `commands` (checked with `COMMAND --version`).
    fn bridge(commands: &[&str]) -> Option<Network> {
        // The tests of one process run at once: each network has its own number.
        static NETWORKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NETWORKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let why = unprivileged().or_else(|| {
            let missing = commands.iter().find(|command| {
                let out = Command::new(command).arg("--version").output();
                !out.is_ok_and(|out| out.status.success())
            })?;
            Some(format!("no `{missing}` command"))
        });
        if let Some(why) = why {
            eprintln!(
                "\n==== SKIPPED: cannot make network namespaces here ({why}); run as root with \
                 iproute2 and nftables to test recovery, relays and NATs across real links ====\n"
            );
            return None;
        }
        let tag = format!("sp{}{n}", std::process::id() % 100_000);
        let network = Network {
            subnet: format!("10.{}.{}", 200 + n % 50, std::process::id() % 250),
            bridge: format!("{tag}br"),
            tag,
            hosts: Vec::new(),
        };
        ip(&["link", "add", &network.bridge, "type", "bridge"]).unwrap();
        ip(&["link", "set", &network.bridge, "up"]).unwrap();
        Some(network)
    }

    /// A host on the bridge, with the next address of its subnet.
    fn add_host(&mut self) {
        let i = self.hosts.len() + 1;
        let host = Host {
            namespace: format!("{}n{i}", self.tag),
            link: format!("{}h{i}", self.tag),
            address: format!("{}.{i}", self.subnet),
            router: None,
        };
        ip(&["netns", "add", &host.namespace]).unwrap();
        self.hosts.push(host);
        let host = self.hosts.last().unwrap();
        self.plug(&host.namespace, &host.link, i, &host.address);
    }

    /// A host behind a NAT of its own, as a home router makes one: the router has the
    /// next address on the bridge and rewrites what the host sends out to come from it,
    /// lets in only the replies to what went out, and drops everything else without a
    /// word. The host has 192.168.I.2, I its number, and no address anyone else can
    /// dial.
    fn add_host_behind_nat(&mut self, nat: Nat) {
        let i = self.hosts.len() + 1;
        let router = format!("{}r{i}", self.tag);
        let host = Host {
            namespace: format!("{}n{i}", self.tag),
            link: format!("{}h{i}", self.tag),
            address: format!("192.168.{i}.2"),
            router: Some((router.clone(), format!("{}.{i}", self.subnet))),
        };
        ip(&["netns", "add", &router]).unwrap();
        ip(&["netns", "add", &host.namespace]).unwrap();
        self.hosts.push(host);
        let host = self.hosts.last().unwrap();
        let public = &host.router.as_ref().unwrap().1;
        let outside = self.plug(&router, &host.link, i, public);
        let (lan, inside) = (format!("{}l{i}", self.tag), format!("{}q{i}", self.tag));
        let gateway = format!("192.168.{i}.1");
        let ns = host.namespace.as_str();
        for step in [
            vec![
                "-n", &router, "link", "add", &lan, "type", "veth", "peer", "name", &inside,
                "netns", ns,
            ],
            vec![
                "-n",
                &router,
                "addr",
                "add",
                &format!("{gateway}/24"),
                "dev",
                &lan,
            ],
            vec!["-n", &router, "link", "set", &lan, "up"],
            vec![
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/24", host.address),
                "dev",
                &inside,
            ],
            vec!["-n", ns, "link", "set", &inside, "up"],
            vec!["-n", ns, "link", "set", "lo", "up"],
            vec!["-n", ns, "route", "add", "default", "via", &gateway],
        ] {
            ip(&step).unwrap();
        }
        let ports = match nat {
            Nat::KeepsPorts => "",
            Nat::Symmetric => "fully-random",
        };
        let rules = format!(
            "table ip nat {{
                chain postrouting {{
                    type nat hook postrouting priority srcnat;
                    oifname \"{outside}\" masquerade {ports}
                }}
            }}
            table inet filter {{
                chain input {{
                    type filter hook input priority filter;
                    iifname \"{outside}\" ct state new drop
                }}
                chain forward {{
                    type filter hook forward priority filter;
                    iifname \"{outside}\" ct state new drop
                }}
            }}"
        );
        in_namespace(&router, "sysctl", &["-qw", "net.ipv4.ip_forward=1"], None);
        in_namespace(&router, "nft", &["-f", "-"], Some(&rules));
    }

    /// Links namespace `ns` to the bridge by a veth pair (`link` on the bridge's side),
    /// with `address` on the bridge's subnet; returns the name of its side.
    fn plug(&self, ns: &str, link: &str, i: usize, address: &str) -> String {
        let inside = format!("{}p{i}", self.tag);
        let address = format!("{address}/24");
        for step in [
            vec!["link", "add", link, "type", "veth", "peer", "name", &inside],
            vec!["link", "set", &inside, "netns", ns],
            vec!["link", "set", link, "master", &self.bridge],
            vec!["link", "set", link, "up"],
            vec!["-n", ns, "addr", "add", &address, "dev", &inside],
            vec!["-n", ns, "link", "set", &inside, "up"],
            vec!["-n", ns, "link", "set", "lo", "up"],
        ] {
            ip(&step).unwrap();
        }
        inside
    }

    /// Cuts host `i` off the bridge: its packets go nowhere, as when a cable is pulled
    /// (no reset reaches either side).
    fn cut(&self, i: usize) {
        ip(&["link", "set", &self.hosts[i].link, "nomaster"]).unwrap();
    }

    /// Puts host `i` back on the bridge.
    fn mend(&self, i: usize) {
        ip(&["link", "set", &self.hosts[i].link, "master", &self.bridge]).unwrap();
    }
}

/// How a NAT picks the port a connection leaves from.
#[derive(Clone, Copy)]
enum Nat {
    /// The host's own port where it is free, as most home routers do: a hole can be
    /// punched.
    KeepsPorts,
    /// A random port per connection: the port a peer saw is of no use to another, and
    /// no hole can be punched (the ~30% that relays are for).
    Symmetric,
}

impl Drop for Network {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veths inside it, and so their pairs.
        for host in &self.hosts {
            let _ = ip(&["netns", "del", &host.namespace]);
            if let Some((router, _)) = &host.router {
                let _ = ip(&["netns", "del", router]);
            }
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

/// Runs `command ARGS` in namespace `ns`, with `stdin`, and panics if it fails.
fn in_namespace(ns: &str, command: &str, args: &[&str], stdin: Option<&str>) {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, command])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{command} {} in {ns}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Why this process cannot make namespaces, if it cannot: it is not root, or has no
/// `ip`. Anything else that fails is the test's failure.
fn unprivileged() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("no `ip` command (iproute2)".into()),
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    match Command::new("ip").args(args).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(error) => Err(format!("ip: {error}")),
    }
}

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

/// The caller's connections to `peer`, as `spore node status --json` lists them.
fn connections_to(network: &Network, scene: &RelayScene, peer: &str) -> Vec<serde_json::Value> {
    let out = spore_in(network, 2, &scene.caller, &["--json", "node", "status"]);
    assert!(out.status.success(), "{out:?}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["peers"]
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

/// `spore node status --json` of `node`, host `i`.
fn status_of(network: &Network, i: usize, node: &RunningNode) -> serde_json::Value {
    let out = spore_in(network, i, node, &["--json", "node", "status"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
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
    hit_on_the_edge(&network, &scene, 2);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
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
    hit_on_the_edge(&network, &scene, 3);

    // The relay can go: the two talk directly.
    let RelayScene {
        relay,
        edge,
        caller,
    } = scene;
    relay.kill();
    hit(&network, &caller, &edge, 4);
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
