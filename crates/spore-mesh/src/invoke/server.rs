//! The answering side: one task per invoke stream reads numbered calls and answers each
//! when it ends, in any order. When the caller's side of the stream closes, no one waits
//! for the calls still running: they are cancelled, and stop at their next check.

use std::sync::Arc;
use std::time::Duration;

use futures::io::WriteHalf;
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::PeerId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tracing::{Instrument, Span, debug, info_span, warn};

use spore_core::{CallRequest, Cancel, ErrorKind, Failure};

use crate::streams::Stream;
use crate::wire::{
    FrameError, INVOKE_FRAME_LIMIT, InvokeResponse, MAX_HOPS, Numbered, NumberedError,
    read_numbered_owned, write_frame,
};
use crate::{InvokeNow, MeshHost};

/// Calls of one stream running at once; the next call is not read until one ends.
const IN_FLIGHT_PER_STREAM: usize = 256;
/// How long an answer waits for the caller to take it before the stream is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// The host enforces the call's deadline itself; past it plus this, the caller has
/// given up and the mesh answers `timeout` rather than wait on.
const HOST_GRACE: Duration = Duration::from_millis(500);

/// Answers the calls `peer` sends on `stream` until the caller closes it or breaks the
/// protocol. Either way the calls still running are cancelled: a caller closes its side
/// only when it no longer waits for an answer (the channel went idle with nothing in
/// flight, a write was cut off, the caller shut down or died).
pub(crate) async fn serve_stream(peer: PeerId, stream: Stream, host: Arc<dyn MeshHost>) {
    let (reader, writer) = stream.split();
    let (broken_tx, mut broken) = watch::channel(false);
    let answers = Arc::new(Answers {
        writer: tokio::sync::Mutex::new(writer),
        broken: broken_tx,
    });
    let permits = Arc::new(Semaphore::new(IN_FLIGHT_PER_STREAM));
    let mut calls = JoinSet::new();
    // One flag for every call of the stream: they all lose their caller together.
    let cancel = Cancel::new();
    let _cancel_on_exit = CancelOnDrop(cancel.clone());
    // The read is never cancelled mid-frame (see the client's reader).
    let next_frame = |reader| {
        Box::pin(read_numbered_owned::<CallRequest, _>(
            reader,
            INVOKE_FRAME_LIMIT,
        ))
    };
    let mut next = next_frame(reader);
    loop {
        while calls.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => {
                permit.expect("the semaphore is never closed")
            }
            _ = broken.wait_for(|broken| *broken) => return,
        };
        let (reader, read) = tokio::select! {
            read = &mut next => read,
            _ = broken.wait_for(|broken| *broken) => return,
        };
        match read {
            Ok(Numbered { id, message }) => {
                let span = info_span!(
                    "serve_invoke",
                    function = %message.function,
                    %peer,
                    trace = %message.trace,
                    id
                );
                let call = Call {
                    id,
                    peer,
                    answers: answers.clone(),
                    _permit: permit,
                };
                if let Some(blocking) = call.answer_now(message, &*host, &span).await {
                    calls.spawn(blocking.run(host.clone(), cancel.clone()).instrument(span));
                }
            }
            Err(NumberedError::Malformed {
                id: Some(id),
                reason,
            }) => {
                let refusal = InvokeResponse::error(
                    ErrorKind::BadRequest,
                    format!("malformed call: {reason}"),
                );
                answers.send(id, &refusal).await;
            }
            // Past a frame that cannot be taken apart, the stream cannot be followed:
            // dropping it unclosed resets it.
            Err(NumberedError::Malformed { id: None, reason }) => {
                return debug!(%peer, "resetting an invoke stream: malformed call: {reason}");
            }
            Err(NumberedError::Frame(FrameError::Io(_))) => break,
            Err(NumberedError::Frame(error)) => {
                return debug!(%peer, "resetting an invoke stream: {error}");
            }
        }
        next = next_frame(reader);
    }
    // The caller closed its side (or the connection went): it waits for nothing more.
    cancel.cancel();
    while calls.join_next().await.is_some() {}
    answers.close().await;
}

/// Cancels the stream's calls however serving it ends, a reset included.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// One call being answered. Holding it holds one of its stream's in-flight permits.
struct Call {
    id: u64,
    peer: PeerId,
    answers: Arc<Answers>,
    _permit: OwnedSemaphorePermit,
}

/// A call that may block, to be run on the blocking pool.
struct BlockingCall {
    call: Call,
    request: CallRequest,
}

impl Call {
    /// Answers at once when that needs no blocking: a call refused outright, or one the
    /// host can serve without blocking. Otherwise gives the call back.
    async fn answer_now(
        self,
        request: CallRequest,
        host: &dyn MeshHost,
        span: &Span,
    ) -> Option<BlockingCall> {
        let response = if request.hops > MAX_HOPS {
            InvokeResponse::error(
                ErrorKind::BadRequest,
                format!(
                    "call was forwarded {} times; at most {MAX_HOPS} hops are allowed",
                    request.hops
                ),
            )
        } else {
            match span.in_scope(|| host.invoke_now(request, self.peer)) {
                InvokeNow::Answered(response) => response,
                InvokeNow::Later(request) => {
                    return Some(BlockingCall {
                        call: self,
                        request,
                    });
                }
            }
        };
        self.answers.send(self.id, &response).await;
        None
    }
}

impl BlockingCall {
    async fn run(self, host: Arc<dyn MeshHost>, cancel: Cancel) {
        let BlockingCall { call, request } = self;
        // The host enforces the deadline itself; this only bounds a host that does not.
        let budget = request.remaining() + HOST_GRACE;
        let function = request.function.clone();
        let peer = call.peer;
        let span = Span::current();
        let run = tokio::task::spawn_blocking(move || {
            span.in_scope(|| host.invoke(request, peer, cancel))
        });
        let response = match timeout(budget, run).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                warn!("invocation handler failed: {e}");
                InvokeResponse::error(
                    ErrorKind::Internal,
                    format!("the node failed running {function}: {e}"),
                )
            }
            Err(_) => InvokeResponse::error(
                ErrorKind::Timeout,
                format!("{function} did not finish within its deadline"),
            ),
        };
        call.answers.send(call.id, &response).await;
    }
}

/// The stream's writing half, shared by the calls answering on it.
struct Answers {
    writer: tokio::sync::Mutex<WriteHalf<Stream>>,
    /// Set when a write failed or was cut off: the stream is given up.
    broken: watch::Sender<bool>,
}

impl Answers {
    async fn send(&self, id: u64, response: &InvokeResponse) {
        let mut writer = self.writer.lock().await;
        if *self.broken.borrow() {
            return;
        }
        let write = async {
            let answer = Numbered {
                id,
                message: response,
            };
            match write_frame(&mut *writer, &answer, INVOKE_FRAME_LIMIT).await {
                Err(FrameError::TooLarge { len, limit }) => {
                    let refusal = InvokeResponse::answered(
                        Err(Failure::new(
                            ErrorKind::TooLarge,
                            format!("the response is {len} bytes, over the limit of {limit}"),
                        )),
                        response.path.clone(),
                    );
                    let answer = Numbered {
                        id,
                        message: &refusal,
                    };
                    write_frame(&mut *writer, &answer, INVOKE_FRAME_LIMIT).await
                }
                other => other,
            }
        };
        let failure = match timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("not taken within {WRITE_TIMEOUT:?}"),
        };
        debug!("invoke answer {id} not delivered, giving the stream up: {failure}");
        self.broken.send_replace(true);
    }

    async fn close(&self) {
        let mut writer = self.writer.lock().await;
        let _ = timeout(WRITE_TIMEOUT, writer.close()).await;
    }
}
