//! The task that owns the libp2p swarm: it reacts to network events and to the
//! commands [`Mesh`](crate::Mesh) handles send it. Streams do not pass through here:
//! fetch and invoke open and accept them through [`crate::streams`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identify, kad, mdns, ping};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};
use tracing::{debug, info, trace, warn};

use crate::MeshError;
use crate::MeshHost;
use crate::behaviour::{Behaviour, BehaviourEvent, GOSSIP_TOPIC};
use crate::connections::Connections;
use crate::discovery::{Announcement, Hints, Offers, ProviderQueries, ProviderQuery};
use crate::liveness::{self, Liveness};
use crate::membership::Members;
use crate::names::{ChainQueries, ChainQuery};
use crate::streams::Control;

mod addresses;
mod admission;
mod dht;
mod links;
mod names;
mod nat;
mod topics;

pub(crate) enum Command {
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    ConnectedPeers(oneshot::Sender<Vec<PeerId>>),
    /// Every open connection.
    Connections(oneshot::Sender<Vec<crate::PeerConnection>>),
    /// The kept peers' addresses, each with `/p2p/`.
    KnownPeers(oneshot::Sender<Vec<Multiaddr>>),
    /// Become a provider of the key (module or ability) in the DHT; `stored` is told
    /// when the record has been offered to the closest peers (or that failed).
    Provide {
        key: kad::RecordKey,
        stored: oneshot::Sender<()>,
    },
    /// Announce a publication on gossip.
    Gossip(spore_core::Hash),
    /// Look up providers of the key; each is sent once on `found` as it is discovered,
    /// and `found` closes when the lookup is over.
    FindProviders {
        key: kad::RecordKey,
        deadline: Instant,
        found: mpsc::UnboundedSender<PeerId>,
    },
    /// Peers that announced the module on gossip.
    Hints {
        hash: spore_core::Hash,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    /// Spread a publisher's whole chain of a name (gossip: its latest records; DHT: all).
    PublishChain(spore_core::trust::ChainRun),
    /// Look up a chain in the DHT; `reply` gets the longest valid one found.
    FindChain {
        key: kad::RecordKey,
        deadline: Instant,
        reply: oneshot::Sender<Option<spore_core::trust::ChainRun>>,
    },
    /// Deliver the messages published on the topic to `deliver` (this node's own
    /// publications included).
    SubscribeTopic {
        topic: spore_core::topic::Topic,
        deliver: mpsc::Sender<crate::TopicMessage>,
    },
    /// Publish an encoded topic message (`crate::topics`) on gossip and to this node's
    /// subscribers.
    PublishTopic {
        topic: spore_core::topic::Topic,
        encoded: ([u8; 16], Vec<u8>),
        message: ciborium::Value,
        reply: oneshot::Sender<Result<(), crate::MeshError>>,
    },
    /// Connect to the peer if no connection is open or being opened (to have it judged);
    /// `connected` is told when a connection is open, or why none could be.
    Dial {
        peer: PeerId,
        connected: oneshot::Sender<Result<(), String>>,
    },
    /// The peer was admitted: route to it and keep it.
    Admitted(PeerId),
    /// The peer was not admitted, or no longer is: disconnect and forget it.
    Refused {
        peer: PeerId,
        why: String,
    },
    /// What the peer sent before its hello was judged, now that it is admitted.
    Judged(PeerId, admission::Deferred),
}

pub(crate) struct SwarmTask {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    shutdown: watch::Receiver<bool>,
    queries: ProviderQueries,
    hints: Hints,
    bootstrap_peers: HashSet<PeerId>,
    /// Bootstrap peers already reported unreachable: they are redialed until they
    /// answer, and one warning each is enough.
    warned_unreachable: HashSet<PeerId>,
    /// Addresses given to peers instead of the listen addresses, if any.
    announce: Vec<Multiaddr>,
    liveness: Liveness,
    connections: Connections,
    /// The remote address of the latest connection to each peer, to tell whether its
    /// loopback listen addresses can be ours to dial.
    remote_addrs: HashMap<PeerId, Multiaddr>,
    provide_waiters: HashMap<kad::QueryId, oneshot::Sender<()>>,
    /// Who waits for each dial of `Command::Dial`, and the peer dialed.
    dial_waiters: HashMap<ConnectionId, (PeerId, oneshot::Sender<Result<(), String>>)>,
    republished: bool,
    /// The provider records being offered again after bootstrap.
    offers: Offers,
    topic: gossipsub::IdentTopic,
    members: Arc<Members>,
    control: Control,
    /// This task's own command queue, for the tasks it spawns to report to it; weak, so
    /// that the task still stops when every [`Mesh`](crate::Mesh) handle is gone.
    to_self: mpsc::WeakSender<Command>,
    /// The addresses each peer announced, kept until it is admitted.
    identified: HashMap<PeerId, Vec<Multiaddr>>,
    names_topic: gossipsub::IdentTopic,
    chain_queries: ChainQueries,
    /// The topics this node subscribes to, by gossipsub topic.
    topics: HashMap<gossipsub::TopicHash, topics::Subscribed>,
    /// Told of the mesh names members send.
    host: Arc<dyn MeshHost>,
    /// The relays this node listens through.
    relays: nat::Relays,
    /// How peers reach this node, as its handles read it.
    reachability: Arc<crate::reachability::Shared>,
    /// How long a connection this node dialed to a peer it does not keep may go without
    /// spore streams (`MeshTuning::unused_connection_timeout`).
    idle: Duration,
}

impl SwarmTask {
    pub fn new(
        swarm: Swarm<Behaviour>,
        (commands, to_self): (mpsc::Receiver<Command>, mpsc::WeakSender<Command>),
        shutdown: watch::Receiver<bool>,
        (config, tuning): (&crate::MeshConfig, &crate::MeshTuning),
        (members, control): (Arc<Members>, Control),
        host: Arc<dyn MeshHost>,
    ) -> Result<Self, MeshError> {
        let mut task = SwarmTask {
            swarm,
            commands,
            shutdown,
            queries: ProviderQueries::default(),
            hints: Hints::new(),
            bootstrap_peers: HashSet::new(),
            warned_unreachable: HashSet::new(),
            announce: config.announce.clone(),
            liveness: Liveness::default(),
            connections: Connections::default(),
            remote_addrs: HashMap::new(),
            provide_waiters: HashMap::new(),
            dial_waiters: HashMap::new(),
            republished: false,
            offers: Offers::default(),
            topic: gossipsub::IdentTopic::new(GOSSIP_TOPIC),
            members,
            control,
            to_self,
            identified: HashMap::new(),
            names_topic: gossipsub::IdentTopic::new(crate::names::NAMES_TOPIC),
            chain_queries: ChainQueries::default(),
            topics: HashMap::new(),
            host,
            relays: nat::Relays::new(&config.nat.relays)?,
            reachability: Arc::default(),
            idle: tuning.unused_connection_timeout,
        };
        if !task.announce.is_empty() {
            task.advertise_listen_addrs();
        }
        Ok(task)
    }

    pub fn swarm_mut(&mut self) -> &mut Swarm<Behaviour> {
        &mut self.swarm
    }

    /// Dials every bootstrap address and starts a Kademlia bootstrap. Nothing here is
    /// fatal: an unreachable bootstrap peer shows up as a warning when its dial fails,
    /// and the peer book redials it until it answers.
    pub fn bootstrap(&mut self, addrs: &[Multiaddr]) {
        // The relays are peers to keep like the bootstrap ones: a node behind a NAT is
        // reachable only while it is connected to one.
        let addrs: Vec<Multiaddr> = addrs
            .iter()
            .cloned()
            .chain(self.relays.dial_addrs())
            .collect();
        let mut kept = Vec::new();
        for addr in &addrs {
            let Some(Protocol::P2p(peer)) = addr.iter().last() else {
                warn!(%addr, "bootstrap address has no /p2p/<peer id> suffix; dialing it without adding it to the DHT");
                if let Err(e) = self.swarm.dial(addr.clone()) {
                    warn!(%addr, "cannot dial bootstrap address: {e}");
                }
                continue;
            };
            let mut transport_addr = addr.clone();
            transport_addr.pop();
            self.bootstrap_peers.insert(peer);
            let behaviour = self.swarm.behaviour_mut();
            behaviour.kad.add_address(&peer, transport_addr.clone());
            kept.push((peer, transport_addr));
        }
        // Last first: should the peer book overflow, the peers it drops are the ones
        // given first to it, and the first given (explicit ones before remembered
        // ones, the most recently seen first) matter most.
        for (peer, addr) in kept.into_iter().rev() {
            self.swarm.behaviour_mut().peers.add_bootstrap(peer, addr);
        }
        if !addrs.is_empty()
            && let Err(e) = self.swarm.behaviour_mut().kad.bootstrap()
        {
            warn!("cannot bootstrap the DHT: {e}");
        }
    }

    /// Drives the swarm until every listener reported its bound address, so that
    /// [`Mesh::listen_addrs`](crate::Mesh::listen_addrs) is complete once `start` returns.
    pub async fn wait_for_listeners(
        &mut self,
        mut pending: HashMap<ListenerId, Multiaddr>,
        timeout: Duration,
    ) -> Result<(), MeshError> {
        let deadline = Instant::now() + timeout;
        while !pending.is_empty() {
            let event = tokio::select! {
                event = self.swarm.select_next_some() => event,
                _ = sleep_until(deadline) => {
                    let addr = pending.into_values().next().expect("pending is not empty");
                    return Err(MeshError::Listen { addr, reason: format!("no address bound within {timeout:?}") });
                }
            };
            match &event {
                SwarmEvent::NewListenAddr { listener_id, .. } => {
                    pending.remove(listener_id);
                }
                SwarmEvent::ListenerClosed {
                    listener_id,
                    reason,
                    ..
                } => {
                    if let Some(addr) = pending.remove(listener_id) {
                        let reason = match reason {
                            Ok(()) => "listener closed".to_owned(),
                            Err(e) => e.to_string(),
                        };
                        return Err(MeshError::Listen { addr, reason });
                    }
                }
                SwarmEvent::ListenerError { listener_id, error } => {
                    if let Some(addr) = pending.remove(listener_id) {
                        return Err(MeshError::Listen {
                            addr,
                            reason: error.to_string(),
                        });
                    }
                }
                _ => {}
            }
            self.on_event(event);
        }
        Ok(())
    }

    pub async fn run(mut self) {
        let mut liveness_check = interval(liveness::CHECK_EVERY);
        liveness_check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let wake = self.queries.next_wake();
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_event(event),
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    // Every Mesh handle is gone.
                    None => break,
                },
                // A shutdown request, or the Mesh dropped without one.
                _ = self.shutdown.changed() => break,
                _ = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                    self.end_expired_queries();
                }
                _ = liveness_check.tick() => {
                    self.close_dead_links();
                    self.close_needless();
                    self.refuse_lapsed();
                    self.end_expired_chain_queries();
                }
            }
        }
        debug!("swarm task stopped");
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::ListenAddrs(reply) => {
                let local = *self.swarm.local_peer_id();
                // A relayed listen address already ends with this node's id.
                let addrs = self
                    .swarm
                    .listeners()
                    .map(|a| match a.iter().last() {
                        Some(Protocol::P2p(_)) => a.clone(),
                        _ => a.clone().with(Protocol::P2p(local)),
                    })
                    .collect();
                let _ = reply.send(addrs);
            }
            Command::ConnectedPeers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::Connections(reply) => {
                let _ = reply.send(self.connections.list());
            }
            Command::KnownPeers(reply) => {
                let _ = reply.send(self.swarm.behaviour().peers.known());
            }
            Command::Provide { key, stored } => {
                match self.swarm.behaviour_mut().kad.start_providing(key) {
                    Ok(id) => {
                        self.provide_waiters.insert(id, stored);
                    }
                    Err(e) => warn!("cannot become a DHT provider: {e:?}"),
                }
            }
            Command::Gossip(hash) => self.gossip(hash),
            Command::FindProviders {
                key,
                deadline,
                found,
            } => {
                let kad = &mut self.swarm.behaviour_mut().kad;
                let id = kad.get_providers(key.clone());
                // The peers it asks first: its hops are counted from them
                // (tests/mesh/hops.rs). Not computed unless traced.
                trace!(query = ?id, first = ?dht::first_asked(kad, key), "provider lookup started");
                self.queries.insert(
                    id,
                    ProviderQuery {
                        found,
                        seen: HashSet::new(),
                        deadline,
                        grace_until: None,
                    },
                );
            }
            Command::Hints { hash, reply } => {
                let _ = reply.send(self.hints.get(&hash));
            }
            Command::Dial { peer, connected } => self.dial(peer, connected),
            Command::PublishChain(chain) => self.publish_chain(chain),
            Command::SubscribeTopic { topic, deliver } => self.subscribe_topic(topic, deliver),
            Command::PublishTopic {
                topic,
                encoded,
                message,
                reply,
            } => {
                let _ = reply.send(self.publish_topic(topic, encoded, message));
            }
            Command::FindChain {
                key,
                deadline,
                reply,
            } => {
                let id = self.swarm.behaviour_mut().kad.get_record(key.clone());
                self.chain_queries.insert(
                    id,
                    ChainQuery {
                        reply,
                        key,
                        best: None,
                        deadline,
                    },
                );
            }
            Command::Admitted(peer) => self.on_admitted(peer),
            Command::Refused { peer, why } => self.on_refused(peer, &why),
            Command::Judged(peer, deferred) => self.on_judged(peer, deferred),
        }
    }

    fn gossip(&mut self, hash: spore_core::Hash) {
        let announcement = Announcement {
            hash,
            peer: self.swarm.local_peer_id().to_string(),
        };
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), announcement.to_bytes())
        {
            Ok(_) => {}
            // Alone, or announcing twice: the DHT record is what finds us anyway.
            Err(
                gossipsub::PublishError::NoPeersSubscribedToTopic
                | gossipsub::PublishError::Duplicate,
            ) => {}
            Err(e) => debug!(%hash, "cannot announce on gossip: {e}"),
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.on_kad(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => self.on_identified(peer_id, info),
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    debug!(%peer, %addr, "discovered on the local network");
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    let dial = DialOpts::peer_id(peer)
                        .addresses(vec![addr])
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build();
                    if let Err(e) = self.swarm.dial(dial) {
                        debug!(%peer, "cannot dial a peer found by mDNS: {e}");
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                message,
                ..
            })) => self.on_gossip(message),
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                self.advertise_listen_addrs();
            }
            SwarmEvent::ExpiredListenAddr { .. } => self.advertise_listen_addrs(),
            SwarmEvent::ListenerClosed { listener_id, .. } => {
                self.on_listener_closed(listener_id);
                self.advertise_listen_addrs();
            }
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(event)) => {
                self.on_relay_client(event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(event)) => self.on_dcutr(event),
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(event)) => self.on_autonat(event),
            SwarmEvent::Behaviour(BehaviourEvent::Relay(event)) => {
                debug!(?event, "relay service");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                connection, result, ..
            })) => match result {
                Ok(round_trip) => {
                    self.liveness
                        .answered(connection, Instant::now(), round_trip);
                    self.connections.pinged(connection, round_trip);
                }
                Err(ping::Failure::Unsupported) => self.liveness.forget(connection),
                // Silence is what counts, and `close_dead_links` measures it.
                Err(_) => {}
            },
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                if num_established.get() == 1 {
                    self.greet(peer_id);
                }
                let dialed: Vec<ConnectionId> = (self.dial_waiters.iter())
                    .filter(|(_, (peer, _))| *peer == peer_id)
                    .map(|(id, _)| *id)
                    .collect();
                for id in dialed {
                    if let Some((_, waiter)) = self.dial_waiters.remove(&id) {
                        let _ = waiter.send(Ok(()));
                    }
                }
                debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                self.liveness.opened(connection_id, peer_id, Instant::now());
                self.connections.opened(connection_id, peer_id, &endpoint);
                self.remote_addrs
                    .insert(peer_id, endpoint.get_remote_address().clone());
                if self.warned_unreachable.remove(&peer_id) {
                    info!(peer = %peer_id, "bootstrap peer reached");
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.liveness.forget(connection_id);
                self.connections.closed(connection_id);
                if num_established == 0 {
                    debug!(peer = %peer_id, "disconnected");
                    self.remote_addrs.remove(&peer_id);
                    self.members.disconnected(&peer_id);
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                connection_id,
                error,
            } => {
                if let Some((_, waiter)) = self.dial_waiters.remove(&connection_id) {
                    let outcome = match self.swarm.is_connected(&peer) {
                        true => Ok(()),
                        false => Err(error.to_string()),
                    };
                    let _ = waiter.send(outcome);
                }
                if self.bootstrap_peers.contains(&peer) && self.warned_unreachable.insert(peer) {
                    warn!(%peer, "bootstrap peer is unreachable (retrying): {error}");
                } else {
                    debug!(%peer, "dial failed: {error}");
                }
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, message: gossipsub::Message) {
        if message.topic == self.names_topic.hash() {
            return self.on_names_gossip(message);
        }
        if self.on_topic_gossip(&message) {
            return;
        }
        let Some(announcement) = Announcement::from_bytes(&message.data) else {
            debug!("ignoring a malformed announcement");
            return;
        };
        // Only a member's own announcements count: anyone else could point the mesh at
        // a victim.
        match (announcement.peer.parse::<PeerId>(), message.source) {
            (Ok(peer), Some(source))
                if peer == source && self.members.admitted(&peer).is_none() =>
            {
                debug!(%peer, "ignoring an announcement by a peer that is not admitted");
            }
            (Ok(peer), Some(source)) if peer == source => {
                debug!(hash = %announcement.hash, %peer, "publication announced");
                self.hints.insert(announcement.hash, peer);
            }
            _ => debug!("ignoring an announcement made on another peer's behalf"),
        }
    }
}
