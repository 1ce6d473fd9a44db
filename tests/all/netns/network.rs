//! The network the tests run on: Linux network namespaces on a bridge, made by the
//! tests and removed when they end, some hosts behind NATs of their own.

use std::process::Command;

/// Namespaces on a bridge, removed on drop.
pub struct Network {
    /// Unique per test process and per network, short enough for interface names.
    tag: String,
    /// The bridge's /24, as its first three numbers.
    subnet: String,
    bridge: String,
    pub hosts: Vec<Host>,
}

/// A namespace a node runs in.
pub struct Host {
    pub namespace: String,
    /// The bridge side of the veth pair that links the host (or its router) to the
    /// bridge.
    link: String,
    /// The node's own address: on the bridge, or behind a NAT the private one.
    pub address: String,
    /// Behind a NAT: the router's namespace, and its address on the bridge.
    pub router: Option<(String, String)>,
}

impl Network {
    /// `count` namespaces on one bridge, or `None` (after saying why) where this process
    /// may not make them.
    pub fn create(count: usize) -> Option<Network> {
        let mut network = Network::bridge(&[])?;
        for _ in 0..count {
            network.add_host();
        }
        Some(network)
    }

    /// An empty bridge, or `None` (after saying why) where this process may not make
    /// namespaces or lacks one of `commands` (checked with `COMMAND --version`).
    pub fn bridge(commands: &[&str]) -> Option<Network> {
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
    pub fn add_host(&mut self) {
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
    pub fn add_host_behind_nat(&mut self, nat: Nat) {
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
    pub fn cut(&self, i: usize) {
        ip(&["link", "set", &self.hosts[i].link, "nomaster"]).unwrap();
    }

    /// Puts host `i` back on the bridge.
    pub fn mend(&self, i: usize) {
        ip(&["link", "set", &self.hosts[i].link, "master", &self.bridge]).unwrap();
    }
}

/// How a NAT picks the port a connection leaves from.
#[derive(Clone, Copy)]
pub enum Nat {
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
