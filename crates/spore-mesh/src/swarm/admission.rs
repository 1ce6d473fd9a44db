//! How the swarm task acts on membership (`crate::membership`): it greets each new
//! connection with this node's hello and has the peer judged (dialing it first when
//! asked), routes to and keeps the
//! peers admitted, and disconnects and forgets the ones refused or lapsed. What a peer
//! stores in this node's DHT (provider records, names' chains) is kept only once the
//! peer is admitted.

use libp2p::swarm::DialError;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{PeerId, kad};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::{Command, SwarmTask};
use crate::membership::{self, HELLO_TIMEOUT};

/// How long a peer refused on its hello stays connected (served nothing) before this
/// node hangs up, for this node's own hello to reach it.
const REFUSAL_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

impl SwarmTask {
    /// Sends this node's hello on a new connection, and has the peer judged: admitted
    /// when its hello admits it, refused otherwise or when none comes in time.
    pub(super) fn greet(&mut self, peer: PeerId) {
        self.members.reconnected(&peer);
        let (members, control, to_self) = (
            self.members.clone(),
            self.control.clone(),
            self.to_self.clone(),
        );
        let sent = tokio::spawn({
            let members = members.clone();
            async move { membership::send_hello(control, &members, peer).await }
        });
        tokio::spawn(async move {
            let verdict = members.wait(&peer, HELLO_TIMEOUT).await;
            // This node's hello goes out, and has time to be read, before a refusal
            // hangs up: the peer then learns why it is refused in turn, not that the
            // connection closed (both sides of a pair that refuse each other hang up at
            // once otherwise; seen under load). Nothing is served meanwhile.
            let _ = sent.await;
            let command = match verdict {
                Ok(_) => Command::Admitted(peer),
                Err(why) => {
                    if members.refused(&peer) {
                        tokio::time::sleep(REFUSAL_GRACE).await;
                    }
                    Command::Refused { peer, why }
                }
            };
            if let Some(to_self) = to_self.upgrade() {
                let _ = to_self.send(command).await;
            }
        });
    }

    /// Dials `peer` unless it is connected; `connected` is told once a connection is
    /// open, or why this dial failed. It is a dial of its own even when another is in
    /// progress: that one may have been made into a partition since healed.
    pub(super) fn dial(&mut self, peer: PeerId, connected: oneshot::Sender<Result<(), String>>) {
        if self.swarm.is_connected(&peer) {
            let _ = connected.send(Ok(()));
            return;
        }
        let dial = DialOpts::peer_id(peer)
            .condition(PeerCondition::Disconnected)
            .build();
        let id = dial.connection_id();
        match self.swarm.dial(dial) {
            Ok(()) => {
                self.dial_waiters.insert(id, (peer, connected));
            }
            // No address to dial: only a verdict can come now (a peer refused on its
            // hello is forgotten), so `connected` is dropped and the caller waits for it.
            Err(DialError::NoAddresses) => debug!(%peer, "no address to dial the peer at"),
            Err(e) => {
                debug!(%peer, "cannot dial the peer: {e}");
                let _ = connected.send(Err(e.to_string()));
            }
        }
    }

    pub(super) fn on_admitted(&mut self, peer: PeerId) {
        // Only if it still is: a revocation may have come in since.
        let Some(admitted) = self.members.admitted(&peer) else {
            return;
        };
        self.listen_through_relay(peer, &admitted.roles);
        let addrs = self.identified.get(&peer).cloned().unwrap_or_default();
        let behaviour = self.swarm.behaviour_mut();
        for addr in &addrs {
            behaviour.kad.add_address(&peer, addr.clone());
        }
        behaviour.peers.add_announced(&peer, addrs);
    }

    /// Disconnects a peer that is not admitted. One whose hello was refused is also
    /// dropped from the routing table and the peer book; one that was merely not heard
    /// (a slow or broken link) stays known, to be tried again.
    pub(super) fn on_refused(&mut self, peer: PeerId, why: &str) {
        self.members.unheard(peer, why);
        debug!(%peer, "disconnecting a peer that is not admitted: {why}");
        if self.members.refused(&peer) {
            let behaviour = self.swarm.behaviour_mut();
            behaviour.kad.remove_peer(&peer);
            behaviour.peers.forget(&peer);
        }
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    /// A provider record a peer offered: kept if the peer is admitted, or once it is.
    pub(super) fn on_provider_record(&mut self, record: kad::ProviderRecord) {
        if self.members.admitted(&record.provider).is_none() {
            // libp2p-kad takes a record only from its provider.
            return self.once_judged(record.provider, Deferred::Provider(record));
        }
        let store = self.swarm.behaviour_mut().kad.store_mut();
        if let Err(e) = kad::store::RecordStore::add_provider(store, record) {
            debug!("cannot keep a provider record: {e}");
        }
    }

    /// Takes `deferred` again once `peer` is judged, if it is admitted. Kademlia sends
    /// its request as soon as a connection is open, so on a new connection it can come
    /// before the peer's hello has been judged: an announcement goes to the peers
    /// closest to the key, and once the connections no one uses are closed
    /// (`crate::connections`), few of those are connected.
    pub(super) fn once_judged(&mut self, peer: PeerId, deferred: Deferred) {
        if self.members.refused(&peer) || !self.swarm.is_connected(&peer) {
            return info!(%peer, "ignoring a DHT record from a peer that is not admitted");
        }
        let (members, to_self) = (self.members.clone(), self.to_self.clone());
        tokio::spawn(async move {
            if members.verdict(&peer, HELLO_TIMEOUT).await.is_err() {
                return info!(%peer, "ignoring a DHT record from a peer that is not admitted");
            }
            if let Some(to_self) = to_self.upgrade() {
                let _ = to_self.send(Command::Judged(peer, deferred)).await;
            }
        });
    }

    pub(super) fn on_judged(&mut self, peer: PeerId, deferred: Deferred) {
        if self.members.admitted(&peer).is_none() {
            return;
        }
        match deferred {
            Deferred::Provider(record) => self.on_provider_record(record),
            Deferred::Chain(record) => self.on_chain_stored(peer, record),
        }
    }

    /// Disconnects the admitted peers whose certificate expired or was revoked since.
    pub(super) fn refuse_lapsed(&mut self) {
        for (peer, why) in self.members.lapsed(membership::now_ms()) {
            warn!(%peer, "peer no longer admitted: {why}");
            self.on_refused(peer, &why);
        }
    }
}

/// A DHT record a peer stored here before its hello was judged.
pub(crate) enum Deferred {
    Provider(kad::ProviderRecord),
    Chain(kad::Record),
}
