//! Reachability for nodes that cannot be dialled: listening through the relays the
//! mesh's certificates allow (circuit relay v2), turning a relayed connection into a
//! direct one (dialling a peer that can be dialled; DCUtR's hole punch between two that
//! cannot), and AutoNAT's verdict on whether this node can be dialled at all.

use std::collections::HashMap;
use std::sync::Arc;

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, autonat, dcutr, relay};
use tracing::{debug, info, warn};

use super::SwarmTask;
use crate::reachability::Dialable;
use crate::{MeshError, RELAY_ROLE};

/// The relays this node means to be reachable through, and the circuits it listens on.
#[derive(Default)]
pub(crate) struct Relays {
    /// Each configured relay, with its address without `/p2p/`.
    wanted: HashMap<PeerId, Multiaddr>,
    /// The relay behind each circuit listener.
    listening: HashMap<ListenerId, PeerId>,
    /// Relays already reported as lacking the role, so that the warning is given once.
    refused: Vec<PeerId>,
}

impl Relays {
    /// The configured relays; each address must end with the relay's `/p2p/<peer id>`.
    pub fn new(addrs: &[Multiaddr]) -> Result<Self, MeshError> {
        let mut wanted = HashMap::new();
        for addr in addrs {
            let mut transport = addr.clone();
            match transport.pop() {
                Some(Protocol::P2p(peer)) => {
                    wanted.insert(peer, transport);
                }
                _ => {
                    return Err(MeshError::Transport(format!(
                        "relay address {addr} has no /p2p/<peer id> suffix"
                    )));
                }
            }
        }
        Ok(Relays {
            wanted,
            ..Relays::default()
        })
    }

    /// The configured relays' addresses, with `/p2p/`, to dial at start.
    pub fn dial_addrs(&self) -> Vec<Multiaddr> {
        self.wanted
            .iter()
            .map(|(peer, addr)| addr.clone().with(Protocol::P2p(*peer)))
            .collect()
    }
}

impl SwarmTask {
    /// What this task records of how peers reach the node, for the mesh's handles.
    pub(crate) fn reachability(&self) -> Arc<crate::reachability::Shared> {
        self.reachability.clone()
    }

    /// `peer` was admitted: when it is one of this node's relays and its certificate
    /// gives it the relay role, listens through it (once).
    pub(super) fn listen_through_relay(&mut self, peer: PeerId, roles: &[String]) {
        let Some(addr) = self.relays.wanted.get(&peer) else {
            return;
        };
        if self.relays.listening.values().any(|relay| *relay == peer) {
            return;
        }
        if !roles.iter().any(|role| role == RELAY_ROLE) {
            if !self.relays.refused.contains(&peer) {
                self.relays.refused.push(peer);
                warn!(
                    relay = %peer,
                    "not listening through this relay: its certificate does not give it the role `{RELAY_ROLE}`"
                );
            }
            return;
        }
        let circuit = addr
            .clone()
            .with(Protocol::P2p(peer))
            .with(Protocol::P2pCircuit);
        match self.swarm.listen_on(circuit.clone()) {
            Ok(listener) => {
                debug!(%circuit, "asking the relay for a reservation");
                self.relays.listening.insert(listener, peer);
            }
            Err(e) => warn!(%circuit, "cannot listen through the relay: {e}"),
        }
    }

    /// A listener closed: if it was a relay's circuit, the relay is asked again when it
    /// is next admitted (the peer book redials it).
    pub(super) fn on_listener_closed(&mut self, listener: ListenerId) {
        if let Some(relay) = self.relays.listening.remove(&listener) {
            info!(%relay, "no longer reachable through this relay");
            self.reachability.unreserved(&relay);
            if let Some(admitted) = self.members.admitted(&relay)
                && self.swarm.is_connected(&relay)
            {
                self.listen_through_relay(relay, &admitted.roles);
            }
        }
    }

    /// `peer` told its listen addresses (`direct`: those this node could dial, relayed
    /// ones left out). When this node reaches it only through a relay, it dials them:
    /// a node behind a NAT can dial out to a peer that can be dialled, and DCUtR's hole
    /// punch, made for two nodes behind NATs, would make both ends of such a connection
    /// wait for the other's handshake.
    pub(super) fn dial_direct_if_relayed(&mut self, peer: PeerId, direct: &[Multiaddr]) {
        if direct.is_empty() || !self.connections.only_relayed(&peer) {
            return;
        }
        debug!(%peer, ?direct, "reached only through a relay; dialling it directly");
        let dial = DialOpts::peer_id(peer)
            .addresses(direct.to_vec())
            .condition(PeerCondition::Always)
            .build();
        if let Err(e) = self.swarm.dial(dial) {
            debug!(%peer, "cannot dial it directly: {e}");
        }
    }

    pub(super) fn on_relay_client(&mut self, event: relay::client::Event) {
        match event {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            } => {
                self.reachability.reserved(relay_peer_id);
                if !renewal {
                    info!(relay = %relay_peer_id, "reachable through the relay");
                }
            }
            other => debug!(?other, "relay client"),
        }
    }

    pub(super) fn on_dcutr(&mut self, event: dcutr::Event) {
        self.reachability.hole_punch(event.result.is_ok());
        match event.result {
            Ok(_) => {
                info!(peer = %event.remote_peer_id, "hole punched: a direct connection replaces the relayed one")
            }
            // Said at info as the success is: how often holes can be punched is what
            // tells an operator whether the relay carries the edges' traffic.
            Err(e) => {
                info!(peer = %event.remote_peer_id, "hole punching failed; staying relayed: {e}")
            }
        }
    }

    pub(super) fn on_autonat(&mut self, event: autonat::Event) {
        if let autonat::Event::StatusChanged { new, .. } = event {
            self.reachability.set_dialable(match &new {
                autonat::NatStatus::Public(addr) => Dialable::Yes(addr.clone()),
                autonat::NatStatus::Private => Dialable::No,
                autonat::NatStatus::Unknown => Dialable::Unknown,
            });
            match new {
                autonat::NatStatus::Public(addr) => {
                    info!(%addr, "AutoNAT: this node can be dialled")
                }
                autonat::NatStatus::Private => info!(
                    "AutoNAT: this node cannot be dialled; peers reach it only through a relay (`[mesh] relays`)"
                ),
                autonat::NatStatus::Unknown => debug!("AutoNAT: reachability unknown"),
            }
        }
    }
}
