//! One request of a fetch: the stream to a provider, the request, and its answer
//! verified against the module hash (`spec/wire.md`, `/spore/fetch/2` and `/1`).

use futures::{AsyncRead, AsyncWrite, AsyncWriteExt};
use libp2p::PeerId;
use tokio::time::{Instant, timeout_at};

use crate::error::FailureReason;
use crate::streams::{Control, OpenError};
use crate::verify::{SliceFormat, chunks, groups};
use crate::wire::{
    FETCH_HEADER_FRAME_LIMIT, FETCH_PROTOCOL, FETCH_PROTOCOL_V1, FETCH_REQUEST_FRAME_LIMIT,
    FetchHeader, FetchRequest, FrameError, SliceFrame, read_frame, read_slice_frame, write_frame,
};
use spore_core::ErrorKind;

/// A range and the size of its module, verified.
#[cfg(test)]
pub(crate) struct RangeOk {
    pub size: u64,
    pub bytes: Vec<u8>,
}

/// A provider's answer to one request: the size it claims, and the range, verified
/// against the hash as a range of a module of that size.
pub(crate) struct Answer {
    pub size: u64,
    pub content: Content,
}

pub(crate) enum Content {
    /// A verified `/2` slice of `[start, start + len)`. Its bytes are copied once, from
    /// the frame straight into the module, and the frame's buffer then serves the next
    /// range.
    Groups {
        frame: SliceFrame,
        start: u64,
        len: u64,
    },
    /// A `/1` range's bytes (bao verifies as it decodes), or nothing for a request
    /// that asked only for the size.
    Bytes(Vec<u8>),
}

impl Content {
    pub fn len(&self) -> u64 {
        match self {
            Content::Groups { len, .. } => *len,
            Content::Bytes(bytes) => bytes.len() as u64,
        }
    }

    /// Copies the range's bytes to `out`, which is the range's length; `size` is the
    /// module's, which the slice was verified with.
    pub fn copy_to(&self, size: u64, out: &mut [u8]) {
        match self {
            Content::Groups { frame, start, .. } => {
                groups::copy_range(frame.slice(), size, *start, out)
            }
            Content::Bytes(bytes) => out.copy_from_slice(bytes),
        }
    }

    /// The buffer a `/2` frame was read into, for the next.
    pub fn into_buffer(self) -> Option<Vec<u8>> {
        match self {
            Content::Groups { frame, .. } => Some(frame.into_buffer()),
            Content::Bytes(_) => None,
        }
    }
}

/// One fetch request to `peer`, within `deadline`: `/spore/fetch/2`, or `/1` when the
/// peer does not speak `/2`. A `/2` slice is read into `buffer`.
pub(crate) async fn request_range(
    control: Control,
    peer: PeerId,
    request: FetchRequest,
    buffer: Vec<u8>,
    deadline: Instant,
) -> Result<Answer, FailureReason> {
    let answer = async {
        let asked = match control.open_stream(peer, FETCH_PROTOCOL).await {
            Ok(mut stream) => ask(&mut stream, request.clone(), SliceFormat::Groups, buffer).await,
            Err(OpenError::Unsupported(_)) => Err(AskFailure::RefusedProtocol),
            Err(e) => return Err(open_failure(e)),
        };
        match asked {
            Ok(answer) => Ok(answer),
            Err(AskFailure::RefusedProtocol) => {
                let mut stream = control
                    .open_stream(peer, FETCH_PROTOCOL_V1)
                    .await
                    .map_err(open_failure)?;
                ask(&mut stream, request, SliceFormat::Chunks, Vec::new())
                    .await
                    .map_err(AskFailure::into_reason)
            }
            Err(AskFailure::Failed(reason)) => Err(reason),
        }
    };
    timeout_at(deadline, answer)
        .await
        .unwrap_or(Err(FailureReason::Timeout))
}

/// Sends `request` on an open stream and takes the answer: `{size}`, then the verified
/// bytes of the range, its slice in `format`.
#[cfg(test)]
pub(crate) async fn exchange(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    request: FetchRequest,
    format: SliceFormat,
) -> Result<RangeOk, FailureReason> {
    let Answer { size, content } = ask(stream, request, format, Vec::new())
        .await
        .map_err(AskFailure::into_reason)?;
    let mut bytes = vec![0; content.len() as usize];
    content.copy_to(size, &mut bytes);
    Ok(RangeOk { size, bytes })
}

/// Why [`ask`] got no answer.
enum AskFailure {
    /// The peer does not speak the stream's protocol. Streams are negotiated lazily
    /// (`spec/wire.md`), so this is learnt when the first answer is read.
    RefusedProtocol,
    Failed(FailureReason),
}

impl From<FailureReason> for AskFailure {
    fn from(reason: FailureReason) -> Self {
        AskFailure::Failed(reason)
    }
}

impl AskFailure {
    fn into_reason(self) -> FailureReason {
        match self {
            AskFailure::RefusedProtocol => {
                FailureReason::Protocol("it speaks no fetch protocol of ours".into())
            }
            AskFailure::Failed(reason) => reason,
        }
    }
}

/// Sends `request` on an open stream and takes the answer: `{size}`, then the range,
/// its slice in `format` (read into `buffer`).
async fn ask(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    request: FetchRequest,
    format: SliceFormat,
    buffer: Vec<u8>,
) -> Result<Answer, AskFailure> {
    let FetchRequest { hash, start, len } = request;
    write_frame(stream, &request, FETCH_REQUEST_FRAME_LIMIT)
        .await
        .map_err(frame_failure)?;
    let header: FetchHeader = match read_frame(stream, FETCH_HEADER_FRAME_LIMIT).await {
        Ok(header) => header,
        Err(e) if refused_protocol(&e) => return Err(AskFailure::RefusedProtocol),
        Err(e) => return Err(frame_failure(e).into()),
    };
    let size = announced_size(header)?;
    if len == 0 {
        let _ = stream.close().await;
        return Ok(Answer {
            size,
            content: Content::Bytes(Vec::new()),
        });
    }
    if start > size {
        return Err(FailureReason::Protocol(format!(
            "it claims the module is {size} bytes, shorter than the range start {start}"
        ))
        .into());
    }
    let frame = read_slice_frame(stream, buffer)
        .await
        .map_err(frame_failure)?;
    let _ = stream.close().await;
    let len = len.min(size - start);
    // The slice must be of a module of the announced size: only then does the final
    // range prove the size.
    let content = match format {
        // Here, in the range's own task: a megabyte hashes in a quarter of a
        // millisecond, and the fetch's ranges verify on every worker at once.
        SliceFormat::Groups => {
            groups::verify(&hash, frame.slice(), size, start, len)
                .map_err(|e| FailureReason::HashMismatch(e.to_string()))?;
            Content::Groups { frame, start, len }
        }
        SliceFormat::Chunks => {
            let bytes = tokio::task::spawn_blocking(move || {
                chunks::verify_slice(&hash, frame.slice(), start, len, size)
            })
            .await
            .map_err(|e| FailureReason::Protocol(format!("verification task failed: {e}")))?
            .map_err(|e| FailureReason::HashMismatch(e.to_string()))?;
            Content::Bytes(bytes)
        }
    };
    Ok(Answer { size, content })
}

/// The module size a `{size}` answer gives, or why the provider did not serve.
pub(crate) fn announced_size(header: FetchHeader) -> Result<u64, FailureReason> {
    match header {
        FetchHeader {
            size: Some(size),
            error: None,
        } => Ok(size),
        FetchHeader {
            error: Some(error), ..
        } if error.kind == ErrorKind::NotFound => Err(FailureReason::NotFound),
        FetchHeader {
            error: Some(error), ..
        } => Err(FailureReason::Protocol(format!("it answered {error}"))),
        FetchHeader { .. } => Err(FailureReason::Protocol(
            "its answer holds neither `size` nor `error`".into(),
        )),
    }
}

fn open_failure(error: OpenError) -> FailureReason {
    match error {
        OpenError::Unsupported(_) => FailureReason::Protocol(error.to_string()),
        _ => FailureReason::Unreachable(error.to_string()),
    }
}

/// Whether `error` is multistream-select's "no protocol agreed", which a lazily
/// negotiated stream returns from its first read.
fn refused_protocol(error: &FrameError) -> bool {
    use libp2p::core::upgrade::NegotiationError;
    matches!(error, FrameError::Io(e)
        if matches!(e.get_ref().and_then(|inner| inner.downcast_ref()), Some(NegotiationError::Failed)))
}

fn frame_failure(error: FrameError) -> FailureReason {
    match error {
        FrameError::Io(e) => FailureReason::Unreachable(e.to_string()),
        other => FailureReason::Protocol(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::client::RANGE_LEN;
    use crate::verify::Encoded;
    use crate::wire::{FETCH_SLICE_FRAME_LIMIT, Scripted, write_slice_frame};

    fn blob(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 1000) as u8).collect()
    }

    /// What a provider sends for `request` when it announces `size` and slices `module`
    /// in `format`.
    async fn answer(
        module: &[u8],
        size: u64,
        request: &FetchRequest,
        format: SliceFormat,
    ) -> Vec<u8> {
        let mut answer = Vec::new();
        let header = FetchHeader {
            size: Some(size),
            error: None,
        };
        write_frame(&mut answer, &header, FETCH_HEADER_FRAME_LIMIT)
            .await
            .unwrap();
        let mut slice = Vec::new();
        Encoded::new(module.to_vec()).slice(format, request.start, request.len, &mut slice);
        write_slice_frame(&mut answer, &slice).await.unwrap();
        assert!(answer.len() < FETCH_SLICE_FRAME_LIMIT);
        answer
    }

    #[tokio::test]
    async fn the_final_range_is_taken_only_when_it_proves_the_announced_size() {
        // Three 16 KiB groups, the last of 7,232 bytes; 40 chunks of 1 KiB.
        let module = blob(40_000);
        let hash = spore_core::Hash::of(&module);
        let final_range = |size: u64| FetchRequest {
            hash,
            start: size.saturating_sub(1) / RANGE_LEN * RANGE_LEN,
            len: size - size.saturating_sub(1) / RANGE_LEN * RANGE_LEN,
        };
        for format in [SliceFormat::Groups, SliceFormat::Chunks] {
            let honest = final_range(40_000);
            let mut stream = Scripted::new(answer(&module, 40_000, &honest, format).await);
            let taken = exchange(&mut stream, honest, format).await.unwrap();
            assert_eq!((taken.size, taken.bytes), (40_000, module.clone()));

            // A provider announcing a shorter module than it holds answers the final
            // range of that size with an honest slice of a range inside the module:
            // every byte of it verifies, yet the size it claims is not the module's.
            for size in [39_999, 32_769, 32_768, 20_000, 6144, 1] {
                let request = final_range(size);
                let mut stream = Scripted::new(answer(&module, size, &request, format).await);
                match exchange(&mut stream, request, format).await {
                    Err(FailureReason::HashMismatch(_)) => {}
                    other => panic!(
                        "{format:?}: announced size {size} of a 40000-byte module: {:?}",
                        other.map(|ok| ok.size)
                    ),
                }
            }
        }
    }
}
