//! The network behaviour half of `crate::streams`: which connection each new stream
//! goes on (the best ranked of the peer's), dialing the peer when none is open, and
//! each connection's usage from its handler's making to its closing.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::{ConnectedPoint, Endpoint, Multiaddr};
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, DialError, DialFailure, FromSwarm,
    ListenFailure, NetworkBehaviour, NotifyHandler, THandler, THandlerInEvent, THandlerOutEvent,
    ToSwarm,
};
use libp2p::{PeerId, StreamProtocol};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::debug;

use super::{Control, Handler, INBOUND_QUEUE, InUse, Inbound, OpenError, OpenRequest, Usage};

pub(crate) struct Behaviour {
    local: PeerId,
    protocols: Vec<StreamProtocol>,
    inbound: mpsc::Sender<Inbound>,
    requests: mpsc::UnboundedReceiver<OpenRequest>,
    /// Each peer's connections, oldest first.
    connections: HashMap<PeerId, Vec<Open>>,
    /// Every connection's usage, from its handler's making to its closing.
    usage: HashMap<ConnectionId, Arc<Usage>>,
    /// Requests for peers being dialed.
    waiting: HashMap<PeerId, Waiting>,
    events: VecDeque<ToSwarm<Infallible, OpenRequest>>,
}

/// A connection streams may be opened on.
struct Open {
    id: ConnectionId,
    /// How well it suits new streams: a direct connection before a relayed one, and the
    /// one that closing duplicates keeps (`crate::connections::survives`) before others.
    rank: (bool, bool),
    usage: Arc<Usage>,
}

/// Requests waiting for a connection to their peer.
#[derive(Default)]
struct Waiting {
    requests: Vec<OpenRequest>,
    /// The dial made for them, while it is under way. `None` while another dial to the
    /// peer (the peer book's, Kademlia's) is: if that one fails, they get their own,
    /// since it may have started long before them, into a network that has healed since.
    dial: Option<ConnectionId>,
}

impl Behaviour {
    /// Accepts `protocols` from peers, handing the streams to the returned receiver;
    /// `local` is this node's peer id.
    pub fn new(
        local: PeerId,
        protocols: Vec<StreamProtocol>,
    ) -> (Self, Control, mpsc::Receiver<Inbound>) {
        let (inbound, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let (requests_tx, requests) = mpsc::unbounded_channel();
        let behaviour = Behaviour {
            local,
            protocols,
            inbound,
            requests,
            connections: HashMap::new(),
            usage: HashMap::new(),
            waiting: HashMap::new(),
            events: VecDeque::new(),
        };
        (
            behaviour,
            Control {
                requests: requests_tx,
            },
            inbound_rx,
        )
    }

    fn handler(&mut self, connection: ConnectionId, peer: PeerId) -> Handler {
        let usage = Usage::new();
        self.usage.insert(connection, usage.clone());
        Handler {
            peer,
            protocols: self.protocols.clone(),
            inbound: self.inbound.clone(),
            outbound: VecDeque::new(),
            lifelines: Vec::new(),
            usage,
        }
    }

    /// Since when no spore stream has been open on `connection` (either way, or being
    /// opened), or `None` while one is, or when the connection is not known.
    pub fn unused_since(&self, connection: ConnectionId) -> Option<Instant> {
        self.usage.get(&connection)?.unused_since()
    }

    /// The connection new streams to `peer` go on: the best ranked, and of those the
    /// newest (`max_by_key` takes the last), the least likely to be on its way out (a
    /// dead link not yet closed is older than its replacement).
    fn best(&self, peer: &PeerId) -> Option<&Open> {
        (self.connections.get(peer)).and_then(|open| open.iter().max_by_key(|open| open.rank))
    }

    /// Tells each of `peer`'s connections whether it is still the one new streams go on.
    fn mark_superseded(&self, peer: &PeerId) {
        let best = self.best(peer).map(|open| open.id);
        for open in self.connections.get(peer).into_iter().flatten() {
            let superseded = Some(open.id) != best;
            open.usage.superseded.store(superseded, Ordering::Relaxed);
        }
    }

    fn route(&mut self, mut request: OpenRequest) {
        if request.reply.is_closed() {
            return;
        }
        if let Some(open) = self.best(&request.peer) {
            request.in_use = Some(InUse::new(&open.usage));
            self.events.push_back(ToSwarm::NotifyHandler {
                peer_id: request.peer,
                handler: NotifyHandler::One(open.id),
                event: request,
            });
            return;
        }
        let peer = request.peer;
        let waiting = self.waiting.entry(peer).or_default();
        let first = waiting.requests.is_empty();
        waiting.requests.push(request);
        if first {
            self.dial(peer);
        }
    }

    /// Dials `peer` for the requests waiting for it, unless they have all given up.
    fn dial(&mut self, peer: PeerId) {
        let Some(waiting) = self.waiting.get_mut(&peer) else {
            return;
        };
        waiting.requests.retain(|r| !r.reply.is_closed());
        if waiting.requests.is_empty() {
            self.waiting.remove(&peer);
            return;
        }
        debug!(%peer, "dialing to open a stream");
        let opts = DialOpts::peer_id(peer)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        waiting.dial = Some(opts.connection_id());
        self.events.push_back(ToSwarm::Dial { opts });
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(connection, peer))
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(connection, peer))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            }) => {
                let Some(usage) = self.usage.get(&connection_id).cloned() else {
                    return;
                };
                let rank = rank(&self.local, &peer_id, endpoint);
                self.connections.entry(peer_id).or_default().push(Open {
                    id: connection_id,
                    rank,
                    usage,
                });
                self.mark_superseded(&peer_id);
                let waiting = self.waiting.remove(&peer_id).unwrap_or_default();
                for request in waiting.requests {
                    self.route(request);
                }
            }
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                connection_id,
                ..
            }) => {
                self.usage.remove(&connection_id);
                if let Some(connections) = self.connections.get_mut(&peer_id) {
                    connections.retain(|c| c.id != connection_id);
                    if connections.is_empty() {
                        self.connections.remove(&peer_id);
                    }
                }
                self.mark_superseded(&peer_id);
            }
            // A connection another behaviour refused after its handler was made.
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.usage.remove(&connection_id);
            }
            FromSwarm::DialFailure(DialFailure {
                peer_id,
                error,
                connection_id,
            }) => {
                self.usage.remove(&connection_id);
                let Some(peer) = peer_id else {
                    return;
                };
                let Some(waiting) = self.waiting.get_mut(&peer) else {
                    return;
                };
                let refused = matches!(error, DialError::DialPeerConditionFalse(_));
                match waiting.dial {
                    // Ours failed: the requests fail with it.
                    Some(ours) if ours == connection_id && !refused => {
                        let reason = error.to_string();
                        for request in self.waiting.remove(&peer).unwrap_or_default().requests {
                            let _ = request.reply.send(Err(OpenError::Dial(reason.clone())));
                        }
                    }
                    // Ours was not made: another dial is under way, and decides.
                    Some(ours) if ours == connection_id => waiting.dial = None,
                    // The other dial failed: now ours.
                    None if !refused => self.dial(peer),
                    _ => {}
                }
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
        while let Poll::Ready(Some(request)) = self.requests.poll_recv(cx) {
            self.route(request);
        }
        match self.events.pop_front() {
            Some(event) => Poll::Ready(event),
            None => Poll::Pending,
        }
    }
}

/// How well a connection suits new streams: see [`Open::rank`].
fn rank(local: &PeerId, peer: &PeerId, endpoint: &ConnectedPoint) -> (bool, bool) {
    let direct = !endpoint.is_relayed();
    let survives = crate::connections::survives(local, peer, endpoint.is_dialer());
    (direct, survives)
}

#[cfg(test)]
mod tests {
    use libp2p::multiaddr::Protocol;

    use super::*;

    /// Opens connection `id` to `peer` at `address`, dialed by this node.
    fn establish(behaviour: &mut Behaviour, id: ConnectionId, peer: PeerId, address: &Multiaddr) {
        let endpoint = ConnectedPoint::Dialer {
            address: address.clone(),
            role_override: Endpoint::Dialer,
            port_use: PortUse::Reuse,
        };
        let handler = behaviour.handle_established_outbound_connection(
            id,
            peer,
            address,
            Endpoint::Dialer,
            PortUse::Reuse,
        );
        assert!(handler.is_ok());
        behaviour.on_swarm_event(FromSwarm::ConnectionEstablished(ConnectionEstablished {
            peer_id: peer,
            connection_id: id,
            endpoint: &endpoint,
            failed_addresses: &[],
            other_established: 0,
        }));
    }

    fn superseded(behaviour: &Behaviour, id: ConnectionId) -> bool {
        behaviour.usage[&id].superseded.load(Ordering::Relaxed)
    }

    #[test]
    fn a_relayed_connection_is_superseded_while_a_direct_one_to_its_peer_is_open() {
        let (local, peer, relay) = (PeerId::random(), PeerId::random(), PeerId::random());
        let (mut behaviour, _control, _inbound) = Behaviour::new(local, Vec::new());
        let circuit: Multiaddr = format!("/ip4/10.0.0.9/tcp/4001/p2p/{relay}/p2p-circuit")
            .parse::<Multiaddr>()
            .unwrap()
            .with(Protocol::P2p(peer));
        let direct: Multiaddr = "/ip4/10.0.0.2/tcp/4001".parse().unwrap();
        let (relayed_id, direct_id) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
        );

        establish(&mut behaviour, relayed_id, peer, &circuit);
        assert!(
            !superseded(&behaviour, relayed_id),
            "the only way to the peer"
        );

        establish(&mut behaviour, direct_id, peer, &direct);
        assert!(superseded(&behaviour, relayed_id));
        assert!(!superseded(&behaviour, direct_id));

        // The direct connection goes: the relayed one is the way again.
        let endpoint = ConnectedPoint::Dialer {
            address: direct,
            role_override: Endpoint::Dialer,
            port_use: PortUse::Reuse,
        };
        behaviour.on_swarm_event(FromSwarm::ConnectionClosed(ConnectionClosed {
            peer_id: peer,
            connection_id: direct_id,
            endpoint: &endpoint,
            cause: None,
            remaining_established: 1,
        }));
        assert!(!superseded(&behaviour, relayed_id));
    }
}
