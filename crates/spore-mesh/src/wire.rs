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
use spore_core::value::{Major, write_head};

pub(crate) const FETCH_PROTOCOL: StreamProtocol = StreamProtocol::new("/spore/fetch/1");
pub(crate) const INVOKE_PROTOCOL: StreamProtocol = StreamProtocol::new("/spore/invoke/2");

/// The largest range a fetch request may ask for.
pub(crate) const MAX_RANGE_LEN: u64 = 2 << 20;
/// A bao slice of [`MAX_RANGE_LEN`] bytes carries 64 bytes of tree nodes per KiB (under
/// 6.25 %), plus its header and the CBOR around it; 2 MiB + 256 KiB covers all of it.
pub(crate) const FETCH_FRAME_LIMIT: usize = (2 << 20) + (256 << 10);
pub(crate) const INVOKE_FRAME_LIMIT: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("frame of {len} bytes is larger than the protocol's limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
    #[error("malformed frame: {0}")]
    Decode(String),
}

pub(crate) async fn write_frame<T: Serialize>(
    io: &mut (impl AsyncWrite + Unpin),
    message: &T,
    limit: usize,
) -> Result<(), FrameError> {
    // The length goes in front of the body in one buffer, so a frame is one write: one
    // yamux frame and one noise message instead of two.
    let mut frame = vec![0u8; 4];
    ciborium::into_writer(message, &mut frame)
        .map_err(|e| FrameError::Decode(format!("cannot encode: {e}")))?;
    let len = frame.len() - 4;
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    let len = u32::try_from(len).expect("frame limits are below 4 GiB");
    frame[..4].copy_from_slice(&len.to_be_bytes());
    io.write_all(&frame).await?;
    io.flush().await?;
    Ok(())
}

pub(crate) async fn read_frame<T: DeserializeOwned>(
    io: &mut (impl AsyncRead + Unpin),
    limit: usize,
) -> Result<T, FrameError> {
    let body = read_body(io, limit).await?;
    ciborium::from_reader(body.as_slice()).map_err(|e| FrameError::Decode(e.to_string()))
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
    ciborium::from_reader(body.as_slice()).map_err(|e| NumberedError::Malformed {
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
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await?;
    Ok(body)
}

/// `/spore/fetch/1` request: a byte range of a module.
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
    pub error: Option<WireError>,
}

/// The second response frame: the bao slice encoding of the range.
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
    let len = head.len() + slice.len();
    if len > FETCH_FRAME_LIMIT {
        return Err(FrameError::TooLarge {
            len,
            limit: FETCH_FRAME_LIMIT,
        });
    }
    let len = u32::try_from(len).expect("frame limits are below 4 GiB");
    io.write_all(&len.to_be_bytes()).await?;
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
}

/// Reads a `{slice}` frame. The canonical encoding is taken apart by hand; any other
/// valid CBOR for the same map goes through the general decoder.
pub(crate) async fn read_slice_frame(
    io: &mut (impl AsyncRead + Unpin),
) -> Result<SliceFrame, FrameError> {
    let body = read_body(io, FETCH_FRAME_LIMIT).await?;
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

/// `/spore/invoke/2` request (the `message` of a numbered call frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvokeRequest {
    /// `hash:export`, always with a full hash: names never travel.
    pub function: String,
    /// The canonical CBOR argument array.
    #[serde(with = "serde_bytes")]
    pub args: Vec<u8>,
    /// The caller's trace id.
    pub trace: String,
    /// The caller's remaining deadline; the callee never runs longer.
    pub deadline_ms: u64,
    /// How many times this call has been forwarded.
    pub hops: u32,
}

/// At most this many forwards per call (`spec/wire.md`).
pub(crate) const MAX_HOPS: u32 = 4;

/// `/spore/invoke/2` response (the `message` of a numbered answer frame). On the wire it is one map: `{ok: bytes, path}` or
/// `{error: {kind, message, value?}, path}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "InvokeResponseWire", try_from = "InvokeResponseWire")]
pub struct InvokeResponse {
    /// The CBOR result, or why there is none.
    pub result: Result<Vec<u8>, WireError>,
    /// Where the call ran, what was fetched from whom and what was compiled, in order.
    pub path: Vec<PathStep>,
}

impl InvokeResponse {
    /// A failure with no path, for errors found before anything ran.
    pub fn error(kind: spore_core::ErrorKind, message: impl Into<String>) -> Self {
        InvokeResponse {
            result: Err(WireError::new(kind, message)),
            path: Vec::new(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct InvokeResponseWire {
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    ok: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<WireError>,
    #[serde(default)]
    path: Vec<PathStep>,
}

impl From<InvokeResponse> for InvokeResponseWire {
    fn from(response: InvokeResponse) -> Self {
        let (ok, error) = match response.result {
            Ok(value) => (Some(value), None),
            Err(error) => (None, Some(error)),
        };
        InvokeResponseWire {
            ok,
            error,
            path: response.path,
        }
    }
}

impl TryFrom<InvokeResponseWire> for InvokeResponse {
    type Error = &'static str;

    fn try_from(wire: InvokeResponseWire) -> Result<Self, Self::Error> {
        let result = match (wire.ok, wire.error) {
            (Some(value), None) => Ok(value),
            (None, Some(error)) => Err(error),
            _ => return Err("an invoke response holds exactly one of `ok` and `error`"),
        };
        Ok(InvokeResponse {
            result,
            path: wire.path,
        })
    }
}

/// An error as it travels: `{kind, message, value?}` with the kinds of
/// `spec/abilities.md` plus `unbound` and `unreachable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    pub kind: spore_core::ErrorKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub value: Option<Vec<u8>>,
}

impl WireError {
    pub fn new(kind: spore_core::ErrorKind, message: impl Into<String>) -> Self {
        WireError {
            kind,
            message: message.into(),
            value: None,
        }
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// One step of an invocation's path (`--explain`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStep {
    /// The peer id of the node that took the step.
    pub node: String,
    /// What it did, e.g. `run`, `fetch <hash> from <peer>`, `compile <hash>`.
    pub step: String,
    pub micros: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip<T: Serialize + DeserializeOwned>(value: &T) -> T {
        let mut bytes = Vec::new();
        ciborium::into_writer(value, &mut bytes).unwrap();
        ciborium::from_reader(bytes.as_slice()).unwrap()
    }

    fn as_cbor_value<T: Serialize>(value: &T) -> ciborium::Value {
        let mut bytes = Vec::new();
        ciborium::into_writer(value, &mut bytes).unwrap();
        ciborium::from_reader(bytes.as_slice()).unwrap()
    }

    fn key<'a>(map: &'a ciborium::Value, key: &str) -> Option<&'a ciborium::Value> {
        map.as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_text() == Some(key))
            .map(|(_, v)| v)
    }

    #[test]
    fn invoke_response_is_ok_or_error_plus_path_on_the_wire() {
        let ok = InvokeResponse {
            result: Ok(vec![0x82, 1, 2]),
            path: vec![PathStep {
                node: "n".into(),
                step: "run".into(),
                micros: 7,
            }],
        };
        let value = as_cbor_value(&ok);
        assert_eq!(
            key(&value, "ok").unwrap().as_bytes().unwrap(),
            &[0x82, 1, 2]
        );
        assert!(key(&value, "error").is_none());
        assert_eq!(key(&value, "path").unwrap().as_array().unwrap().len(), 1);
        assert_eq!(roundtrip(&ok), ok);

        let err = InvokeResponse::error(spore_core::ErrorKind::Unbound, "no node serves `kv`");
        let value = as_cbor_value(&err);
        assert!(key(&value, "ok").is_none());
        let error = key(&value, "error").unwrap();
        assert_eq!(key(error, "kind").unwrap().as_text(), Some("unbound"));
        assert!(key(error, "value").is_none());
        assert_eq!(roundtrip(&err), err);
    }

    #[test]
    fn invoke_response_with_neither_ok_nor_error_is_refused() {
        let mut bytes = Vec::new();
        let path: Vec<PathStep> = Vec::new();
        ciborium::into_writer(
            &ciborium::Value::Map(vec![(
                "path".into(),
                ciborium::Value::serialized(&path).unwrap(),
            )]),
            &mut bytes,
        )
        .unwrap();
        assert!(ciborium::from_reader::<InvokeResponse, _>(bytes.as_slice()).is_err());
    }

    #[test]
    fn invoke_request_args_are_cbor_bytes() {
        let request = InvokeRequest {
            function: format!("{}:main", spore_core::Hash::of(b"m")),
            args: vec![0x80],
            trace: "t1".into(),
            deadline_ms: 1000,
            hops: 0,
        };
        let value = as_cbor_value(&request);
        assert!(key(&value, "args").unwrap().is_bytes());
        assert_eq!(roundtrip(&request), request);
    }

    #[test]
    fn fetch_request_hash_is_32_bytes() {
        let request = FetchRequest {
            hash: spore_core::Hash::of(b"m"),
            start: 0,
            len: 1 << 20,
        };
        let value = as_cbor_value(&request);
        assert_eq!(key(&value, "hash").unwrap().as_bytes().unwrap().len(), 32);
    }

    #[tokio::test]
    async fn slice_frames_are_the_cbor_map_and_any_encoding_of_it_is_read() {
        for len in [0, 1, 23, 24, 255, 256, 65_535, 65_536, 1 << 20] {
            let slice: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut by_hand = Vec::new();
            write_slice_frame(&mut by_hand, &slice).await.unwrap();
            let mut by_encoder = Vec::new();
            let message = FetchSlice {
                slice: slice.clone(),
            };
            write_frame(&mut by_encoder, &message, FETCH_FRAME_LIMIT)
                .await
                .unwrap();
            assert!(by_hand == by_encoder, "len {len}: encodings differ");
            let frame = read_slice_frame(&mut by_hand.as_slice()).await.unwrap();
            assert!(frame.slice() == slice, "len {len}");
        }

        // Not canonical (a second key), still a valid `{slice}` map.
        let value = ciborium::Value::Map(vec![
            ("slice".into(), ciborium::Value::Bytes(vec![1, 2, 3])),
            ("extra".into(), ciborium::Value::Bool(true)),
        ]);
        let mut frame = Vec::new();
        write_frame(&mut frame, &value, FETCH_FRAME_LIMIT)
            .await
            .unwrap();
        let frame = read_slice_frame(&mut frame.as_slice()).await.unwrap();
        assert_eq!(frame.slice(), &[1, 2, 3]);

        // A length that disagrees with the frame is not taken at its word.
        let mut lying = Vec::new();
        write_slice_frame(&mut lying, &[9; 40]).await.unwrap();
        lying.truncate(lying.len() - 1);
        let len = (lying.len() - 4) as u32;
        lying[..4].copy_from_slice(&len.to_be_bytes());
        assert!(read_slice_frame(&mut lying.as_slice()).await.is_err());
    }

    #[tokio::test]
    async fn frames_roundtrip_and_oversize_frames_are_refused_before_reading_them() {
        let slice = FetchSlice {
            slice: vec![7u8; 100_000],
        };
        let mut buf = Vec::new();
        write_frame(&mut buf, &slice, FETCH_FRAME_LIMIT)
            .await
            .unwrap();
        assert_eq!(
            u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize,
            buf.len() - 4
        );
        let back: FetchSlice = read_frame(&mut buf.as_slice(), FETCH_FRAME_LIMIT)
            .await
            .unwrap();
        assert_eq!(back.slice, slice.slice);

        let mut huge = (u32::MAX).to_be_bytes().to_vec();
        huge.extend_from_slice(&[0; 16]);
        let err = read_frame::<FetchSlice>(&mut huge.as_slice(), FETCH_FRAME_LIMIT)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");

        let err = write_frame(&mut Vec::new(), &slice, 1000)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
    }

    /// `spec/vectors/wire.json`: the frames the specification shows are the frames this
    /// code writes, and it reads them back to the same messages.
    mod vectors {
        use super::*;

        fn unhex(text: &serde_json::Value) -> Vec<u8> {
            let text = text.as_str().expect("a hex string");
            (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
                .collect()
        }

        fn text(value: &serde_json::Value) -> String {
            value.as_str().expect("a string").to_owned()
        }

        fn uint(value: &serde_json::Value) -> u64 {
            value.as_u64().expect("an unsigned integer")
        }

        async fn agrees<T>(message: &T, frame: &serde_json::Value)
        where
            T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
        {
            let frame = unhex(frame);
            let mut written = Vec::new();
            write_frame(&mut written, message, INVOKE_FRAME_LIMIT)
                .await
                .unwrap();
            assert_eq!(written, frame, "written frame of {message:?}");
            let read: T = read_frame(&mut frame.as_slice(), INVOKE_FRAME_LIMIT)
                .await
                .unwrap();
            assert_eq!(&read, message);
        }

        #[tokio::test]
        async fn frames_are_those_of_the_spec() {
            let doc: serde_json::Value =
                serde_json::from_str(include_str!("../../../spec/vectors/wire.json")).unwrap();

            let v = &doc["invoke_call"];
            let call = Numbered {
                id: uint(&v["id"]),
                message: InvokeRequest {
                    function: text(&v["function"]),
                    args: unhex(&v["args"]),
                    trace: text(&v["trace"]),
                    deadline_ms: uint(&v["deadline_ms"]),
                    hops: uint(&v["hops"]) as u32,
                },
            };
            agrees(&call, &v["frame"]).await;

            let v = &doc["invoke_answer_ok"];
            let step = &v["path"][0];
            let ok = Numbered {
                id: uint(&v["id"]),
                message: InvokeResponse {
                    result: Ok(unhex(&v["ok"])),
                    path: vec![PathStep {
                        node: text(&step["node"]),
                        step: text(&step["step"]),
                        micros: uint(&step["micros"]),
                    }],
                },
            };
            agrees(&ok, &v["frame"]).await;

            let v = &doc["invoke_answer_error"];
            let error = Numbered {
                id: uint(&v["id"]),
                message: InvokeResponse {
                    result: Err(WireError {
                        kind: spore_core::ErrorKind::from_name(&text(&v["kind"])),
                        message: text(&v["message"]),
                        value: Some(unhex(&v["value"])),
                    }),
                    path: Vec::new(),
                },
            };
            agrees(&error, &v["frame"]).await;

            let v = &doc["fetch_request"];
            let request = FetchRequest {
                hash: text(&v["hash"]).parse().unwrap(),
                start: uint(&v["start"]),
                len: uint(&v["len"]),
            };
            let frame = unhex(&v["frame"]);
            let mut written = Vec::new();
            write_frame(&mut written, &request, FETCH_FRAME_LIMIT)
                .await
                .unwrap();
            assert_eq!(written, frame);
            let read: FetchRequest = read_frame(&mut frame.as_slice(), FETCH_FRAME_LIMIT)
                .await
                .unwrap();
            assert_eq!(
                (read.hash, read.start, read.len),
                (request.hash, request.start, request.len)
            );

            let v = &doc["fetch_header"];
            let header = FetchHeader {
                size: Some(uint(&v["size"])),
                error: None,
            };
            let mut written = Vec::new();
            write_frame(&mut written, &header, FETCH_FRAME_LIMIT)
                .await
                .unwrap();
            assert_eq!(written, unhex(&v["frame"]));
        }
    }
}
