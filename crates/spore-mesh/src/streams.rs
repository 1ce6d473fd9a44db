//! Raw libp2p streams for spore's own protocols: open one to a peer (dialing it if
//! needed), or receive the ones peers open.
//!
//! `libp2p-stream` does the same, but it hands inbound streams over through a
//! one-slot channel and resets every stream that arrives while the previous one has
//! not been taken yet (rust-libp2p issue #5651). A fetch opens several streams to a
//! provider at once, so under load that dropped healthy ranges and calls. Here the
//! inbound queue holds [`INBOUND_QUEUE`] streams.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, InboundUpgrade, Multiaddr, OutboundUpgrade, UpgradeInfo};
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId,
    DialError, DialFailure, FromSwarm, NetworkBehaviour, NotifyHandler, StreamUpgradeError,
    SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{PeerId, Stream, StreamProtocol};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

/// Inbound streams waiting for the server loop; beyond this, new ones are reset.
const INBOUND_QUEUE: usize = 1024;

/// A stream a peer opened, with the protocol it negotiated.
pub(crate) struct Inbound {
    pub peer: PeerId,
    pub protocol: StreamProtocol,
    pub stream: Stream,
}

/// Why a stream could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("it does not speak {0}")]
    Unsupported(StreamProtocol),
    #[error("cannot dial it: {0}")]
    Dial(String),
    #[error("stream negotiation failed: {0}")]
    Negotiation(String),
    #[error("the connection closed")]
    ConnectionClosed,
}

type Reply = oneshot::Sender<Result<Stream, OpenError>>;
/// What an outbound substream request carries until it resolves.
type Pending = (StreamProtocol, Reply);

pub(crate) struct OpenRequest {
    peer: PeerId,
    protocol: StreamProtocol,
    reply: Reply,
}

impl fmt::Debug for OpenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpenRequest({} to {})", self.protocol, self.peer)
    }
}

/// Opens streams; cheap to clone, usable from any task.
#[derive(Clone)]
pub(crate) struct Control {
    requests: mpsc::UnboundedSender<OpenRequest>,
}

impl Control {
    /// Opens a stream to `peer` speaking `protocol`, on an existing connection or a new
    /// one. Callers bound the wait with their own deadline.
    pub async fn open_stream(
        &self,
        peer: PeerId,
        protocol: StreamProtocol,
    ) -> Result<Stream, OpenError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(OpenRequest {
                peer,
                protocol,
                reply,
            })
            .map_err(|_| OpenError::ConnectionClosed)?;
        answer.await.map_err(|_| OpenError::ConnectionClosed)?
    }
}

pub(crate) struct Behaviour {
    protocols: Vec<StreamProtocol>,
    inbound: mpsc::Sender<Inbound>,
    requests: mpsc::UnboundedReceiver<OpenRequest>,
    connections: HashMap<PeerId, Vec<ConnectionId>>,
    /// Requests for peers being dialed.
    waiting: HashMap<PeerId, Vec<OpenRequest>>,
    events: VecDeque<ToSwarm<Infallible, OpenRequest>>,
}

impl Behaviour {
    /// Accepts `protocols` from peers, handing the streams to the returned receiver.
    pub fn new(protocols: Vec<StreamProtocol>) -> (Self, Control, mpsc::Receiver<Inbound>) {
        let (inbound, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let (requests_tx, requests) = mpsc::unbounded_channel();
        let behaviour = Behaviour {
            protocols,
            inbound,
            requests,
            connections: HashMap::new(),
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

    fn handler(&self, peer: PeerId) -> Handler {
        Handler {
            peer,
            protocols: self.protocols.clone(),
            inbound: self.inbound.clone(),
            outbound: VecDeque::new(),
        }
    }

    fn route(&mut self, request: OpenRequest) {
        if request.reply.is_closed() {
            return;
        }
        // The newest connection is the least likely to be on its way out.
        if let Some(&connection) = self.connections.get(&request.peer).and_then(|c| c.last()) {
            self.events.push_back(ToSwarm::NotifyHandler {
                peer_id: request.peer,
                handler: NotifyHandler::One(connection),
                event: request,
            });
            return;
        }
        let peer = request.peer;
        let waiting = self.waiting.entry(peer).or_default();
        waiting.push(request);
        if waiting.len() == 1 {
            debug!(%peer, "dialing to open a stream");
            self.events.push_back(ToSwarm::Dial {
                opts: DialOpts::peer_id(peer)
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build(),
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
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            }) => {
                self.connections
                    .entry(peer_id)
                    .or_default()
                    .push(connection_id);
                for request in self.waiting.remove(&peer_id).unwrap_or_default() {
                    self.route(request);
                }
            }
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                connection_id,
                ..
            }) => {
                if let Some(connections) = self.connections.get_mut(&peer_id) {
                    connections.retain(|c| *c != connection_id);
                    if connections.is_empty() {
                        self.connections.remove(&peer_id);
                    }
                }
            }
            FromSwarm::DialFailure(DialFailure {
                peer_id: Some(peer),
                error,
                ..
            }) => {
                // Another dial to the peer is under way; its outcome decides.
                if matches!(error, DialError::DialPeerConditionFalse(_)) {
                    return;
                }
                let reason = error.to_string();
                for request in self.waiting.remove(&peer).unwrap_or_default() {
                    let _ = request.reply.send(Err(OpenError::Dial(reason.clone())));
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

pub(crate) struct Handler {
    peer: PeerId,
    protocols: Vec<StreamProtocol>,
    inbound: mpsc::Sender<Inbound>,
    /// Requests not yet turned into substream requests.
    outbound: VecDeque<OpenRequest>,
}

impl ConnectionHandler for Handler {
    type FromBehaviour = OpenRequest;
    type ToBehaviour = Infallible;
    type InboundProtocol = Protocols;
    type OutboundProtocol = Protocols;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = Pending;

    fn listen_protocol(&self) -> SubstreamProtocol<Protocols> {
        SubstreamProtocol::new(Protocols(self.protocols.clone()), ())
    }

    fn connection_keep_alive(&self) -> bool {
        !self.outbound.is_empty()
    }

    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Protocols, Pending, Infallible>> {
        match self.outbound.pop_front() {
            Some(request) => Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                protocol: SubstreamProtocol::new(
                    Protocols(vec![request.protocol.clone()]),
                    (request.protocol, request.reply),
                ),
            }),
            None => Poll::Pending,
        }
    }

    fn on_behaviour_event(&mut self, request: OpenRequest) {
        self.outbound.push_back(request);
    }

    fn on_connection_event(&mut self, event: ConnectionEvent<Protocols, Protocols, (), Pending>) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: (stream, protocol),
                ..
            }) => {
                let inbound = Inbound {
                    peer: self.peer,
                    protocol,
                    stream,
                };
                // Dropping the stream resets it: the peer sees a refusal at once.
                if self.inbound.try_send(inbound).is_err() {
                    warn!(peer = %self.peer, "too many inbound streams waiting; refusing one");
                }
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: (stream, _),
                info: (_, reply),
            }) => {
                let _ = reply.send(Ok(stream));
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError {
                info: (protocol, reply),
                error,
            }) => {
                let error = match error {
                    StreamUpgradeError::NegotiationFailed => OpenError::Unsupported(protocol),
                    StreamUpgradeError::Timeout => OpenError::Negotiation("timed out".to_owned()),
                    StreamUpgradeError::Io(e) => OpenError::Negotiation(e.to_string()),
                    StreamUpgradeError::Apply(never) => match never {},
                };
                let _ = reply.send(Err(error));
            }
            _ => {}
        }
    }
}

/// The protocols a stream may negotiate: all of ours inbound, the one asked outbound.
#[derive(Clone)]
pub(crate) struct Protocols(Vec<StreamProtocol>);

impl UpgradeInfo for Protocols {
    type Info = StreamProtocol;
    type InfoIter = std::vec::IntoIter<StreamProtocol>;

    fn protocol_info(&self) -> Self::InfoIter {
        self.0.clone().into_iter()
    }
}

impl InboundUpgrade<Stream> for Protocols {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Infallible>>;

    fn upgrade_inbound(self, stream: Stream, protocol: StreamProtocol) -> Self::Future {
        ready(Ok((stream, protocol)))
    }
}

impl OutboundUpgrade<Stream> for Protocols {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Infallible>>;

    fn upgrade_outbound(self, stream: Stream, protocol: StreamProtocol) -> Self::Future {
        ready(Ok((stream, protocol)))
    }
}
