//! `/spore/invoke/1`: one invocation request and its response per stream.

use std::sync::Arc;
use std::time::Duration;

use futures::AsyncWriteExt;
use libp2p::{PeerId, Stream};
use tokio::time::{Instant, timeout, timeout_at};
use tracing::{Instrument, debug, info_span, warn};

use crate::MeshHost;
use crate::error::MeshError;
use crate::streams::{Control, OpenError};
use crate::wire::{
    FrameError, INVOKE_FRAME_LIMIT, INVOKE_PROTOCOL, InvokeRequest, InvokeResponse, MAX_HOPS,
    read_frame, write_frame,
};

/// How long a serving node waits for a request to arrive.
const SERVE_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long it waits for the caller to take the response.
const SERVE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// The host enforces the call's deadline itself; past it plus this, the caller has
/// given up and the mesh answers `timeout` rather than wait on.
const HOST_GRACE: Duration = Duration::from_millis(500);

/// Sends `request` to `peer` and waits for its response, all before `deadline`.
pub(crate) async fn invoke(
    control: Control,
    peer: PeerId,
    mut request: InvokeRequest,
    deadline: Instant,
) -> Result<InvokeResponse, MeshError> {
    let span = info_span!("invoke", function = %request.function, %peer, trace = %request.trace);
    let function = request.function.clone();
    let remaining = deadline.saturating_duration_since(Instant::now());
    // The callee never runs longer than the caller still waits.
    request.deadline_ms = request
        .deadline_ms
        .min(u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX));
    let exchange = async {
        let mut stream = control
            .open_stream(peer, INVOKE_PROTOCOL)
            .await
            .map_err(|e| open_error(peer, e))?;
        write_frame(&mut stream, &request, INVOKE_FRAME_LIMIT)
            .await
            .map_err(|e| frame_error(peer, e))?;
        let response: InvokeResponse = read_frame(&mut stream, INVOKE_FRAME_LIMIT)
            .await
            .map_err(|e| frame_error(peer, e))?;
        let _ = stream.close().await;
        debug!(ok = response.result.is_ok(), "invoke answered");
        Ok(response)
    };
    match timeout_at(deadline, exchange.instrument(span)).await {
        Ok(result) => result,
        Err(_) => Err(MeshError::Deadline {
            during: format!("invoking {function} on peer {peer}"),
        }),
    }
}

fn open_error(peer: PeerId, error: OpenError) -> MeshError {
    let reason = error.to_string();
    match error {
        OpenError::Unsupported(_) => MeshError::Protocol { peer, reason },
        _ => MeshError::Unreachable { peer, reason },
    }
}

fn frame_error(peer: PeerId, error: FrameError) -> MeshError {
    match error {
        FrameError::Io(e) => MeshError::Unreachable {
            peer,
            reason: format!("connection lost: {e}"),
        },
        FrameError::TooLarge { len, limit } => MeshError::FrameTooLarge { len, limit },
        FrameError::Decode(reason) => MeshError::Protocol { peer, reason },
    }
}

/// Answers one `/spore/invoke/1` request.
pub(crate) async fn serve_one(peer: PeerId, mut stream: Stream, host: Arc<dyn MeshHost>) {
    let request = match timeout(
        SERVE_READ_TIMEOUT,
        read_frame::<InvokeRequest>(&mut stream, INVOKE_FRAME_LIMIT),
    )
    .await
    {
        Ok(Ok(request)) => request,
        Ok(Err(FrameError::Decode(e))) => {
            let response = InvokeResponse::error("bad_request", format!("malformed request: {e}"));
            return respond(&mut stream, &response).await;
        }
        // An oversize frame is refused by resetting the stream (dropping it unclosed).
        Ok(Err(e)) => return debug!(%peer, "refusing invoke request: {e}"),
        Err(_) => return debug!(%peer, "no invoke request within {SERVE_READ_TIMEOUT:?}"),
    };
    let span =
        info_span!("serve_invoke", function = %request.function, %peer, trace = %request.trace);
    async {
        let response = if request.hops > MAX_HOPS {
            InvokeResponse::error(
                "bad_request",
                format!(
                    "call was forwarded {} times; at most {MAX_HOPS} hops are allowed",
                    request.hops
                ),
            )
        } else {
            let budget = Duration::from_millis(request.deadline_ms) + HOST_GRACE;
            let deadline_ms = request.deadline_ms;
            let run = tokio::task::spawn_blocking(move || host.invoke(request, peer));
            match timeout(budget, run).await {
                Ok(Ok(response)) => response,
                Ok(Err(e)) => {
                    warn!("invocation handler failed: {e}");
                    InvokeResponse::error(
                        "failed",
                        format!("the node failed running the call: {e}"),
                    )
                }
                Err(_) => InvokeResponse::error(
                    "timeout",
                    format!("the call did not finish within its deadline of {deadline_ms} ms"),
                ),
            }
        };
        respond(&mut stream, &response).await;
    }
    .instrument(span)
    .await
}

async fn respond(stream: &mut Stream, response: &InvokeResponse) {
    let write = async {
        match write_frame(stream, response, INVOKE_FRAME_LIMIT).await {
            Err(FrameError::TooLarge { len, limit }) => {
                let refusal = InvokeResponse {
                    result: Err(crate::WireError::new(
                        "too_large",
                        format!("the response is {len} bytes, over the limit of {limit}"),
                    )),
                    path: response.path.clone(),
                };
                write_frame(stream, &refusal, INVOKE_FRAME_LIMIT).await
            }
            other => other,
        }?;
        stream.close().await?;
        Ok::<_, FrameError>(())
    };
    match timeout(SERVE_WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => debug!("invoke response not delivered: {e}"),
        Err(_) => debug!("invoke response not taken within {SERVE_WRITE_TIMEOUT:?}"),
    }
}
