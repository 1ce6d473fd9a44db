//! `spore node status` and `GET /v1/status`: what a running node is doing now: its
//! peers (roles, what they may serve, their connections), the abilities it advertises,
//! the calls running on it, the modules it is fetching, and the functions that took it
//! the most time. `GET /v1/fetches` answers the fetches alone, for the CLI's progress
//! bars to poll.
//!
//! [`NodeStatus`] and [`FetchStatus`] are the API's answers as they travel; the CLI
//! reads them back as they are.

use serde::{Deserialize, Serialize};
use spore_node::{Home, Node, mesh};

use crate::cli::backend::Remote;
use crate::cli::output::{Output, bytes, outln};

/// How many functions the status lists, busiest first.
const BUSIEST: usize = 10;

#[derive(Debug, Serialize, Deserialize)]
pub struct NodeStatus {
    pub peer_id: String,
    /// This node's mesh key, if it belongs to a mesh.
    pub mesh: Option<String>,
    /// The abilities this node advertises to the mesh.
    pub adverts: Vec<String>,
    pub calls_in_flight: i64,
    /// The modules being fetched from the mesh now. Absent from a node older than this
    /// field: none, then.
    #[serde(default)]
    pub fetches: Vec<FetchStatus>,
    /// How peers reach this node; `null` without a mesh, and absent from a node older
    /// than this field.
    #[serde(default)]
    pub reachability: Option<ReachabilityStatus>,
    pub peers: Vec<PeerStatus>,
    pub functions: Vec<FunctionStatus>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ReachabilityStatus {
    /// Whether peers can dial this node, as AutoNAT last judged: `yes`, `no` or
    /// `unknown`.
    pub dialable: String,
    /// The address a peer dialled back, when `yes`.
    pub dialable_at: Option<String>,
    /// The relays holding a reservation for this node now.
    pub relays: Vec<String>,
    /// Relayed connections a hole punch replaced by a direct one since the node started.
    pub holes_punched: u64,
    /// Hole punches that gave up: those connections stayed relayed.
    pub hole_punches_failed: u64,
}

/// One fetch in flight (`GET /v1/fetches`, and `fetches` in `GET /v1/status`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchStatus {
    /// Tells fetches apart from one answer to the next, even two of one module.
    pub id: u64,
    /// The module's hash.
    pub hash: spore_core::Hash,
    /// The peers that delivered part of it so far, first first.
    pub peers: Vec<String>,
    /// Verified bytes received so far.
    pub received: u64,
    /// The module's size, once a peer has proven it.
    pub size: Option<u64>,
    pub elapsed_ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PeerStatus {
    pub peer_id: String,
    /// Whether its certificate admits it to this node's mesh; a peer not (yet) admitted
    /// is served nothing.
    pub member: bool,
    pub roles: Vec<String>,
    /// The abilities its certificate lets it serve to the mesh.
    pub serves: Vec<String>,
    pub connections: Vec<ConnectionStatus>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ConnectionStatus {
    pub address: String,
    /// `dialed` (this node opened it) or `accepted`.
    pub direction: String,
    /// Whether it goes through a relay rather than direct.
    pub relayed: bool,
    pub open_seconds: u64,
    /// The latest ping's round trip, once one was answered.
    pub round_trip_ms: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FunctionStatus {
    pub function: String,
    pub calls: u64,
    pub errors: u64,
    pub total_ms: f64,
}

/// The status of `node`, whose peer id is `peer_id` (and of its mesh, if it has joined
/// one) now.
pub async fn of(node: &Node, peer_id: String) -> NodeStatus {
    let metrics = node.metrics();
    let functions = metrics
        .busiest_functions(BUSIEST)
        .into_iter()
        .map(|(function, counted)| FunctionStatus {
            function,
            calls: counted.calls,
            errors: counted.errors,
            total_ms: counted.total.as_secs_f64() * 1e3,
        })
        .collect();
    let (mesh_key, reachability, peers) = match node.mesh() {
        Some(mesh) => (
            mesh.mesh().map(|key| key.to_string()),
            Some(reachability(mesh)),
            peers(mesh).await,
        ),
        None => (None, None, Vec::new()),
    };
    NodeStatus {
        peer_id,
        mesh: mesh_key,
        adverts: node.served_abilities(),
        calls_in_flight: metrics.calls_in_flight(),
        fetches: fetches(node),
        reachability,
        peers,
        functions,
    }
}

/// The fetches `node` has in flight, the oldest first; none without a mesh.
pub fn fetches(node: &Node) -> Vec<FetchStatus> {
    let Some(mesh) = node.mesh() else {
        return Vec::new();
    };
    mesh.fetches()
        .into_iter()
        .map(|fetch| FetchStatus {
            id: fetch.id,
            hash: fetch.hash,
            peers: fetch.peers.iter().map(ToString::to_string).collect(),
            received: fetch.received,
            size: fetch.size,
            elapsed_ms: fetch.elapsed.as_millis() as u64,
        })
        .collect()
}

fn reachability(mesh: &mesh::Mesh) -> ReachabilityStatus {
    let reachability = mesh.reachability();
    let (dialable, dialable_at) = match reachability.dialable {
        mesh::Dialable::Yes(addr) => ("yes", Some(addr.to_string())),
        mesh::Dialable::No => ("no", None),
        _ => ("unknown", None),
    };
    ReachabilityStatus {
        dialable: dialable.to_owned(),
        dialable_at,
        relays: reachability
            .relays
            .iter()
            .map(ToString::to_string)
            .collect(),
        holes_punched: reachability.holes_punched,
        hole_punches_failed: reachability.hole_punches_failed,
    }
}

async fn peers(mesh: &mesh::Mesh) -> Vec<PeerStatus> {
    let mut peers: Vec<PeerStatus> = Vec::new();
    // Listed by peer, so each peer's connections come together.
    for connection in mesh.connections().await {
        let status = ConnectionStatus {
            address: connection.remote.to_string(),
            direction: if connection.dialed {
                "dialed"
            } else {
                "accepted"
            }
            .to_owned(),
            relayed: connection.relayed,
            open_seconds: connection.open_for.as_secs(),
            round_trip_ms: connection.round_trip.map(|rtt| rtt.as_secs_f64() * 1e3),
        };
        let peer_id = connection.peer.to_string();
        if let Some(last) = peers.last_mut().filter(|p| p.peer_id == peer_id) {
            last.connections.push(status);
            continue;
        }
        let admitted = mesh.admitted(&connection.peer);
        peers.push(PeerStatus {
            peer_id,
            member: admitted.is_some(),
            roles: admitted
                .as_ref()
                .map(|a| a.roles.clone())
                .unwrap_or_default(),
            serves: admitted.map(|a| a.serves).unwrap_or_default(),
            connections: vec![status],
        });
    }
    peers
}

/// `spore node status`: asks the node running on `home`.
pub fn show(home: &Home, out: &Output) -> anyhow::Result<()> {
    let status: NodeStatus = Remote::running(home)?.get("/v1/status", &[])?;
    if out.json(&status)? {
        return Ok(());
    }
    outln!("peer id   {}", status.peer_id);
    outln!("mesh      {}", status.mesh.as_deref().unwrap_or("none"));
    outln!("adverts   {}", list(&status.adverts));
    outln!("running   {}", counted(status.calls_in_flight, "call"));
    if status.fetches.is_empty() {
        outln!("fetching  none");
    }
    for fetch in &status.fetches {
        let size = fetch.size.map_or_else(|| "?".to_owned(), bytes);
        outln!(
            "fetching  {} {} of {size}, {:.1} s, from {}",
            fetch.hash.short(12),
            bytes(fetch.received),
            fetch.elapsed_ms as f64 / 1e3,
            list(&fetch.peers)
        );
    }
    if let Some(r) = &status.reachability {
        let dialable = match &r.dialable_at {
            Some(addr) => format!("dialable at {addr}"),
            None if r.dialable == "no" => "not dialable".to_owned(),
            None => "dialable: not known yet".to_owned(),
        };
        outln!(
            "reach     {dialable}; through relays {}; holes punched {}, failed {}",
            list(&r.relays),
            r.holes_punched,
            r.hole_punches_failed
        );
    }
    let members = status.peers.iter().filter(|p| p.member).count();
    outln!(
        "peers     {} connected, {members} admitted",
        status.peers.len()
    );
    for peer in &status.peers {
        let standing = if peer.member {
            format!("roles {}; serves {}", list(&peer.roles), list(&peer.serves))
        } else {
            "not admitted".to_owned()
        };
        outln!("  {}  {standing}", peer.peer_id);
        for c in &peer.connections {
            let rtt = c
                .round_trip_ms
                .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1} ms"));
            let path = if c.relayed { "relayed" } else { "direct" };
            outln!(
                "    {} {path} {}, open {} s, round trip {rtt}",
                c.direction,
                c.address,
                c.open_seconds
            );
        }
    }
    if status.functions.is_empty() {
        outln!("functions none called yet");
    } else {
        outln!("functions by time taken (calls, errors, total)");
        for f in &status.functions {
            outln!(
                "  {}  {}, {}, {:.1} ms",
                f.function,
                counted(f.calls, "call"),
                counted(f.errors, "error"),
                f.total_ms
            );
        }
    }
    Ok(())
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

/// `1 call`, `2 calls`.
fn counted(n: impl Into<i128>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
