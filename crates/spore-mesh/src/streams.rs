//! Raw libp2p streams for spore's own protocols: open one to a peer (dialing it if
//! needed), or receive the ones peers open.
//!
//! `libp2p-stream` does the same, but it hands inbound streams over through a
//! one-slot channel and resets every stream that arrives while the previous one has
//! not been taken yet (rust-libp2p issue #5651). A fetch opens several streams to a
//! provider at once, so under load that dropped healthy ranges and calls. Here the
//! inbound queue holds [`INBOUND_QUEUE`] streams.
//!
//! A [`Stream`] fails as soon as its connection is gone. yamux ends the streams of a
//! connection that the peer closed or that broke, but not those of one closed from this
//! side (as a dead link is, see `liveness`): a read on one would wait forever.
//!
//! Each connection counts the spore streams open on it, either way, and the ones being
//! opened ([`Behaviour::unused_since`]): a connection that carries none is one the swarm
//! task may close (`crate::connections`), whatever gossipsub's streams say. A new stream
//! goes on the connection that closing duplicates keeps.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::future::{Ready, ready};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::channel::oneshot as lifeline;
use futures::{AsyncRead, AsyncWrite, FutureExt};

use libp2p::core::transport::PortUse;
use libp2p::core::{
    ConnectedPoint, Endpoint, InboundUpgrade, Multiaddr, OutboundUpgrade, UpgradeInfo,
};
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId,
    DialError, DialFailure, FromSwarm, ListenFailure, NetworkBehaviour, NotifyHandler,
    StreamUpgradeError, SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{PeerId, StreamProtocol};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, warn};

/// Inbound streams waiting for the server loop; beyond this, new ones are reset.
const INBOUND_QUEUE: usize = 1024;

/// A stream of one of spore's protocols, which fails with `ConnectionAborted` once its
/// connection is gone.
pub(crate) struct Stream {
    inner: libp2p::Stream,
    /// Each resolves (as cancelled) when the connection's handler is dropped. Reading
    /// and writing each have their own, since each holds one waker: a reader and a writer
    /// waiting at once in different tasks must both be woken.
    reading: lifeline::Receiver<Infallible>,
    writing: lifeline::Receiver<Infallible>,
    connection_gone: bool,
    _in_use: InUse,
}

/// How a connection's spore streams are used: how many are open or being opened, and
/// when the last one ended (or the connection opened).
#[derive(Debug)]
pub(crate) struct Usage(Mutex<(usize, Instant)>);

impl Usage {
    fn new() -> Arc<Usage> {
        Arc::new(Usage(Mutex::new((0, Instant::now()))))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, (usize, Instant)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Since when no stream has been open, or `None` while one is.
    fn unused_since(&self) -> Option<Instant> {
        let (open, since) = *self.state();
        (open == 0).then_some(since)
    }
}

/// One stream open or being opened on a connection, counted in its [`Usage`] until
/// dropped.
pub(crate) struct InUse(Arc<Usage>);

impl InUse {
    fn new(usage: &Arc<Usage>) -> InUse {
        usage.state().0 += 1;
        InUse(usage.clone())
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.0 -= 1;
        state.1 = Instant::now();
    }
}

enum Side {
    Read,
    Write,
}

impl Stream {
    fn check_connection(&mut self, side: Side, cx: &mut Context<'_>) -> io::Result<()> {
        let lifeline = match side {
            Side::Read => &mut self.reading,
            Side::Write => &mut self.writing,
        };
        if !self.connection_gone && lifeline.poll_unpin(cx).is_ready() {
            self.connection_gone = true;
        }
        if self.connection_gone {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the connection closed",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.check_connection(Side::Read, cx)?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check_connection(Side::Write, cx)?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check_connection(Side::Write, cx)?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nothing is left to close on a connection that is gone.
        if self.check_connection(Side::Write, cx).is_err() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

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
type Pending = (StreamProtocol, Reply, InUse);

pub(crate) struct OpenRequest {
    peer: PeerId,
    protocol: StreamProtocol,
    reply: Reply,
    /// Set once the request is routed to a connection: it counts as a stream there.
    in_use: Option<InUse>,
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
                in_use: None,
            })
            .map_err(|_| OpenError::ConnectionClosed)?;
        answer.await.map_err(|_| OpenError::ConnectionClosed)?
    }
}

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

    fn route(&mut self, mut request: OpenRequest) {
        if request.reply.is_closed() {
            return;
        }
        // The best ranked, and of those the newest (`max_by_key` takes the last): the
        // least likely to be on its way out (a dead link not yet closed is older than
        // its replacement).
        let best = (self.connections.get(&request.peer))
            .and_then(|open| open.iter().max_by_key(|open| open.rank));
        if let Some(open) = best {
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

pub(crate) struct Handler {
    peer: PeerId,
    protocols: Vec<StreamProtocol>,
    inbound: mpsc::Sender<Inbound>,
    /// Requests not yet turned into substream requests.
    outbound: VecDeque<OpenRequest>,
    /// Two per stream handed out; dropped with the handler, when the connection is gone.
    lifelines: Vec<lifeline::Sender<Infallible>>,
    usage: Arc<Usage>,
}

impl Handler {
    fn track(&mut self, stream: libp2p::Stream, in_use: InUse) -> Stream {
        self.lifelines.retain(|l| !l.is_canceled());
        let (reading_lifeline, reading) = lifeline::channel();
        let (writing_lifeline, writing) = lifeline::channel();
        self.lifelines.extend([reading_lifeline, writing_lifeline]);
        Stream {
            inner: stream,
            reading,
            writing,
            connection_gone: false,
            _in_use: in_use,
        }
    }
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
            Some(request) => {
                let in_use = (request.in_use).unwrap_or_else(|| InUse::new(&self.usage));
                Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                    protocol: SubstreamProtocol::new(
                        Protocols(vec![request.protocol.clone()]),
                        (request.protocol, request.reply, in_use),
                    ),
                })
            }
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
                let in_use = InUse::new(&self.usage);
                let inbound = Inbound {
                    peer: self.peer,
                    protocol,
                    stream: self.track(stream, in_use),
                };
                // Dropping the stream resets it: the peer sees a refusal at once.
                if self.inbound.try_send(inbound).is_err() {
                    warn!(peer = %self.peer, "too many inbound streams waiting; refusing one");
                }
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: (stream, _),
                info: (_, reply, in_use),
            }) => {
                let _ = reply.send(Ok(self.track(stream, in_use)));
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError {
                info: (protocol, reply, _),
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

impl InboundUpgrade<libp2p::Stream> for Protocols {
    type Output = (libp2p::Stream, StreamProtocol);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Infallible>>;

    fn upgrade_inbound(self, stream: libp2p::Stream, protocol: StreamProtocol) -> Self::Future {
        ready(Ok((stream, protocol)))
    }
}

impl OutboundUpgrade<libp2p::Stream> for Protocols {
    type Output = (libp2p::Stream, StreamProtocol);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Infallible>>;

    fn upgrade_outbound(self, stream: libp2p::Stream, protocol: StreamProtocol) -> Self::Future {
        ready(Ok((stream, protocol)))
    }
}
