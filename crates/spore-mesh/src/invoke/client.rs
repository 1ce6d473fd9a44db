//! The calling side: one [`Channel`] (an invoke stream) per peer, opened on first use,
//! shared by every call to that peer, and closed once it has been idle for a while, or
//! once the calls on it are answered after a better connection to the peer appeared
//! (a hole punched beside a relayed one): the calls after that go on a new channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::io::{ReadHalf, WriteHalf};
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::PeerId;
use tokio::sync::{Notify, OnceCell, oneshot, watch};
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tracing::{Instrument, debug, info_span};

use crate::error::MeshError;
use crate::streams::{Control, OpenError, Stream, Superseded};
use spore_core::CallRequest;

use crate::wire::{
    FrameError, INVOKE_FRAME_LIMIT, INVOKE_PROTOCOL, InvokeResponse, Numbered, NumberedError,
    read_numbered_owned, write_frame,
};

/// How long closing an idle channel waits for the peer to take the end of the stream.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The invoke streams of one mesh node, by peer.
pub(crate) struct Channels {
    control: Control,
    /// A channel with no call for this long is closed, so that it stops holding its
    /// connection open.
    idle: Duration,
    shutdown: watch::Receiver<bool>,
    by_peer: Mutex<HashMap<PeerId, Arc<OnceCell<Arc<Channel>>>>>,
    /// How many streams were opened so far, for the logs (and the tests).
    opened: AtomicU64,
}

impl Channels {
    pub fn new(control: Control, idle: Duration, shutdown: watch::Receiver<bool>) -> Self {
        Channels {
            control,
            idle,
            shutdown,
            by_peer: Mutex::new(HashMap::new()),
            opened: AtomicU64::new(0),
        }
    }

    /// How many invoke streams this node has opened.
    #[cfg(test)]
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Sends `request` to `peer` and waits for its answer, all before the request's
    /// deadline: the callee reads the same deadline off the request and never runs longer.
    pub async fn invoke(
        &self,
        peer: PeerId,
        request: &CallRequest,
    ) -> Result<InvokeResponse, MeshError> {
        let span =
            info_span!("invoke", function = %request.function, %peer, trace = %request.trace);
        let deadline = Instant::from_std(request.deadline);
        let exchange = async {
            // A channel found closed before the call was written (it went idle, or its
            // peer went away since) is replaced once. A call is never written twice.
            let mut retried = false;
            loop {
                let channel = self.channel(peer).await?;
                match channel.call(request).await {
                    Err(CallError::Closed) if !retried => retried = true,
                    Err(CallError::Closed) => return Err(channel.unreachable()),
                    Err(CallError::Failed(error)) => return Err(error),
                    Ok(response) => {
                        debug!(ok = response.result.is_ok(), "invoke answered");
                        return Ok(response);
                    }
                }
            }
        };
        match timeout_at(deadline, exchange.instrument(span)).await {
            Ok(result) => result,
            Err(_) => Err(MeshError::Deadline {
                during: format!("invoking {} on peer {peer}", request.function),
            }),
        }
    }

    /// The open channel to `peer`, opening one if there is none. Concurrent first calls
    /// wait for the same stream.
    async fn channel(&self, peer: PeerId) -> Result<Arc<Channel>, MeshError> {
        let cell = {
            let mut by_peer = self.by_peer.lock().expect("channels lock");
            if let Some(channel) = by_peer.get(&peer).and_then(|cell| cell.get())
                && channel.superseded.get()
            {
                channel.retire();
            }
            let stale = |cell: &OnceCell<Arc<Channel>>| cell.get().is_some_and(|c| c.is_closed());
            if by_peer.get(&peer).is_none_or(|cell| stale(cell)) {
                // Replacing one is the moment to forget the other peers' closed ones.
                by_peer.retain(|_, cell| !stale(cell));
                by_peer.insert(peer, Arc::default());
            }
            by_peer[&peer].clone()
        };
        cell.get_or_try_init(|| self.open(peer)).await.cloned()
    }

    async fn open(&self, peer: PeerId) -> Result<Arc<Channel>, MeshError> {
        let stream = self
            .control
            .open_stream(peer, INVOKE_PROTOCOL)
            .await
            .map_err(|error| open_error(peer, error))?;
        let superseded = stream.superseded();
        let (reader, writer) = stream.split();
        let channel = Arc::new(Channel {
            peer,
            superseded,
            writer: tokio::sync::Mutex::new(Some(writer)),
            state: Mutex::new(ChannelState {
                next_id: 0,
                pending: HashMap::new(),
                closed: None,
                last_active: Instant::now(),
            }),
            closing: Notify::new(),
        });
        let opened = self.opened.fetch_add(1, Ordering::Relaxed) + 1;
        debug!(%peer, opened, "invoke channel opened");
        tokio::spawn(read_answers(
            channel.clone(),
            reader,
            self.idle,
            self.shutdown.clone(),
        ));
        Ok(channel)
    }
}

/// One invoke stream to a peer and the calls waiting for their answers on it.
struct Channel {
    peer: PeerId,
    /// Whether new streams to the peer go on another connection than this channel's.
    superseded: Superseded,
    /// Held for a whole frame, so that frames of concurrent calls never interleave.
    /// Dropped once the channel is closed: a stream held open counts as a use of its
    /// connection (`crate::connections`), which would then never be closed as unused.
    writer: tokio::sync::Mutex<Option<WriteHalf<Stream>>>,
    state: Mutex<ChannelState>,
    /// Wakes the reader when a writer closed the channel.
    closing: Notify,
}

struct ChannelState {
    next_id: u64,
    pending: HashMap<u64, oneshot::Sender<Result<InvokeResponse, MeshError>>>,
    /// Why the channel closed; once set, no call is registered on it.
    closed: Option<String>,
    last_active: Instant,
}

enum CallError {
    /// The channel was closed before the call was written: it may go on another one.
    Closed,
    Failed(MeshError),
}

impl Channel {
    async fn call(&self, request: &CallRequest) -> Result<InvokeResponse, CallError> {
        let (id, answer) = {
            let mut state = self.state();
            if state.closed.is_some() {
                return Err(CallError::Closed);
            }
            let id = state.next_id;
            state.next_id += 1;
            let (reply, answer) = oneshot::channel();
            state.pending.insert(id, reply);
            state.last_active = Instant::now();
            (id, answer)
        };
        // Whether the call is answered, fails or is dropped at its deadline, its id is
        // forgotten; a late answer is then ignored.
        let _forget = Forget { channel: self, id };
        self.send(id, request).await.map_err(CallError::Failed)?;
        match answer.await {
            Ok(answered) => answered.map_err(CallError::Failed),
            Err(_) => Err(CallError::Failed(self.unreachable())),
        }
    }

    async fn send(&self, id: u64, request: &CallRequest) -> Result<(), MeshError> {
        let mut writer = self.writer.lock().await;
        let Some(writer) = writer.as_mut() else {
            return Err(self.unreachable());
        };
        // A write cut off half-way (the caller's deadline passed) leaves part of a frame
        // on the stream, which nothing can follow: the channel must close then.
        let mut cut_off = CloseOnDrop(Some(self));
        let written = write_frame(
            writer,
            &Numbered {
                id,
                message: request,
            },
            INVOKE_FRAME_LIMIT,
        )
        .await;
        cut_off.0 = None;
        match written {
            Ok(()) => Ok(()),
            // Refused before anything was written: the stream is intact.
            Err(FrameError::TooLarge { len, limit }) => {
                Err(MeshError::FrameTooLarge { len, limit })
            }
            Err(error) => {
                self.close(format!("connection lost: {error}"));
                Err(self.unreachable())
            }
        }
    }

    /// Hands an answer to the call waiting for it.
    fn answer(&self, id: u64, answer: Result<InvokeResponse, MeshError>) {
        let mut state = self.state();
        state.last_active = Instant::now();
        match state.pending.remove(&id) {
            Some(reply) => {
                let _ = reply.send(answer);
            }
            None => debug!(peer = %self.peer, id, "answer for a call no longer waiting"),
        }
        self.end_if_drained(&state);
    }

    /// Takes no new call, and ends once the calls on it are answered (or given up):
    /// new streams to the peer go on another connection now.
    fn retire(&self) {
        let mut state = self.state();
        if state.closed.is_none() {
            debug!(peer = %self.peer, pending = state.pending.len(), "invoke channel retired: a better connection to the peer is open");
            state.closed = Some("moved to a better connection to the peer".into());
            self.end_if_drained(&state);
        }
    }

    /// A channel closed to new calls with none waiting has nothing more to read.
    fn end_if_drained(&self, state: &ChannelState) {
        if state.closed.is_some() && state.pending.is_empty() {
            self.closing.notify_one();
        }
    }

    /// Closes the channel: no call is registered on it any more, and every call waiting
    /// on it fails with [`MeshError::Unreachable`] giving `why`.
    fn close(&self, why: String) {
        let mut state = self.state();
        if state.closed.is_none() {
            debug!(peer = %self.peer, "invoke channel closed: {why}");
            state.closed = Some(why);
            // Dropping the senders fails the waiting calls.
            state.pending.clear();
            self.closing.notify_one();
        }
    }

    /// Closes the channel if no call has used it for `idle`; says whether it did.
    fn close_if_idle(&self, idle: Duration) -> bool {
        let mut state = self.state();
        let unused = state.pending.is_empty() && state.last_active.elapsed() >= idle;
        if unused && state.closed.is_none() {
            state.closed = Some(format!("closed after {idle:?} unused"));
        }
        unused
    }

    /// When the channel will have been idle for `idle`, as far as is known now.
    fn idle_deadline(&self, idle: Duration) -> Instant {
        let state = self.state();
        if state.pending.is_empty() {
            state.last_active + idle
        } else {
            Instant::now() + idle
        }
    }

    fn is_closed(&self) -> bool {
        self.state().closed.is_some()
    }

    fn unreachable(&self) -> MeshError {
        MeshError::Unreachable {
            peer: self.peer,
            reason: self
                .state()
                .closed
                .clone()
                .unwrap_or_else(|| "the invoke stream closed".into()),
        }
    }

    fn state(&self) -> MutexGuard<'_, ChannelState> {
        self.state.lock().expect("channel state lock")
    }
}

struct Forget<'a> {
    channel: &'a Channel,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        let mut state = self.channel.state();
        if state.pending.remove(&self.id).is_some() {
            self.channel.end_if_drained(&state);
        }
    }
}

struct CloseOnDrop<'a>(Option<&'a Channel>);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(channel) = self.0 {
            channel.close("a call was cut off by its deadline while being written".into());
        }
    }
}

/// The channel's reader: hands each answer to its call until the stream ends, the
/// channel is closed or idle, or the mesh shuts down. Then it fails the calls still
/// waiting and closes the stream.
async fn read_answers(
    channel: Arc<Channel>,
    reader: ReadHalf<Stream>,
    idle: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    // The read is never cancelled mid-frame: the same future is polled until it
    // finishes, whatever else wakes the loop.
    let next_frame = |reader| {
        Box::pin(read_numbered_owned::<InvokeResponse, _>(
            reader,
            INVOKE_FRAME_LIMIT,
        ))
    };
    let mut next = next_frame(reader);
    let why = loop {
        tokio::select! {
            (reader, read) = &mut next => {
                match read {
                    Ok(Numbered { id, message }) => channel.answer(id, Ok(message)),
                    Err(NumberedError::Malformed { id: Some(id), reason }) => {
                        let error = MeshError::Protocol {
                            peer: channel.peer,
                            reason: format!("malformed answer: {reason}"),
                        };
                        channel.answer(id, Err(error));
                    }
                    Err(NumberedError::Malformed { id: None, reason }) => {
                        break format!("it sent a malformed answer: {reason}");
                    }
                    Err(NumberedError::Frame(FrameError::TooLarge { len, limit })) => {
                        break format!("it sent an answer of {len} bytes, over its limit of {limit}");
                    }
                    Err(NumberedError::Frame(error)) => break format!("connection lost: {error}"),
                }
                next = next_frame(reader);
            }
            () = sleep_until(channel.idle_deadline(idle)) => {
                if channel.close_if_idle(idle) {
                    break format!("closed after {idle:?} unused");
                }
            }
            () = channel.closing.notified() => break String::new(),
            _ = shutdown.changed() => break "the mesh shut down".into(),
        }
    };
    channel.close(why);
    drop(next);
    if let Some(mut writer) = channel.writer.lock().await.take() {
        let _ = timeout(CLOSE_TIMEOUT, writer.close()).await;
    }
}

fn open_error(peer: PeerId, error: OpenError) -> MeshError {
    let reason = error.to_string();
    match error {
        OpenError::Unsupported(_) => MeshError::Protocol { peer, reason },
        _ => MeshError::Unreachable { peer, reason },
    }
}
