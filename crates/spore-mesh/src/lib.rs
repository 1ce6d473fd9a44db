//! spore's peer-to-peer layer: how nodes find each other, move modules between them
//! with verification, and carry remote invocations (`spec/wire.md`).
//!
//! A [`Mesh`] runs one libp2p swarm (TCP with noise and yamux, QUIC, identify, ping,
//! Kademlia in server mode, optional mDNS, gossipsub) and spore's stream protocols:
//! `/spore/fetch/2` (and `/1` for peers that predate it), which transfers a module in
//! 1 MiB ranges that are each verified against the module hash before they are kept,
//! and `/spore/invoke/3`, which carries numbered invocations and their answers on one
//! long-lived stream per peer. Every wait has a deadline, and [`Mesh::shutdown`] ends
//! every task the mesh started.
//!
//! A node stays in touch with the peers it knows: `peers` keeps them (connections held
//! open, lost ones redialed with capped backoff) and `liveness` closes a connection
//! whose peer stopped answering pings, so that nothing waits on a dead link.
//!
//! No peer is served until it is admitted: the first message each way on a connection
//! is a hello carrying the node's membership certificate (`membership`,
//! `spec/trust.md`), and a peer whose certificate does not admit it to this node's mesh
//! is disconnected.
//!
//! Modules by concern: `behaviour` builds the swarm, `swarm` runs it, `membership`
//! judges peers, `discovery`
//! holds the DHT keys and gossip hints, `streams` opens and accepts raw streams,
//! `wire` frames messages, `verify` is bao, `fetch` and `invoke` are the protocols,
//! `peers` and `liveness` keep the node's place in the mesh, `mesh` is the handle.
//!
//! What this crate must not know: wasmtime, names, configuration files and placement
//! policy. The node decides where a call runs and what a module means; the mesh only
//! moves bytes and requests, and asks its [`MeshHost`] for modules and for running the
//! invocations peers send.

mod behaviour;
mod candidates;
mod connections;
mod discovery;
mod error;
mod fetch;
mod identity;
mod invoke;
mod liveness;
mod membership;
mod mesh;
mod names;
mod peers;
mod reachability;
mod record_store;
mod streams;
mod swarm;
#[cfg(test)]
mod testing;
mod topics;
mod verify;
mod wire;

use std::num::NonZeroUsize;
use std::time::Duration;

pub use libp2p::{Multiaddr, PeerId, identity::Keypair, multiaddr::Protocol};

pub use connections::PeerConnection;
pub use error::{FailureReason, FetchError, MeshError, ProviderFailure};
pub use fetch::{FetchProgress, Fetched};
pub use identity::{keypair_key, node_key, peer_id_of};
pub use membership::{Admitted, Membership};
pub use mesh::Mesh;
pub use reachability::{Dialable, Reachability};
pub use spore_core::{CallRequest, Cancel, Failure, Path, PathStep};
pub use topics::{MAX_TOPIC_MESSAGE_BYTES, TopicMessage};
pub use wire::{InvokeResponse, Returned};

/// How a node joins the mesh.
pub struct MeshConfig {
    pub keypair: Keypair,
    /// Addresses to listen on, e.g. `/ip4/127.0.0.1/tcp/0` and
    /// `/ip4/127.0.0.1/udp/0/quic-v1`.
    pub listen: Vec<Multiaddr>,
    /// Addresses peers should dial to reach this node, when they cannot use its listen
    /// addresses (a port forward, a NAT, a proxy). When given, peers are told these and
    /// not the listen addresses; when empty, the listen addresses.
    pub announce: Vec<Multiaddr>,
    /// Peers to join through, each with a `/p2p/<peer id>` suffix. Unreachable ones are
    /// logged, never fatal: a node must start even when its bootstrap peers are down.
    pub bootstrap: Vec<Multiaddr>,
    /// Discover peers on the local network with mDNS.
    pub mdns: bool,
    /// Abilities this node serves for others, advertised in the DHT.
    pub abilities: Vec<String>,
    /// This node's mesh: its certificate and the revocations it knows. Without one, the
    /// node admits no peer (`spec/trust.md`).
    pub membership: Option<Membership>,
    /// Relaying, for nodes behind NATs.
    pub nat: NatConfig,
}

/// Relaying (circuit relay v2), for nodes that cannot be dialled: behind a NAT or a
/// firewall, or listening on no reachable address.
#[derive(Debug, Clone, Default)]
pub struct NatConfig {
    /// Relay circuits for the mesh's members: for a node that everyone can dial (a
    /// public address). Its certificate must grant it the role [`RELAY_ROLE`] for
    /// members to use it.
    pub serve_relay: bool,
    /// Relays to be reachable through, each with its `/p2p/<peer id>`. The node dials
    /// each, and listens through it once the relay is admitted with the role
    /// [`RELAY_ROLE`]; its peers then reach it through the relay, and a relayed
    /// connection is upgraded to a direct one when hole punching (DCUtR) succeeds.
    pub relays: Vec<Multiaddr>,
}

/// The role a mesh certificate gives a node that relays for the others (`spec/trust.md`).
pub const RELAY_ROLE: &str = "relay";

/// Knobs that a deployment rarely touches; [`Mesh::start`] uses the defaults.
#[derive(Debug, Clone)]
pub struct MeshTuning {
    /// Kademlia's k: the size of each routing-table bucket and how many peers a record
    /// is stored on. Small meshes in tests lower it to force multi-hop routing.
    pub kademlia_k: NonZeroUsize,
    /// How long an unused invoke stream is kept (and with it its connection). libp2p's
    /// default idle timeout (10 s) would drop peers between two calls.
    pub idle_connection_timeout: Duration,
    /// How long a connection this node dialed to a peer it does not keep may carry no
    /// stream of spore's own (fetch, invoke, hello) before it is closed; gossip's
    /// streams do not count. Most are Kademlia's, dialed for one lookup.
    pub unused_connection_timeout: Duration,
    /// How many peers the node keeps (`Mesh::known_peers`): connected, and redialed when
    /// the connection is lost. The connections a node holds are these, those its peers
    /// keep to it, and the ones used within `unused_connection_timeout`.
    pub kept_peers: usize,
    /// How often this node offers its provider records (of the modules it holds and the
    /// abilities it serves) again to the peers closest to their keys, which keep them
    /// for 48 hours (libp2p's provider record lifetime). Tests shorten it to see a
    /// republication happen.
    pub provider_republish_interval: Duration,
    /// How many 1 MiB ranges one fetch keeps in flight per provider (of 16 in all). With
    /// one provider, 4 held a 64 MiB fetch on loopback to 189 ms and 16 to 175 ms
    /// (`cargo bench --bench mesh -- fetch_64mib`).
    pub ranges_in_flight_per_provider: usize,
    /// The largest module a fetch accepts: a provider claiming more is not believed, and
    /// nothing is downloaded. A node sets its own `[limits.module] max_bytes` here, so
    /// that a peer cannot make it download what it would refuse to store.
    pub max_module_bytes: u64,
    /// Admits every peer whatever its hello says, and sends none: the crate's tests use
    /// it to play a stranger that skips its own checks and speaks the protocols
    /// directly, before the node it talks to could judge it.
    #[cfg(test)]
    pub(crate) trust_everyone: bool,
    /// Speaks `/spore/fetch/1` and not `/2`, as a node of an earlier version does.
    #[cfg(test)]
    pub(crate) predates_fetch_2: bool,
}

impl Default for MeshTuning {
    fn default() -> Self {
        MeshTuning {
            kademlia_k: NonZeroUsize::new(20).expect("20 is not zero"),
            idle_connection_timeout: Duration::from_secs(60),
            unused_connection_timeout: Duration::from_secs(10),
            kept_peers: crate::peers::KEPT_PEERS,
            // libp2p's default: a quarter of the records' lifetime.
            provider_republish_interval: Duration::from_secs(12 * 60 * 60),
            ranges_in_flight_per_provider: 16,
            max_module_bytes: crate::fetch::MAX_MODULE_SIZE,
            #[cfg(test)]
            trust_everyone: false,
            #[cfg(test)]
            predates_fetch_2: false,
        }
    }
}

/// What the mesh needs from its node. Methods may block, and the mesh calls them where
/// blocking is allowed, except [`MeshHost::invoke_now`], which must not.
pub trait MeshHost: Send + Sync + 'static {
    /// The verified bytes of module `hash`, if this node holds it.
    fn module_bytes(&self, hash: &spore_core::Hash) -> Option<Vec<u8>>;
    /// Every module hash this node holds (announced at start).
    fn module_hashes(&self) -> Vec<spore_core::Hash>;
    /// Runs a call a peer sent (`spec/wire.md`, `/spore/invoke/3`). `cancel` is set
    /// when the peer stops waiting for it (its stream closed).
    fn invoke(&self, request: CallRequest, from: PeerId, cancel: Cancel) -> InvokeResponse;
    /// Answers a call at once when the host knows it will neither block nor run for more
    /// than a few milliseconds; otherwise hands the request back, and the mesh calls
    /// [`MeshHost::invoke`] where blocking is allowed. It is called on the mesh's own
    /// threads: handing a call to the blocking pool costs two thread wake-ups, most of a
    /// remote round trip for a short call.
    fn invoke_now(&self, request: CallRequest, from: PeerId) -> InvokeNow {
        let _ = from;
        InvokeNow::Later(request)
    }
    /// A revocation of this node's mesh that a peer told it of and it did not know:
    /// for the node to keep. The mesh already applies it.
    fn revocation_learned(
        &self,
        revocation: &spore_core::trust::Signed<spore_core::trust::Revocation>,
    ) {
        let _ = revocation;
    }
    /// Publications of a mesh name that a member sent (on gossip) or stored here (in the
    /// DHT), every record verified and linked: for the node to judge, keep and believe
    /// as its policy says.
    fn chain_received(&self, run: spore_core::trust::ChainRun, from: PeerId) {
        let _ = (run, from);
    }
}

/// What [`MeshHost::invoke_now`] did with a call.
#[derive(Debug)]
pub enum InvokeNow {
    /// It answered the call.
    Answered(InvokeResponse),
    /// It handed the call back, to be run where blocking is allowed.
    Later(CallRequest),
}
