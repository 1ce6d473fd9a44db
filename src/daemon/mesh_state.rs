//! What a node remembers of the mesh between runs, in `mesh.json` in its home
//! (`spec/wire.md`): the ports its default listen addresses were bound to, so that it
//! comes back where its peers look for it, and the peers it knew, so that it rejoins
//! them without being told. The file is a cache: a missing or unreadable one is logged
//! and the node starts as on its first run.

use std::net::{IpAddr, TcpListener, UdpSocket};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use spore_node::Home;
use spore_node::mesh::{Multiaddr, Protocol};

pub const MESH_FILE: &str = "mesh.json";

/// Where `spore node run` listens when no `--listen` is given: every interface, TCP and
/// QUIC, on the ports of the last run (or fresh ones on the first).
pub const DEFAULT_LISTEN: [&str; 2] = ["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"];

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshState {
    /// The default listen addresses with the ports they were bound to.
    #[serde(default)]
    pub listen: Vec<String>,
    /// The known peers' addresses, each with `/p2p/`, the most recently seen peer first.
    #[serde(default)]
    pub peers: Vec<String>,
}

impl MeshState {
    /// The state the last run left in `home`, or an empty one.
    pub fn load(home: &Home) -> MeshState {
        let path = path(home);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return MeshState::default(),
            Err(e) => {
                tracing::warn!("cannot read {}: {e}; starting afresh", path.display());
                return MeshState::default();
            }
        };
        serde_json::from_str(&text).unwrap_or_else(|e| {
            tracing::warn!("{} is not valid: {e}; starting afresh", path.display());
            MeshState::default()
        })
    }

    /// Writes the state into `home`, replacing the file whole so that a crash leaves the
    /// old one or the new one.
    pub fn save(&self, home: &Home) -> std::io::Result<()> {
        spore_node::home::replace_private_file(&path(home), &serde_json::to_vec_pretty(self)?)
    }

    /// The remembered peers that parse as peer addresses.
    pub fn peers(&self) -> Vec<Multiaddr> {
        self.peers
            .iter()
            .filter_map(|text| match text.parse::<Multiaddr>() {
                Ok(addr) if matches!(addr.iter().last(), Some(Protocol::P2p(_))) => Some(addr),
                _ => {
                    tracing::warn!("ignoring `{text}` in {MESH_FILE}: not a peer address");
                    None
                }
            })
            .collect()
    }

    /// [`DEFAULT_LISTEN`] on the ports remembered for each, where they are still free.
    pub fn default_listen(&self) -> Vec<Multiaddr> {
        let remembered: Vec<Multiaddr> =
            self.listen.iter().filter_map(|a| a.parse().ok()).collect();
        defaults()
            .into_iter()
            .map(|default| {
                let Some(last) = remembered.iter().find(|a| with_port(a, 0) == default) else {
                    return default;
                };
                if is_free(last) {
                    last.clone()
                } else {
                    tracing::warn!(
                        %last,
                        "the port this node listened on last time is taken; listening on a fresh one"
                    );
                    default
                }
            })
            .collect()
    }

    /// Remembers the ports the default listen addresses were bound to, read from the
    /// addresses the mesh reports (one per interface, same port).
    pub fn remember_listen(&mut self, bound: &[Multiaddr]) {
        self.listen = defaults()
            .into_iter()
            .filter_map(|default| {
                bound
                    .iter()
                    .find(|b| same_transport(b, &default))
                    .and_then(port)
                    .map(|p| with_port(&default, p).to_string())
            })
            .collect();
    }
}

fn path(home: &Home) -> PathBuf {
    home.root().join(MESH_FILE)
}

fn defaults() -> Vec<Multiaddr> {
    DEFAULT_LISTEN
        .iter()
        .map(|a| a.parse().expect("the default listen addresses parse"))
        .collect()
}

fn port(addr: &Multiaddr) -> Option<u16> {
    addr.iter().find_map(|p| match p {
        Protocol::Tcp(port) | Protocol::Udp(port) => Some(port),
        _ => None,
    })
}

fn with_port(addr: &Multiaddr, port: u16) -> Multiaddr {
    addr.iter()
        .map(|p| match p {
            Protocol::Tcp(_) => Protocol::Tcp(port),
            Protocol::Udp(_) => Protocol::Udp(port),
            other => other,
        })
        .collect()
}

/// Whether `bound` (an interface address, maybe with `/p2p/`) was bound for `default`:
/// the same protocols, whatever the IP address and ports.
fn same_transport(bound: &Multiaddr, default: &Multiaddr) -> bool {
    let shape = |a: &Multiaddr| -> Vec<String> {
        a.iter()
            .filter_map(|p| match p {
                Protocol::Ip4(_) => Some("ip4".to_owned()),
                Protocol::Ip6(_) => Some("ip6".to_owned()),
                Protocol::P2p(_) => None,
                other => Some(with_port(&Multiaddr::empty().with(other), 0).to_string()),
            })
            .collect()
    };
    shape(bound) == shape(default)
}

/// Whether nothing else listens on `addr`'s port. libp2p binds its listeners with
/// `SO_REUSEPORT`, so its own bind would succeed beside another spore node of the same
/// user; a probe without that option fails instead. (Another process may still take the
/// port before libp2p binds it; that race is the same as on a first run.)
fn is_free(addr: &Multiaddr) -> bool {
    let mut parts = addr.iter();
    let ip: IpAddr = match parts.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return false,
    };
    match parts.next() {
        Some(Protocol::Tcp(port)) => TcpListener::bind((ip, port)).is_ok(),
        Some(Protocol::Udp(port)) => UdpSocket::bind((ip, port)).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(texts: &[&str]) -> Vec<Multiaddr> {
        texts.iter().map(|t| t.parse().unwrap()).collect()
    }

    #[test]
    fn the_file_of_the_spec_reads_back_the_same() {
        let text = include_str!("../../spec/vectors/mesh.json");
        let state: MeshState = serde_json::from_str(text).unwrap();
        assert_eq!(
            state.listen,
            ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
        );
        assert_eq!(state.peers().len(), 3);
        let written: serde_json::Value =
            serde_json::from_slice(&serde_json::to_vec(&state).unwrap()).unwrap();
        assert_eq!(
            written,
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
    }

    #[test]
    fn the_bound_ports_are_remembered_per_default_address() {
        let mut state = MeshState::default();
        let peer = "12D3KooWD5hnQD22gFFXrQEZYvNMsXMiq19B48UTKSMVLBrLBatx";
        state.remember_listen(&addrs(&[
            &format!("/ip4/127.0.0.1/tcp/40123/p2p/{peer}"),
            &format!("/ip4/10.0.0.5/tcp/40123/p2p/{peer}"),
            &format!("/ip4/127.0.0.1/udp/51234/quic-v1/p2p/{peer}"),
        ]));
        assert_eq!(
            state.listen,
            ["/ip4/0.0.0.0/tcp/40123", "/ip4/0.0.0.0/udp/51234/quic-v1"]
        );
    }

    #[test]
    fn a_free_remembered_port_is_reused_and_a_taken_one_replaced_by_a_fresh_one() {
        let taken = TcpListener::bind("0.0.0.0:0").unwrap();
        let taken_port = taken.local_addr().unwrap().port();
        let free_port = {
            let probe = UdpSocket::bind("0.0.0.0:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let state = MeshState {
            listen: vec![
                format!("/ip4/0.0.0.0/tcp/{taken_port}"),
                format!("/ip4/0.0.0.0/udp/{free_port}/quic-v1"),
            ],
            peers: Vec::new(),
        };
        assert_eq!(
            state.default_listen(),
            addrs(&[
                "/ip4/0.0.0.0/tcp/0",
                &format!("/ip4/0.0.0.0/udp/{free_port}/quic-v1"),
            ])
        );
        assert_eq!(MeshState::default().default_listen(), defaults());
    }

    #[test]
    fn addresses_that_are_not_peer_addresses_are_skipped() {
        let state = MeshState {
            listen: Vec::new(),
            peers: vec![
                "/ip4/127.0.0.1/tcp/4001".into(),
                "not an address".into(),
                "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWD5hnQD22gFFXrQEZYvNMsXMiq19B48UTKSMVLBrLBatx"
                    .into(),
            ],
        };
        assert_eq!(state.peers().len(), 1);
    }
}
