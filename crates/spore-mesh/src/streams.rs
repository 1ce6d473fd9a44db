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
//! goes on the connection that closing duplicates keeps, a direct one before a relayed
//! one, and a stream can tell when that is no longer its own ([`Stream::superseded`]).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::future::{Ready, ready};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::channel::oneshot as lifeline;
use futures::{AsyncRead, AsyncWrite, FutureExt};

use libp2p::core::{InboundUpgrade, OutboundUpgrade, UpgradeInfo};
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionHandler, ConnectionHandlerEvent, StreamUpgradeError, SubstreamProtocol,
};
use libp2p::{PeerId, StreamProtocol};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::warn;

mod routing;

pub(crate) use routing::Behaviour;

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
    /// Counts the stream as a use of its connection until it is dropped.
    in_use: InUse,
}

/// How a connection's spore streams are used: how many are open or being opened, and
/// when the last one ended (or the connection opened); and whether new streams to its
/// peer go on another connection now.
#[derive(Debug)]
pub(crate) struct Usage {
    streams: Mutex<(usize, Instant)>,
    superseded: AtomicBool,
}

impl Usage {
    fn new() -> Arc<Usage> {
        Arc::new(Usage {
            streams: Mutex::new((0, Instant::now())),
            superseded: AtomicBool::new(false),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, (usize, Instant)> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Since when no stream has been open, or `None` while one is.
    fn unused_since(&self) -> Option<Instant> {
        let (open, since) = *self.state();
        (open == 0).then_some(since)
    }
}

/// Whether new streams to a stream's peer go on another of its connections now (a
/// direct one beside the stream's relayed one, the duplicate that is kept): a stream
/// that lasts, as an invoke channel does, is best replaced at its next use, or it
/// holds the connection open, and its traffic on the relay, for as long as it is busy.
#[derive(Clone)]
pub(crate) struct Superseded(Arc<Usage>);

impl Superseded {
    pub fn get(&self) -> bool {
        self.0.superseded.load(Ordering::Relaxed)
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
    /// Whether new streams to this stream's peer go on another connection now.
    pub fn superseded(&self) -> Superseded {
        Superseded(self.in_use.0.clone())
    }

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
            in_use,
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
