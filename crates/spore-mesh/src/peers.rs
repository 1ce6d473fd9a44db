//! The peers a node keeps: the peers it has been connected to, up to a bound
//! ([`MeshTuning::kept_peers`](crate::MeshTuning::kept_peers)), with the addresses it can
//! dial them at. A kept peer's connections are held open however quiet they are (any
//! other connection this node dialed is closed once unused, `crate::connections`), and
//! a kept peer that is not connected is redialed with capped exponential backoff until
//! it is connected again: from the start for the bootstrap peers (which is how a node
//! rejoins the peers it remembers from its last run), and whenever a connection to a
//! kept peer is lost.
//!
//! [`Mesh::known_peers`](crate::Mesh::known_peers) reads the book so that the node can
//! remember it across restarts; this module knows nothing of files.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::DeniedUpgrade;
use libp2p::core::{ConnectedPoint, Endpoint, Multiaddr};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::handler::ConnectionEvent;
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId,
    DialError, DialFailure, FromSwarm, NetworkBehaviour, NotifyHandler, SubstreamProtocol,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use tokio::time::{Instant, Sleep, sleep_until};
use tracing::debug;

/// How many peers the book keeps by default. Past this, a new peer replaces the one
/// connected longest ago, once it has been away for [`REPLACEABLE_AFTER`]. Each kept
/// peer costs an open connection (or a dial every [`MAX_REDIAL`] while it is away),
/// pinged every second both ways; gossip wants 5 to 12 peers connected.
pub(crate) const KEPT_PEERS: usize = 8;
/// How long a kept peer must have been away before a new peer may take its place. A
/// connection lost for a moment (a dead link closed under load, a duplicate closed)
/// must not hand its place to whichever peer connects next: with 100 nodes in one
/// process, books that did so replaced about 40 peers a second between them, each
/// replacement a redial.
const REPLACEABLE_AFTER: Duration = MAX_REDIAL;
/// Addresses kept per peer: a node listening on all interfaces reports one per
/// interface and transport, and the dial tries them all at once.
const MAX_ADDRS_PER_PEER: usize = 8;
/// The first redial after a connection is lost. A peer that restarts is back within a
/// second or two, and a dead link is not helped by dialing sooner.
const FIRST_REDIAL: Duration = Duration::from_secs(1);
/// The wait between redials doubles up to this: a peer that comes back after a long
/// outage rejoins within 30 s even if nothing calls it (a call dials at once), and 64
/// unreachable peers cost about two dials a second.
const MAX_REDIAL: Duration = Duration::from_secs(30);
/// A connection that lasted this long counts as healthy: when it is lost, redialing
/// starts again from [`FIRST_REDIAL`]. One that dropped sooner keeps doubling the wait,
/// so a peer that accepts and then drops connections is not dialed every second.
const STABLE_CONNECTION: Duration = MAX_REDIAL;

/// One peer the node keeps.
#[derive(Debug)]
struct Kept {
    /// Where to dial it, best first: addresses a dial reached it at, then the ones it
    /// announced.
    addrs: Vec<Multiaddr>,
    connections: Vec<ConnectionId>,
    /// When it was last connected or disconnected, as a tick of [`Book::clock`]; the
    /// peer with the oldest is replaced when the book is full.
    seen: u64,
    connected_since: Option<Instant>,
    /// When its last connection closed, if it has been connected.
    away_since: Option<Instant>,
    /// The wait before the next redial once one is scheduled.
    backoff: Duration,
    /// When the next redial is due, while disconnected.
    next_dial: Option<Instant>,
    /// The redial under way.
    dialing: Option<ConnectionId>,
}

impl Kept {
    fn new(clock: u64) -> Self {
        Kept {
            addrs: Vec::new(),
            connections: Vec::new(),
            seen: clock,
            connected_since: None,
            away_since: None,
            backoff: FIRST_REDIAL,
            next_dial: None,
            dialing: None,
        }
    }

    /// Schedules the next redial `backoff` from `now` and doubles the wait after it.
    fn schedule(&mut self, now: Instant) {
        self.dialing = None;
        if self.addrs.is_empty() {
            // Nothing to dial: the peer reached us and must do so again.
            self.next_dial = None;
            return;
        }
        self.next_dial = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_REDIAL);
    }

    /// Adds `addr` first (a dial reached the peer there) or last (the peer announced it).
    fn add_addr(&mut self, addr: Multiaddr, first: bool) {
        if let Some(i) = self.addrs.iter().position(|a| *a == addr) {
            if !first {
                return;
            }
            self.addrs.remove(i);
        }
        if first {
            self.addrs.insert(0, addr);
        } else {
            self.addrs.push(addr);
        }
        self.addrs.truncate(MAX_ADDRS_PER_PEER);
    }
}

/// The kept peers and their redial schedule, without the libp2p plumbing.
#[derive(Debug)]
struct Book {
    peers: HashMap<PeerId, Kept>,
    clock: u64,
    /// How many peers it keeps.
    bound: usize,
}

impl Default for Book {
    fn default() -> Self {
        Book::new(KEPT_PEERS)
    }
}

impl Book {
    fn new(bound: usize) -> Self {
        Book {
            peers: HashMap::new(),
            clock: 0,
            bound: bound.max(1),
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The entry for `peer`, making room for it if needed. Returns the peer evicted, if
    /// any, or `None` when the book is full of peers connected or away for less than
    /// [`REPLACEABLE_AFTER`], and `peer` is not kept.
    fn entry(&mut self, peer: PeerId, now: Instant) -> (Option<&mut Kept>, Option<Evicted>) {
        let mut evicted = None;
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.bound {
            let replaceable = |kept: &Kept| {
                kept.connections.is_empty()
                    && (kept.away_since).is_none_or(|away| now - away >= REPLACEABLE_AFTER)
            };
            let oldest = self
                .peers
                .iter()
                .filter(|(_, kept)| replaceable(kept))
                .min_by_key(|(_, kept)| kept.seen)
                .map(|(peer, _)| *peer);
            match oldest {
                Some(oldest) => {
                    let kept = self.peers.remove(&oldest).expect("the peer was just found");
                    evicted = Some(Evicted {
                        peer: oldest,
                        connections: kept.connections,
                    });
                }
                None => return (None, None),
            }
        }
        let clock = self.tick();
        let kept = self.peers.entry(peer).or_insert_with(|| Kept::new(clock));
        (Some(kept), evicted)
    }

    /// A peer to join through: dialed at once, and redialed until it is connected.
    fn add_bootstrap(&mut self, peer: PeerId, addr: Multiaddr, now: Instant) -> Option<Evicted> {
        let (kept, evicted) = self.entry(peer, now);
        if let Some(kept) = kept {
            kept.add_addr(addr, true);
            if kept.connections.is_empty() && kept.dialing.is_none() {
                kept.next_dial = Some(now);
            }
        }
        evicted
    }

    /// Addresses `peer` announced; ignored when it is not kept.
    fn add_announced(&mut self, peer: &PeerId, addrs: impl IntoIterator<Item = Multiaddr>) {
        if let Some(kept) = self.peers.get_mut(peer) {
            for addr in addrs {
                kept.add_addr(without_p2p(&addr), false);
            }
        }
    }

    fn connected(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        dialed: Option<Multiaddr>,
        now: Instant,
    ) -> Option<Evicted> {
        let (kept, evicted) = self.entry(peer, now);
        if let Some(kept) = kept {
            kept.away_since = None;
            if let Some(addr) = dialed {
                kept.add_addr(addr, true);
            }
            if kept.connections.is_empty() {
                kept.connected_since = Some(now);
            }
            kept.connections.push(connection);
            kept.next_dial = None;
            kept.dialing = None;
        }
        evicted
    }

    fn disconnected(&mut self, peer: &PeerId, connection: ConnectionId, now: Instant) {
        let clock = self.tick();
        let Some(kept) = self.peers.get_mut(peer) else {
            return;
        };
        kept.connections.retain(|c| *c != connection);
        kept.seen = clock;
        if !kept.connections.is_empty() {
            return;
        }
        kept.away_since = Some(now);
        let lasted = kept
            .connected_since
            .take()
            .map_or(Duration::ZERO, |since| now - since);
        if lasted >= STABLE_CONNECTION {
            kept.backoff = FIRST_REDIAL;
        }
        kept.schedule(now);
    }

    /// A dial to `peer` failed; only the book's own redials move its schedule.
    fn dial_failed(
        &mut self,
        peer: &PeerId,
        connection: ConnectionId,
        refused: bool,
        now: Instant,
    ) {
        let Some(kept) = self.peers.get_mut(peer) else {
            return;
        };
        if kept.dialing != Some(connection) || !kept.connections.is_empty() {
            return;
        }
        if refused {
            // Another dial to the peer was under way; look again after the same wait
            // (its success cancels this).
            kept.dialing = None;
            kept.next_dial = Some(now + kept.backoff);
        } else {
            kept.schedule(now);
        }
    }

    /// The redials due at `now`, with the addresses to dial; each is then no longer due.
    fn take_due(&mut self, now: Instant) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let mut due = Vec::new();
        for (peer, kept) in &mut self.peers {
            if kept.next_dial.is_some_and(|at| at <= now) {
                kept.next_dial = None;
                due.push((*peer, kept.addrs.clone()));
            }
        }
        due
    }

    fn dialing(&mut self, peer: &PeerId, connection: ConnectionId) {
        if let Some(kept) = self.peers.get_mut(peer) {
            kept.dialing = Some(connection);
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.peers.values().filter_map(|kept| kept.next_dial).min()
    }

    /// Every kept peer's addresses with a `/p2p/` suffix, the most recently seen peer
    /// first.
    fn known(&self) -> Vec<Multiaddr> {
        let mut peers: Vec<(&PeerId, &Kept)> = self.peers.iter().collect();
        peers.sort_by_key(|(_, kept)| (kept.connections.is_empty(), std::cmp::Reverse(kept.seen)));
        peers
            .into_iter()
            .flat_map(|(peer, kept)| {
                kept.addrs
                    .iter()
                    .map(move |addr| addr.clone().with(Protocol::P2p(*peer)))
            })
            .collect()
    }
}

/// A peer the book no longer keeps, and the connections that may now go idle.
#[derive(Debug)]
struct Evicted {
    peer: PeerId,
    connections: Vec<ConnectionId>,
}

pub(crate) struct Behaviour {
    book: Book,
    events: VecDeque<ToSwarm<Infallible, bool>>,
    timer: Pin<Box<Sleep>>,
}

impl Behaviour {
    /// A book that keeps up to `bound` peers.
    pub fn new(bound: usize) -> Self {
        Behaviour {
            book: Book::new(bound),
            events: VecDeque::new(),
            timer: Box::pin(sleep_until(Instant::now())),
        }
    }

    /// Keeps `peer`, reachable at `addr`, and dials it now.
    pub fn add_bootstrap(&mut self, peer: PeerId, addr: Multiaddr) {
        let evicted = self.book.add_bootstrap(peer, addr, Instant::now());
        self.release(evicted, "the book is full");
    }

    /// Addresses a kept peer announced (already filtered for reachability).
    pub fn add_announced(&mut self, peer: &PeerId, addrs: impl IntoIterator<Item = Multiaddr>) {
        self.book.add_announced(peer, addrs);
    }

    /// Stops keeping `peer` (a peer its mesh does not admit): it is not redialed, and its
    /// connections are no longer held open.
    pub fn forget(&mut self, peer: &PeerId) {
        if let Some(kept) = self.book.peers.remove(peer) {
            let evicted = Evicted {
                peer: *peer,
                connections: kept.connections,
            };
            self.release(Some(evicted), "its mesh does not admit it");
        }
    }

    /// Whether `peer` is kept: its connections are held open.
    pub fn keeps(&self, peer: &PeerId) -> bool {
        self.book.peers.contains_key(peer)
    }

    /// Every kept peer's addresses, each with `/p2p/`, the most recently seen first.
    pub fn known(&self) -> Vec<Multiaddr> {
        self.book.known()
    }

    fn release(&mut self, evicted: Option<Evicted>, why: &str) {
        let Some(Evicted { peer, connections }) = evicted else {
            return;
        };
        debug!(%peer, "no longer kept: {why}");
        for connection in connections {
            self.events.push_back(ToSwarm::NotifyHandler {
                peer_id: peer,
                handler: NotifyHandler::One(connection),
                event: false,
            });
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler { keep_alive: true })
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler { keep_alive: true })
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        Ok(peer
            .and_then(|peer| self.book.peers.get(&peer))
            .map(|kept| kept.addrs.clone())
            .unwrap_or_default())
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        let now = Instant::now();
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            }) => {
                let dialed = match endpoint {
                    ConnectedPoint::Dialer { address, .. } => Some(without_p2p(address)),
                    ConnectedPoint::Listener { .. } => None,
                };
                let evicted = self.book.connected(peer_id, connection_id, dialed, now);
                if !self.book.peers.contains_key(&peer_id) {
                    // The book is full of connected peers: this one is not kept.
                    self.events.push_back(ToSwarm::NotifyHandler {
                        peer_id,
                        handler: NotifyHandler::One(connection_id),
                        event: false,
                    });
                }
                self.release(evicted, "the book is full");
            }
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                connection_id,
                ..
            }) => self.book.disconnected(&peer_id, connection_id, now),
            FromSwarm::DialFailure(DialFailure {
                peer_id: Some(peer),
                connection_id,
                error,
            }) => {
                let refused = matches!(error, DialError::DialPeerConditionFalse(_));
                self.book.dial_failed(&peer, connection_id, refused, now);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Poll::Ready(event);
            }
            for (peer, addrs) in self.book.take_due(Instant::now()) {
                debug!(%peer, "redialing a kept peer");
                let opts = DialOpts::peer_id(peer)
                    .addresses(addrs)
                    .extend_addresses_through_behaviour()
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build();
                self.book.dialing(&peer, opts.connection_id());
                self.events.push_back(ToSwarm::Dial { opts });
            }
            if !self.events.is_empty() {
                continue;
            }
            let Some(next) = self.book.next_due() else {
                return Poll::Pending;
            };
            self.timer.as_mut().reset(next);
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

fn without_p2p(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect()
}

/// Holds a kept peer's connection open; speaks no protocol.
pub(crate) struct Handler {
    keep_alive: bool,
}

impl ConnectionHandler for Handler {
    /// Whether the peer is (still) kept.
    type FromBehaviour = bool;
    type ToBehaviour = Infallible;
    type InboundProtocol = DeniedUpgrade;
    type OutboundProtocol = DeniedUpgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<DeniedUpgrade> {
        SubstreamProtocol::new(DeniedUpgrade, ())
    }

    fn connection_keep_alive(&self) -> bool {
        self.keep_alive
    }

    fn on_behaviour_event(&mut self, kept: bool) {
        self.keep_alive = kept;
    }

    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<DeniedUpgrade, (), Infallible>> {
        Poll::Pending
    }

    fn on_connection_event(&mut self, _: ConnectionEvent<DeniedUpgrade, DeniedUpgrade>) {}
}

#[cfg(test)]
mod tests;
