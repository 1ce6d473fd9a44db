//! The libp2p swarm: transports and the protocols every node runs.

use std::sync::Arc;
use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, autonat, dcutr, gossipsub, identify,
    kad, mdns, noise, ping, relay, tcp, yamux,
};

use tokio::sync::mpsc;

use crate::liveness::{DEAD_AFTER, PING_INTERVAL};
use crate::membership::{HELLO_PROTOCOL, Members};
use crate::record_store::SporeStore;
use crate::wire::{FETCH_PROTOCOL, FETCH_PROTOCOL_V1, INVOKE_PROTOCOL};
use crate::{MeshConfig, MeshError, MeshTuning, candidates, peers, streams};

/// spore's own Kademlia protocol keeps its DHT apart from IPFS's public one.
pub(crate) const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/spore/kad/1");
const IDENTIFY_PROTOCOL: &str = "/spore/id/1";
pub(crate) const GOSSIP_TOPIC: &str = "spore/published/1";

const QUIC_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a new connection may take to be set up (TCP or QUIC, then encryption and
/// multiplexing), in either direction. libp2p's 10 s mostly waits on a dead path: a TCP
/// dial into a partition retransmits its SYN after 1 s and 3 s, then not before 7 s. At
/// 5 s a dial left over from a partition gives up soon after the network heals, and the
/// next one goes through at once; a healthy setup is a few round trips.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// The most bytes one gossip message may carry (`spec/wire.md`).
const GOSSIP_MAX_TRANSMIT: usize = 64 << 10;

/// A node provides one key per module it holds; the in-memory store's defaults (1024
/// keys) would silently stop announcing past that.
const MAX_PROVIDED_KEYS: usize = 1 << 20;
/// Chains of mesh names (value records) this node keeps in the DHT for others; their
/// bytes are bounded too (`crate::record_store`).
const MAX_NAME_RECORDS: usize = 1 << 16;
const MAX_PROVIDERS_PER_KEY: usize = 64;

/// How long one relayed circuit may last, and how many bytes it may carry in all, on a
/// relay this node serves. libp2p's defaults (2 minutes, 128 KiB) suit a relay for
/// strangers that only helps them hole-punch; a mesh's relay carries its members' calls
/// and fetches (a module is up to 64 MiB) when hole punching fails, which libp2p's own
/// measurements put at about 3 connections in 10. A circuit that ends is redialed.
const RELAY_CIRCUIT_DURATION: Duration = Duration::from_secs(60 * 60);
const RELAY_CIRCUIT_BYTES: u64 = 1 << 30;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub kad: kad::Behaviour<SporeStore>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub gossipsub: gossipsub::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub streams: streams::Behaviour,
    pub peers: peers::Behaviour,
    /// The relay this node serves, if it is configured to (`NatConfig::serve_relay`).
    pub relay: Toggle<relay::Behaviour>,
    /// Listening and dialling through relays.
    pub relay_client: relay::client::Behaviour,
    pub dcutr: dcutr::Behaviour,
    pub autonat: autonat::Behaviour,
    /// Confirms this node's direct addresses, telling `dcutr` of them first.
    pub candidates: candidates::Behaviour,
}

/// The swarm, with the handles to its stream protocols.
pub(crate) struct Built {
    pub swarm: Swarm<Behaviour>,
    pub control: streams::Control,
    pub inbound: mpsc::Receiver<streams::Inbound>,
}

/// The relay service's configuration: long circuits, and only for admitted members.
///
/// libp2p's relay takes every connected peer's reservation; a stranger's connection
/// stays up until its hello is refused, seconds in which it could hold a reservation
/// and be reached through this node. Its rate limiters see each request's peer, so a
/// limiter that admits members alone closes that window. A member whose request comes
/// before its hello has been judged is refused, and asks again at once while the relay
/// stays connected and admitted on its side (`SwarmTask::on_listener_closed`).
fn relay_config(members: &Arc<Members>) -> relay::Config {
    let mut config = relay::Config {
        max_circuit_duration: RELAY_CIRCUIT_DURATION,
        max_circuit_bytes: RELAY_CIRCUIT_BYTES,
        ..relay::Config::default()
    };
    let admitted = |members: &Arc<Members>| {
        let members = members.clone();
        Box::new(move |peer: PeerId, _: &Multiaddr, _: std::time::Instant| {
            members.admitted(&peer).is_some()
        })
    };
    // Both ends of a circuit: the one reserving, and the one asking to be connected.
    config.reservation_rate_limiters.push(admitted(members));
    config.circuit_src_rate_limiters.push(admitted(members));
    config
}

pub(crate) fn build_swarm(
    config: &MeshConfig,
    tuning: &MeshTuning,
    members: &Arc<Members>,
) -> Result<Built, MeshError> {
    // Mutated only by a test's tuning.
    #[cfg_attr(not(test), allow(unused_mut))]
    let mut protocols = vec![
        HELLO_PROTOCOL,
        FETCH_PROTOCOL,
        FETCH_PROTOCOL_V1,
        INVOKE_PROTOCOL,
    ];
    #[cfg(test)]
    if tuning.predates_fetch_2 {
        protocols.retain(|p| *p != FETCH_PROTOCOL);
    }
    let local = config.keypair.public().to_peer_id();
    let (streams, control, inbound) = streams::Behaviour::new(local, protocols);
    let transport_error = |e: &dyn std::fmt::Display| MeshError::Transport(e.to_string());
    let swarm = SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| transport_error(&e))?
        // A dial tries every known address of a peer and fails only when all have:
        // a peer that is down refuses TCP at once but leaves a QUIC handshake
        // unanswered, so this bounds how long "peer is gone" takes to learn.
        .with_quic_config(|mut quic| {
            quic.handshake_timeout = QUIC_HANDSHAKE_TIMEOUT;
            quic
        })
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| transport_error(&e))?
        .with_behaviour(|keypair, relay_client| {
            let peer_id = keypair.public().to_peer_id();
            Ok(Behaviour {
                kad: kademlia(peer_id, tuning),
                identify: identify::Behaviour::new(
                    identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), keypair.public())
                        // identify's address cache is what dials a peer we learnt of
                        // from a provider record once that query has finished.
                        .with_cache_size(4096)
                        // A node with announced addresses tells peers only those (its
                        // external addresses, see `SwarmTask::advertise_listen_addrs`).
                        .with_hide_listen_addrs(!config.announce.is_empty())
                        // A relayed address appears after the node has met its
                        // peers: they must hear of it.
                        .with_push_listen_addr_updates(true),
                ),
                // The ping's own timeout only has to outlast the silence that makes a
                // link dead (`liveness`), which decides.
                ping: ping::Behaviour::new(
                    ping::Config::new()
                        .with_interval(PING_INTERVAL)
                        .with_timeout(DEAD_AFTER),
                ),
                gossipsub: gossip(keypair)?,
                mdns: Toggle::from(if config.mdns {
                    Some(mdns::tokio::Behaviour::new(
                        mdns::Config::default(),
                        peer_id,
                    )?)
                } else {
                    None
                }),
                streams,
                peers: peers::Behaviour::new(tuning.kept_peers),
                relay: Toggle::from(
                    config
                        .nat
                        .serve_relay
                        .then(|| relay::Behaviour::new(peer_id, relay_config(members))),
                ),
                relay_client,
                dcutr: dcutr::Behaviour::new(peer_id),
                autonat: autonat::Behaviour::new(peer_id, autonat::Config::default()),
                candidates: candidates::Behaviour::default(),
            })
        })
        .map_err(|e| transport_error(&e))?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(tuning.idle_connection_timeout)
                // Send the request right behind the protocol name instead of waiting for
                // the peer to confirm it: one round trip less per invoke and fetch range.
                .with_substream_upgrade_protocol_override(libp2p::core::upgrade::Version::V1Lazy)
        })
        .with_connection_timeout(CONNECTION_TIMEOUT)
        .build();
    Ok(Built {
        swarm,
        control,
        inbound,
    })
}

fn kademlia(peer_id: libp2p::PeerId, tuning: &MeshTuning) -> kad::Behaviour<SporeStore> {
    let store = kad::store::MemoryStore::with_config(
        peer_id,
        kad::store::MemoryStoreConfig {
            max_records: MAX_NAME_RECORDS,
            // A value record is a name's whole chain (`crate::names`).
            max_value_bytes: spore_core::trust::MAX_CHAIN_MESSAGE_BYTES,
            max_providers_per_key: MAX_PROVIDERS_PER_KEY,
            max_provided_keys: MAX_PROVIDED_KEYS,
        },
    );
    let mut config = kad::Config::new(KAD_PROTOCOL);
    config
        .set_replication_factor(tuning.kademlia_k)
        .set_kbucket_size(tuning.kademlia_k)
        .set_query_timeout(Duration::from_secs(30))
        .set_provider_publication_interval(Some(tuning.provider_republish_interval))
        // Only admitted peers enter the routing table, and only their provider records
        // are kept (`SwarmTask::on_admitted`, `SwarmTask::on_kad`): a stranger must not
        // be routed to, nor advertise an ability or a module.
        .set_kbucket_inserts(kad::BucketInserts::Manual)
        .set_record_filtering(kad::StoreInserts::FilterBoth)
        // A name's chain, with the message's key and envelope.
        .set_max_packet_size(spore_core::trust::MAX_CHAIN_MESSAGE_BYTES + 4096);
    let mut kad = kad::Behaviour::with_config(peer_id, SporeStore::new(store), config);
    // Without a confirmed external address Kademlia stays a client and answers no one,
    // which on loopback and LANs means never; every spore node serves the DHT.
    kad.set_mode(Some(kad::Mode::Server));
    kad
}

fn gossip(
    keypair: &libp2p::identity::Keypair,
) -> Result<gossipsub::Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let config = gossipsub::ConfigBuilder::default()
        .max_transmit_size(GOSSIP_MAX_TRANSMIT)
        .validation_mode(gossipsub::ValidationMode::Strict)
        .message_id_fn(|message: &gossipsub::Message| gossip_message_id(&message.data))
        .build()?;
    let behaviour = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(keypair.clone()),
        config,
    )?;
    Ok(behaviour)
}

/// A gossip message's id: the BLAKE3 hash of its data. Ids are content hashes, so the
/// same announcement relayed by several peers is delivered once.
pub(crate) fn gossip_message_id(data: &[u8]) -> gossipsub::MessageId {
    gossipsub::MessageId::from(blake3::hash(data).as_bytes().to_vec())
}
