//! [`Mesh`]: the handle the node holds. It starts the swarm task and the two protocol
//! servers, and turns its methods into commands, streams and lookups.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tracing::{Instrument, debug, debug_span, info};

use crate::behaviour::{GOSSIP_TOPIC, build_swarm};
use crate::discovery::{ability_key, module_key};
use crate::error::{FetchError, MeshError};
use crate::fetch::{Candidates, FetchProgress, Fetched, Fetches};
use crate::invoke::Channels;
use crate::membership::{Admitted, HELLO_TIMEOUT, Members};
use crate::streams::Control;
use crate::swarm::{Command, SwarmTask};
use crate::wire::InvokeResponse;
use crate::{MeshConfig, MeshHost, MeshTuning};
use spore_core::CallRequest;

mod serve;

/// How long `start` waits for the listeners to bind.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `shutdown` waits for the tasks to stop before aborting them.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Connected peers a fetch asks besides the advertised providers.
const CONNECTED_CANDIDATES: usize = 8;

/// A running mesh node. Clones share it; it stops on [`Mesh::shutdown`] or when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Mesh {
    inner: Arc<Inner>,
}

struct Inner {
    peer_id: PeerId,
    commands: mpsc::Sender<Command>,
    control: Control,
    channels: Channels,
    members: Arc<Members>,
    tuning: MeshTuning,
    /// The fetches in flight, for [`Mesh::fetches`].
    fetches: Fetches,
    reachability: Arc<crate::reachability::Shared>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Mesh {
    /// Starts listening, announces what `host` holds and the configured abilities, and
    /// joins the mesh through the bootstrap peers.
    pub async fn start(config: MeshConfig, host: Arc<dyn MeshHost>) -> Result<Mesh, MeshError> {
        Self::start_tuned(config, host, MeshTuning::default()).await
    }

    /// [`Mesh::start`] with non-default [`MeshTuning`].
    pub async fn start_tuned(
        config: MeshConfig,
        host: Arc<dyn MeshHost>,
        tuning: MeshTuning,
    ) -> Result<Mesh, MeshError> {
        #[cfg_attr(not(test), allow(unused_mut))]
        let mut members = Members::new(config.membership.clone());
        #[cfg(test)]
        {
            members.trust_everyone = tuning.trust_everyone;
        }
        let members = Arc::new(members);
        let built = build_swarm(&config, &tuning, &members)?;
        let mut swarm = built.swarm;
        let peer_id = *swarm.local_peer_id();

        let mut listeners = HashMap::new();
        for addr in &config.listen {
            let id = swarm
                .listen_on(addr.clone())
                .map_err(|e| MeshError::Listen {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })?;
            listeners.insert(id, addr.clone());
        }
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&libp2p::gossipsub::IdentTopic::new(GOSSIP_TOPIC))
            .and_then(|_| {
                swarm
                    .behaviour_mut()
                    .gossipsub
                    .subscribe(&libp2p::gossipsub::IdentTopic::new(
                        crate::names::NAMES_TOPIC,
                    ))
            })
            .map_err(|e| MeshError::Transport(format!("cannot subscribe to gossip: {e}")))?;

        let held = {
            let host = host.clone();
            tokio::task::spawn_blocking(move || host.module_hashes())
                .await
                .map_err(|e| MeshError::Transport(format!("listing held modules failed: {e}")))?
        };
        let kad = &mut swarm.behaviour_mut().kad;
        let keys = held
            .iter()
            .map(module_key)
            .chain(config.abilities.iter().map(|a| ability_key(a)));
        for key in keys {
            if let Err(e) = kad.start_providing(key) {
                tracing::warn!("cannot become a DHT provider: {e:?}");
            }
        }

        match members.mesh() {
            Some(mesh) => info!(%mesh, "member of a mesh: serving only the peers it admits"),
            None => tracing::warn!(
                "this node belongs to no mesh, so it serves no peer; `spore mesh init` makes a mesh, `spore mesh join` joins one"
            ),
        }
        let (commands, command_rx) = mpsc::channel(256);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut task = SwarmTask::new(
            swarm,
            (command_rx, commands.downgrade()),
            shutdown_rx.clone(),
            (&config, &tuning),
            (members.clone(), built.control.clone()),
            host.clone(),
        )?;
        task.wait_for_listeners(listeners, LISTEN_TIMEOUT).await?;
        task.bootstrap(&config.bootstrap);
        let reachability = task.reachability();
        info!(
            peer = %peer_id,
            modules = held.len(),
            abilities = ?config.abilities,
            listen = ?task.swarm_mut().listeners().collect::<Vec<_>>(),
            "mesh started"
        );

        let tasks = vec![
            // Many nodes share a process in tests: their swarms' events (libp2p's among
            // them) carry the node they happened on.
            tokio::spawn(
                task.run()
                    .instrument(debug_span!("mesh_node", peer = %peer_id)),
            ),
            tokio::spawn(serve::serve(
                built.inbound,
                host,
                members.clone(),
                commands.clone(),
                shutdown_rx.clone(),
            )),
        ];
        Ok(Mesh {
            inner: Arc::new(Inner {
                peer_id,
                commands,
                channels: Channels::new(
                    built.control.clone(),
                    tuning.idle_connection_timeout,
                    shutdown_rx,
                ),
                control: built.control,
                members,
                tuning,
                fetches: Fetches::default(),
                reachability,
                shutdown,
                tasks: Mutex::new(tasks),
            }),
        })
    }

    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// The addresses actually bound (ports resolved), each with a `/p2p/` suffix.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.ask(Command::ListenAddrs).await.unwrap_or_default()
    }

    pub async fn connected_peers(&self) -> Vec<PeerId> {
        self.ask(Command::ConnectedPeers).await.unwrap_or_default()
    }

    /// The messages published on `topic` from now on, by admitted members and by this
    /// node itself; at most once, best effort (`spec/wire.md`, "Topics"). The receiver
    /// holds at most a thousand or so: past that, new messages are dropped and logged.
    pub async fn subscribe_topic(
        &self,
        topic: spore_core::topic::Topic,
    ) -> Result<mpsc::Receiver<crate::TopicMessage>, MeshError> {
        let (deliver, receive) = mpsc::channel(crate::topics::SUBSCRIBER_QUEUE);
        self.send(Command::SubscribeTopic { topic, deliver })
            .await?;
        Ok(receive)
    }

    /// Publishes `message` on `topic` to the members subscribed now (and this node's
    /// own subscribers); returns its id once gossip has taken it. No subscriber is not an
    /// error. A message over [`MAX_TOPIC_MESSAGE_BYTES`](crate::MAX_TOPIC_MESSAGE_BYTES)
    /// encoded is refused.
    pub async fn publish_topic(
        &self,
        topic: spore_core::topic::Topic,
        message: ciborium::Value,
        id: [u8; 16],
    ) -> Result<(), MeshError> {
        let data = crate::topics::encode(&id, &message);
        let limit = crate::MAX_TOPIC_MESSAGE_BYTES + crate::topics::ENVELOPE_BYTES;
        if data.len() > limit {
            return Err(MeshError::FrameTooLarge {
                len: data.len(),
                limit,
            });
        }
        self.ask(|reply| Command::PublishTopic {
            topic,
            encoded: (id, data),
            message,
            reply,
        })
        .await?
    }

    /// Every open connection: peer, address, direction, age, round trip.
    pub async fn connections(&self) -> Vec<crate::PeerConnection> {
        self.ask(Command::Connections).await.unwrap_or_default()
    }

    /// How peers reach this node: whether they can dial it, the relays it is reachable
    /// through, and how its hole punches went.
    pub fn reachability(&self) -> crate::Reachability {
        self.inner.reachability.get()
    }

    /// The connected peers this node's mesh admits.
    pub async fn member_peers(&self) -> Vec<PeerId> {
        let mut peers = self.connected_peers().await;
        peers.retain(|p| self.inner.members.admitted(p).is_some());
        peers
    }

    /// What `peer`'s certificate grants it, if it is connected and admitted.
    pub fn admitted(&self, peer: &PeerId) -> Option<Admitted> {
        self.inner.members.admitted(peer)
    }

    /// This node's mesh, if it belongs to one.
    pub fn mesh(&self) -> Option<spore_core::trust::PublicKey> {
        self.inner.members.mesh()
    }

    /// This node's membership certificate, if it belongs to a mesh.
    pub fn certificate(&self) -> Option<&spore_core::trust::Signed<spore_core::trust::Membership>> {
        self.inner.members.own()
    }

    /// Connects to `peer` if needed and waits for it to be judged, until `deadline` at
    /// most: what its certificate grants it, or why it is not admitted.
    pub async fn admit(&self, peer: PeerId, deadline: Instant) -> Result<Admitted, MeshError> {
        if let Some(admitted) = self.inner.members.admitted(&peer) {
            return Ok(admitted);
        }
        let (connected, dialed) = oneshot::channel();
        self.send(Command::Dial { peer, connected }).await?;
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .min(HELLO_TIMEOUT);
        // A peer that cannot be connected to fails at once, not at the deadline: a dead
        // provider's record would otherwise hold every lookup that finds it.
        let unreachable = async {
            match dialed.await {
                Ok(Err(reason)) => reason,
                _ => std::future::pending().await,
            }
        };
        let verdict = tokio::select! {
            // A verdict already given (a refusal, say) is the answer, dial or not.
            biased;
            verdict = self.inner.members.verdict(&peer, wait) => verdict,
            reason = unreachable => return Err(MeshError::Unreachable { peer, reason }),
        };
        match verdict {
            Ok(admitted) => Ok(admitted),
            Err(Some(why)) => Err(MeshError::NotAdmitted { peer, why }),
            // No verdict: most often no connection at all.
            Err(None) if Instant::now() >= deadline => Err(MeshError::Deadline {
                during: format!("connecting to peer {peer} and hearing its hello"),
            }),
            Err(None) => Err(MeshError::Unreachable {
                peer,
                reason: format!("no connection with its hello within {wait:?}"),
            }),
        }
    }

    /// The peers this node keeps (every peer it has been connected to, up to a bound)
    /// at the addresses it can dial them at, each with `/p2p/`, the most recently seen
    /// peer first. Given back as bootstrap peers on the next start, they let a restarted
    /// node rejoin the mesh on its own.
    pub async fn known_peers(&self) -> Vec<Multiaddr> {
        self.ask(Command::KnownPeers).await.unwrap_or_default()
    }

    /// Makes this node a DHT provider of module `hash` and announces it on gossip.
    /// Call it after storing a module that was published or fetched. Returns once the
    /// provider record has been offered to the peers closest to it (at most Kademlia's
    /// query timeout); spawn it to not wait.
    pub async fn announce(&self, hash: spore_core::Hash) {
        let _ = self.send(Command::Gossip(hash)).await;
        let key = module_key(&hash);
        let _ = self.ask(|stored| Command::Provide { key, stored }).await;
    }

    /// Spreads `chain`, a publisher's whole chain of a name: its latest records on
    /// gossip, all of it in the DHT (kept by the peers closest to its key, and here).
    pub async fn publish_chain(&self, chain: spore_core::trust::ChainRun) {
        let _ = self.send(Command::PublishChain(chain)).await;
    }

    /// `publisher`'s chain of `name` as the DHT holds it: the longest valid chain any
    /// peer gives by `deadline`, or `None`.
    #[tracing::instrument(skip(self, deadline), fields(%publisher))]
    pub async fn find_chain(
        &self,
        publisher: spore_core::trust::PublicKey,
        name: &str,
        deadline: Instant,
    ) -> Option<spore_core::trust::ChainRun> {
        let key = crate::names::record_key(&publisher, name);
        let found = self
            .ask(|reply| Command::FindChain {
                key,
                deadline,
                reply,
            })
            .await;
        found.ok().flatten()
    }

    /// Fetches module `hash` from whichever peers hold it, verifying every byte. It is
    /// listed by [`Mesh::fetches`] from now until it returns or is dropped.
    pub async fn fetch(
        &self,
        hash: spore_core::Hash,
        deadline: Instant,
    ) -> Result<Fetched, FetchError> {
        // Before the search for providers, which can take most of a fetch's time.
        let progress = self.inner.fetches.begin(hash);
        let (found, dht) = mpsc::unbounded_channel();
        self.send(Command::FindProviders {
            key: module_key(&hash),
            deadline,
            found,
        })
        .await
        .map_err(|_| FetchError::ShutDown)?;
        let hinted = self
            .ask(|reply| Command::Hints { hash, reply })
            .await
            .map_err(|_| FetchError::ShutDown)?;
        let connected = self.member_peers().await;
        let known = hinted
            .into_iter()
            .filter(|p| self.inner.members.admitted(p).is_some())
            .map(|p| (p, true))
            .chain(
                connected
                    .into_iter()
                    .take(CONNECTED_CANDIDATES)
                    .map(|p| (p, false)),
            )
            .collect();
        let dht = self.admitted_only(dht, deadline);
        crate::fetch::fetch(
            self.inner.control.clone(),
            hash,
            Candidates { known, dht },
            deadline,
            &self.inner.tuning,
            progress,
        )
        .await
    }

    /// The fetches in flight now, the oldest first: each module's hash, the providers
    /// that delivered to it so far, its verified bytes and its size once proven.
    pub fn fetches(&self) -> Vec<FetchProgress> {
        self.inner.fetches.list()
    }

    /// Passes on the peers `found` gives that this node's mesh admits (connecting to each
    /// to have it judged), as they are.
    fn admitted_only(
        &self,
        mut found: mpsc::UnboundedReceiver<PeerId>,
        deadline: Instant,
    ) -> mpsc::UnboundedReceiver<PeerId> {
        let (admitted, out) = mpsc::unbounded_channel();
        let mesh = self.clone();
        tokio::spawn(async move {
            let mut judging = JoinSet::new();
            loop {
                tokio::select! {
                    next = found.recv() => match next {
                        Some(peer) => {
                            let (mesh, admitted) = (mesh.clone(), admitted.clone());
                            judging.spawn(async move {
                                match mesh.admit(peer, deadline).await {
                                    Ok(_) => { let _ = admitted.send(peer); }
                                    Err(e) => debug!(%peer, "not asking a provider: {e}"),
                                }
                            });
                        }
                        None => break,
                    },
                    Some(_) = judging.join_next(), if !judging.is_empty() => {}
                }
            }
            while judging.join_next().await.is_some() {}
        });
        out
    }

    /// Admitted peers whose certificate grants every one of `abilities` and that
    /// advertise them in the DHT, connected peers first. With no abilities asked, every
    /// admitted connected peer qualifies. An advert by a peer whose certificate does not
    /// grant the ability is ignored, and logged.
    pub async fn find_ability_peers(
        &self,
        abilities: &[String],
        deadline: Instant,
    ) -> Result<Vec<PeerId>, MeshError> {
        let mut lookups = Vec::new();
        for ability in abilities {
            let (found, rx) = mpsc::unbounded_channel();
            self.send(Command::FindProviders {
                key: ability_key(ability),
                deadline,
                found,
            })
            .await?;
            lookups.push(collect(rx));
        }
        let mut sets = futures::future::join_all(lookups).await.into_iter();
        let connected = self.member_peers().await;
        let Some(first) = sets.next() else {
            return Ok(connected);
        };
        let mut peers: Vec<PeerId> = first
            .into_iter()
            .filter(|p| *p != self.inner.peer_id)
            .collect();
        for set in sets {
            peers.retain(|p| set.contains(p));
        }
        let mut granted = Vec::new();
        for peer in peers {
            match self.admit(peer, deadline).await {
                Ok(admitted) => match abilities.iter().find(|a| !admitted.serves(a)) {
                    None => granted.push(peer),
                    Some(ability) => tracing::warn!(
                        %peer, %ability,
                        "ignoring an ability advert: the peer's certificate does not grant it that ability"
                    ),
                },
                Err(e) => debug!(%peer, "ignoring an ability advert: {e}"),
            }
        }
        let mut peers = granted;
        // Stable: connected peers first, each group in discovery order.
        peers.sort_by_key(|p| !connected.contains(p));
        debug!(?abilities, ?peers, "ability peers");
        Ok(peers)
    }

    /// Sends `request` to `peer` (dialing it if needed) and waits for its answer until the
    /// request's deadline. Calls to one peer share one stream, opened by the first.
    pub async fn invoke(
        &self,
        peer: PeerId,
        request: &CallRequest,
    ) -> Result<InvokeResponse, MeshError> {
        if *self.inner.shutdown.borrow() {
            return Err(MeshError::ShutDown);
        }
        self.admit(peer, request.deadline.into()).await?;
        self.inner.channels.invoke(peer, request).await
    }

    /// Stops the swarm and both servers, closing every connection. Calls and fetches
    /// in progress fail; later calls fail with [`MeshError::ShutDown`].
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let tasks = std::mem::take(&mut *self.inner.tasks.lock().expect("tasks lock"));
        for mut task in tasks {
            if tokio::time::timeout(SHUTDOWN_TIMEOUT, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        debug!(peer = %self.inner.peer_id, "mesh shut down");
    }

    #[cfg(test)]
    pub(crate) fn channels(&self) -> &Channels {
        &self.inner.channels
    }

    #[cfg(test)]
    pub(crate) fn control(&self) -> &Control {
        &self.inner.control
    }

    async fn send(&self, command: Command) -> Result<(), MeshError> {
        self.inner
            .commands
            .send(command)
            .await
            .map_err(|_| MeshError::ShutDown)
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, MeshError> {
        let (reply, answer) = oneshot::channel();
        self.send(command(reply)).await?;
        answer.await.map_err(|_| MeshError::ShutDown)
    }
}

async fn collect(mut found: mpsc::UnboundedReceiver<PeerId>) -> Vec<PeerId> {
    let mut peers = Vec::new();
    while let Some(peer) = found.recv().await {
        peers.push(peer);
    }
    peers
}

#[cfg(test)]
mod tests;
