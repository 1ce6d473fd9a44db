//! Frames and the messages they carry (`spec/wire.md`).
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of one CBOR map.
//! Every protocol has its own frame limit; a longer frame is refused before any of its
//! body is read, so a peer cannot make us allocate more than the limit.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use spore_core::frame;
use spore_core::value::{Major, write_head};
use spore_core::{CallStats, ErrorKind, Failure, MemoUse, Path};

/// Module transfer in 16 KiB chunk groups, asked first.
pub(crate) const FETCH_PROTOCOL: StreamProtocol = StreamProtocol::new("/spore/fetch/2");
/// Module transfer in bao's 1 KiB chunks: served to peers that predate `/2`, and asked
/// of peers that refuse `/2`.
pub(crate) const FETCH_PROTOCOL_V1: StreamProtocol = StreamProtocol::new("/spore/fetch/1");
pub(crate) const INVOKE_PROTOCOL: StreamProtocol = StreamProtocol::new("/spore/invoke/3");

/// The largest range a fetch request may ask for.
pub(crate) const MAX_RANGE_LEN: u64 = 2 << 20;
/// A fetch request frame is a hash and two integers.
pub(crate) const FETCH_REQUEST_FRAME_LIMIT: usize = 1024;
/// A `{size}` or `{error}` frame.
pub(crate) const FETCH_HEADER_FRAME_LIMIT: usize = 64 << 10;
/// A `{slice}` frame, in either version. A `/1` slice of [`MAX_RANGE_LEN`] bytes carries
/// 64 bytes of tree nodes per KiB (under 6.25 %), plus its header and the CBOR around
/// it; 2 MiB + 256 KiB covers all of it, and a `/2` slice (64 bytes per 16 KiB) easily.
pub(crate) const FETCH_SLICE_FRAME_LIMIT: usize = (2 << 20) + (256 << 10);
pub(crate) const INVOKE_FRAME_LIMIT: usize = 16 << 20;

/// Why a frame could not be written or read on a stream.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("frame of {len} bytes is larger than the protocol's limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
    #[error("malformed frame: {0}")]
    Decode(String),
}

/// The framing itself is `spore_core::frame`'s, shared with provider processes.
impl From<frame::FrameError> for FrameError {
    fn from(error: frame::FrameError) -> Self {
        match error {
            frame::FrameError::TooLarge { len, limit } => FrameError::TooLarge { len, limit },
            other => FrameError::Decode(other.to_string()),
        }
    }
}

pub(crate) async fn write_frame<T: Serialize>(
    io: &mut (impl AsyncWrite + Unpin),
    message: &T,
    limit: usize,
) -> Result<(), FrameError> {
    // The length goes in front of the body in one buffer, so a frame is one write: one
    // yamux frame and one noise message instead of two.
    let frame = frame::encode(message, limit)?;
    io.write_all(&frame).await?;
    io.flush().await?;
    Ok(())
}

pub(crate) async fn read_frame<T: DeserializeOwned>(
    io: &mut (impl AsyncRead + Unpin),
    limit: usize,
) -> Result<T, FrameError> {
    let body = read_body(io, limit).await?;
    Ok(frame::decode(&body)?)
}

/// A message of a multiplexed protocol: `{id, message}`, the id pairing an answer with
/// its call.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Numbered<T> {
    pub id: u64,
    pub message: T,
}

/// Why a numbered frame could not be taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NumberedError {
    /// The stream itself failed or broke the framing: nothing more can be read from it.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A whole frame arrived but its message is malformed. With its id, the sender can
    /// be told which call was refused and the stream stays usable.
    #[error("malformed message{}: {reason}", id.map(|id| format!(" {id}")).unwrap_or_default())]
    Malformed { id: Option<u64>, reason: String },
}

/// Reads one `{id, message}` frame.
pub(crate) async fn read_numbered<T: DeserializeOwned>(
    io: &mut (impl AsyncRead + Unpin),
    limit: usize,
) -> Result<Numbered<T>, NumberedError> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: u64,
    }
    let body = read_body(io, limit).await?;
    frame::decode(&body).map_err(|e| NumberedError::Malformed {
        id: ciborium::from_reader::<IdOnly, _>(body.as_slice())
            .ok()
            .map(|m| m.id),
        reason: e.to_string(),
    })
}

/// [`read_numbered`] taking the reader and giving it back, so that a loop can keep the
/// one read in progress across wake-ups instead of cancelling it mid-frame.
pub(crate) async fn read_numbered_owned<T: DeserializeOwned, R: AsyncRead + Unpin>(
    mut reader: R,
    limit: usize,
) -> (R, Result<Numbered<T>, NumberedError>) {
    let read = read_numbered(&mut reader, limit).await;
    (reader, read)
}

async fn read_body(io: &mut (impl AsyncRead + Unpin), limit: usize) -> Result<Vec<u8>, FrameError> {
    let mut body = Vec::new();
    read_body_into(io, limit, &mut body).await?;
    Ok(body)
}

/// Reads a frame's body into `body`, replacing what it held; only bytes beyond its old
/// length are zeroed first.
async fn read_body_into(
    io: &mut (impl AsyncRead + Unpin),
    limit: usize,
    body: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let mut prefix = [0u8; frame::PREFIX_BYTES];
    io.read_exact(&mut prefix).await?;
    body.resize(frame::body_len(prefix, limit)?, 0);
    io.read_exact(body).await?;
    Ok(())
}

/// `/spore/fetch/1` and `/2` request: a byte range of a module.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FetchRequest {
    pub hash: spore_core::Hash,
    pub start: u64,
    pub len: u64,
}

/// The first response frame: the module's size, or why it cannot be served.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FetchHeader {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
}

/// The second response frame: the slice of the range, in the encoding of the
/// protocol's version ([`crate::verify`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FetchSlice {
    #[serde(with = "serde_bytes")]
    pub slice: Vec<u8>,
}

/// The CBOR a `{slice: bytes}` frame starts with: a one-entry map and its key.
const SLICE_PREFIX: &[u8] = b"\xa1\x65slice";

/// Writes a `{slice}` frame straight from `slice`: the CBOR around it is written by
/// hand so that a megabyte of slice is not copied into an encoder first.
pub(crate) async fn write_slice_frame(
    io: &mut (impl AsyncWrite + Unpin),
    slice: &[u8],
) -> Result<(), FrameError> {
    let mut head = SLICE_PREFIX.to_vec();
    write_head(&mut head, Major::Bytes, slice.len() as u64);
    let prefix = frame::prefix(head.len() + slice.len(), FETCH_SLICE_FRAME_LIMIT)?;
    io.write_all(&prefix).await?;
    io.write_all(&head).await?;
    io.write_all(slice).await?;
    io.flush().await?;
    Ok(())
}

/// A received `{slice}` frame; the slice is a window of the frame, not a copy.
pub(crate) struct SliceFrame {
    body: Vec<u8>,
    slice: std::ops::Range<usize>,
}

impl SliceFrame {
    pub fn slice(&self) -> &[u8] {
        &self.body[self.slice.clone()]
    }

    /// The frame's buffer, for the next frame to be read into.
    pub fn into_buffer(self) -> Vec<u8> {
        self.body
    }
}

/// Reads a `{slice}` frame into `buffer` (a spent frame's, so that a fetch does not
/// allocate and fault in a fresh megabyte for every range). The canonical encoding is
/// taken apart by hand; any other valid CBOR for the same map goes through the general
/// decoder.
pub(crate) async fn read_slice_frame(
    io: &mut (impl AsyncRead + Unpin),
    mut buffer: Vec<u8>,
) -> Result<SliceFrame, FrameError> {
    read_body_into(io, FETCH_SLICE_FRAME_LIMIT, &mut buffer).await?;
    let body = buffer;
    if let Some(slice) = canonical_slice(&body) {
        return Ok(SliceFrame { body, slice });
    }
    let FetchSlice { slice } =
        ciborium::from_reader(body.as_slice()).map_err(|e| FrameError::Decode(e.to_string()))?;
    let range = 0..slice.len();
    Ok(SliceFrame {
        body: slice,
        slice: range,
    })
}

/// Where the bytes are in `{slice: bytes}` encoded the canonical way, if it is.
fn canonical_slice(body: &[u8]) -> Option<std::ops::Range<usize>> {
    let rest = body.strip_prefix(SLICE_PREFIX)?;
    let (&initial, rest) = rest.split_first()?;
    if initial >> 5 != 2 {
        return None;
    }
    let (len, header) = match initial & 0x1f {
        n @ 0..=23 => (u64::from(n), 0),
        24 => (u64::from(*rest.first()?), 1),
        25 => (
            u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
            2,
        ),
        26 => (
            u64::from(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)),
            4,
        ),
        27 => (u64::from_be_bytes(rest.get(..8)?.try_into().ok()?), 8),
        _ => return None,
    };
    let start = SLICE_PREFIX.len() + 1 + header;
    (body.len().checked_sub(start)? as u64 == len).then_some(start..body.len())
}

/// A call forwarded more than this many times is refused before the host sees it.
pub(crate) use spore_core::MAX_HOPS;

/// `/spore/invoke/3` answer (the `message` of a numbered answer frame). On the wire it
/// is one map: `{ok: {value, memo, effectful, stats?}, path}` or
/// `{error: {kind, message, value?}, path, refused?: true}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "InvokeResponseWire", try_from = "InvokeResponseWire")]
pub struct InvokeResponse {
    /// What the call returned, or why it did not.
    pub result: Result<Returned, Failure>,
    /// Where the call ran, what was fetched from whom and what was compiled, in order.
    pub path: Path,
    /// The callee refused the call before any of it ran, there or further on (a
    /// policy, a limit, no peer to place it on): the caller may send it to another
    /// peer. Only with an error.
    pub refused: bool,
}

/// A call that returned, as it travels back: the result and how it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Returned {
    /// The result value, one CBOR data item.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    pub memo: MemoUse,
    /// Whether the call could have had effects (then it was not memoized).
    pub effectful: bool,
    /// Where the time went, when the function ran (not for a memo hit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<CallStats>,
}

impl InvokeResponse {
    /// A failure with no path, for errors found before anything ran.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Self {
        InvokeResponse::answered(Err(Failure::new(kind, message)), Path::new())
    }

    /// The answer of a call that was taken: it returned or failed as `result` says.
    pub fn answered(result: Result<Returned, Failure>, path: Path) -> Self {
        InvokeResponse {
            result,
            path,
            refused: false,
        }
    }

    /// A call refused before any of it ran, for `failure`'s reason.
    pub fn refused(failure: Failure, path: Path) -> Self {
        InvokeResponse {
            result: Err(failure),
            path,
            refused: true,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct InvokeResponseWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ok: Option<Returned>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<Failure>,
    #[serde(default)]
    path: Path,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    refused: bool,
}

impl From<InvokeResponse> for InvokeResponseWire {
    fn from(response: InvokeResponse) -> Self {
        let (ok, error) = match response.result {
            Ok(returned) => (Some(returned), None),
            Err(failure) => (None, Some(failure)),
        };
        InvokeResponseWire {
            ok,
            error,
            path: response.path,
            refused: response.refused,
        }
    }
}

impl TryFrom<InvokeResponseWire> for InvokeResponse {
    type Error = &'static str;

    fn try_from(wire: InvokeResponseWire) -> Result<Self, Self::Error> {
        let result = match (wire.ok, wire.error) {
            (Some(returned), None) => Ok(returned),
            (None, Some(failure)) => Err(failure),
            _ => return Err("an invoke answer holds exactly one of `ok` and `error`"),
        };
        if wire.refused && result.is_ok() {
            return Err("an invoke answer that returned cannot be `refused`");
        }
        Ok(InvokeResponse {
            result,
            path: wire.path,
            refused: wire.refused,
        })
    }
}

/// A stream for tests of one exchange: reads the bytes it was given, keeps the bytes
/// written to it.
#[cfg(test)]
pub(crate) struct Scripted {
    input: futures::io::Cursor<Vec<u8>>,
    pub written: Vec<u8>,
}

#[cfg(test)]
impl Scripted {
    pub fn new(input: impl Into<Vec<u8>>) -> Self {
        Scripted {
            input: futures::io::Cursor::new(input.into()),
            written: Vec::new(),
        }
    }
}

#[cfg(test)]
impl AsyncRead for Scripted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.input).poll_read(cx, buf)
    }
}

#[cfg(test)]
impl AsyncWrite for Scripted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.written).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.written).poll_flush(cx)
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.written).poll_close(cx)
    }
}

#[cfg(test)]
mod tests;

/// The slice encoding a fetch protocol carries, if `protocol` is one.
pub(crate) fn fetch_slice_format(protocol: &StreamProtocol) -> Option<crate::verify::SliceFormat> {
    use crate::verify::SliceFormat;
    if *protocol == FETCH_PROTOCOL {
        Some(SliceFormat::Groups)
    } else if *protocol == FETCH_PROTOCOL_V1 {
        Some(SliceFormat::Chunks)
    } else {
        None
    }
}
