//! [`Mesh`]: the handle the node holds. It starts the swarm task and the two protocol
//! servers, and turns its methods into commands, streams and lookups.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use libp2p_stream::Control;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::behaviour::{GOSSIP_TOPIC, build_swarm};
use crate::discovery::{ability_key, module_key};
use crate::error::{FetchError, MeshError};
use crate::fetch::{Candidates, Fetched};
use crate::swarm::{Command, SwarmTask};
use crate::wire::{FETCH_PROTOCOL, INVOKE_PROTOCOL, InvokeRequest, InvokeResponse};
use crate::{MeshConfig, MeshHost, MeshTuning};

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
    tuning: MeshTuning,
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
        let mut swarm = build_swarm(&config, &tuning)?;
        let peer_id = *swarm.local_peer_id();

        let mut listeners = HashMap::new();
        for addr in &config.listen {
            let id = swarm.listen_on(addr.clone()).map_err(|e| MeshError::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
            listeners.insert(id, addr.clone());
        }
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&libp2p::gossipsub::IdentTopic::new(GOSSIP_TOPIC))
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

        let mut control = swarm.behaviour().stream.new_control();
        let fetch_streams = control
            .accept(FETCH_PROTOCOL)
            .expect("a new swarm has no fetch handler yet");
        let invoke_streams = control
            .accept(INVOKE_PROTOCOL)
            .expect("a new swarm has no invoke handler yet");

        let (commands, command_rx) = mpsc::channel(256);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut task = SwarmTask::new(swarm, command_rx, shutdown_rx.clone());
        task.wait_for_listeners(listeners, LISTEN_TIMEOUT).await?;
        task.bootstrap(&config.bootstrap);
        info!(
            peer = %peer_id,
            modules = held.len(),
            abilities = ?config.abilities,
            listen = ?task.swarm_mut().listeners().collect::<Vec<_>>(),
            "mesh started"
        );

        let tasks = vec![
            tokio::spawn(task.run()),
            tokio::spawn(crate::fetch::serve(
                fetch_streams,
                host.clone(),
                shutdown_rx.clone(),
            )),
            tokio::spawn(crate::invoke::serve(invoke_streams, host, shutdown_rx)),
        ];
        Ok(Mesh {
            inner: Arc::new(Inner {
                peer_id,
                commands,
                control,
                tuning,
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

    /// Makes this node a DHT provider of module `hash` and announces it on gossip.
    /// Call it after storing a module that was published or fetched. Returns once the
    /// provider record has been offered to the peers closest to it (at most Kademlia's
    /// query timeout); spawn it to not wait.
    pub async fn announce(&self, hash: spore_core::Hash) {
        let _ = self.send(Command::Gossip(hash)).await;
        let key = module_key(&hash);
        let _ = self.ask(|stored| Command::Provide { key, stored }).await;
    }

    /// Fetches module `hash` from whichever peers hold it, verifying every byte.
    pub async fn fetch(
        &self,
        hash: spore_core::Hash,
        deadline: Instant,
    ) -> Result<Fetched, FetchError> {
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
        let connected = self.connected_peers().await;
        let known = hinted
            .into_iter()
            .map(|p| (p, true))
            .chain(
                connected
                    .into_iter()
                    .take(CONNECTED_CANDIDATES)
                    .map(|p| (p, false)),
            )
            .collect();
        crate::fetch::fetch(
            self.inner.control.clone(),
            hash,
            Candidates { known, dht },
            deadline,
            &self.inner.tuning,
        )
        .await
    }

    /// Peers that advertise every one of `abilities` in the DHT, connected peers first.
    /// With no abilities asked, every connected peer qualifies.
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
        let connected = self.connected_peers().await;
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
        // Stable: connected peers first, each group in discovery order.
        peers.sort_by_key(|p| !connected.contains(p));
        debug!(?abilities, ?peers, "ability peers");
        Ok(peers)
    }

    /// Sends `request` to `peer` (dialing it if needed) and waits for its response.
    pub async fn invoke(
        &self,
        peer: PeerId,
        request: InvokeRequest,
        deadline: Instant,
    ) -> Result<InvokeResponse, MeshError> {
        if *self.inner.shutdown.borrow() {
            return Err(MeshError::ShutDown);
        }
        crate::invoke::invoke(self.inner.control.clone(), peer, request, deadline).await
    }

    /// Stops the swarm and both servers, closing every connection. Calls and fetches
    /// in progress fail; later calls fail with [`MeshError::ShutDown`].
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let tasks = std::mem::take(&mut *self.inner.tasks.lock().expect("tasks lock"));
        for mut task in tasks {
            if tokio::time::timeout(SHUTDOWN_TIMEOUT, &mut task).await.is_err() {
                task.abort();
            }
        }
        debug!(peer = %self.inner.peer_id, "mesh shut down");
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
