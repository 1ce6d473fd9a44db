//! The provider process protocol's messages (`spec/abilities.md`): the hello a process
//! starts with, the requests the node writes and the answers it reads back, each one
//! `spore_core::frame` frame.
//!
//! This module knows nothing of processes, threads or callers: it builds request bytes,
//! reads one frame from any reader, and judges what a frame says.

use std::io::{self, Read};

use ciborium::Value;
use spore_core::frame::{self, FrameError};
use spore_core::text::{MAX_MESSAGE_BYTES, printable};
use spore_runtime::{AbilityError, ErrorKind, field};

use super::ProcessSettings;

/// The protocol version this node speaks.
pub const PROTOCOL: u64 = 1;
/// The largest frame either side may send, in bytes, not counting the length prefix.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// An answer for the caller: the provider's `ok` value or its error.
pub(super) type Reply = Result<Value, AbilityError>;

/// Why a frame could not be read from a process's output.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    #[error("reading its output failed: {0}")]
    Io(#[from] io::Error),
    #[error("its output ended in the middle of a frame")]
    Truncated,
    #[error("it sent a bad frame: {0}")]
    Frame(#[from] FrameError),
}

/// Reads one frame; `None` at a clean end of the stream between frames.
pub(super) fn read_frame(reader: &mut impl Read) -> Result<Option<Value>, ReadError> {
    let mut prefix = [0u8; frame::PREFIX_BYTES];
    let mut filled = 0;
    while filled < prefix.len() {
        match reader.read(&mut prefix[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(ReadError::Truncated),
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error.into()),
        }
    }
    let length = frame::body_len(prefix, MAX_FRAME_BYTES)?;
    // Read through `take` rather than allocating the announced length up front.
    let mut body = Vec::new();
    reader.take(length as u64).read_to_end(&mut body)?;
    if body.len() != length {
        return Err(ReadError::Truncated);
    }
    Ok(Some(frame::decode(&body)?))
}

/// The frame of request `id`: `{id, operation, request, deadline_ms}`.
pub(super) fn request_frame(
    id: u64,
    operation: &str,
    request: Value,
    deadline_ms: u64,
) -> Result<Vec<u8>, AbilityError> {
    let message = Value::Map(vec![
        (Value::Text("id".into()), Value::Integer(id.into())),
        (
            Value::Text("operation".into()),
            Value::Text(operation.into()),
        ),
        (Value::Text("request".into()), request),
        (
            Value::Text("deadline_ms".into()),
            Value::Integer(deadline_ms.into()),
        ),
    ]);
    frame::encode(&message, MAX_FRAME_BYTES).map_err(|error| match error {
        FrameError::TooLarge { len, limit } => AbilityError::new(
            ErrorKind::TooLarge,
            format!(
                "the request is {len} bytes encoded; provider frames are at most {limit} bytes"
            ),
        ),
        other => AbilityError::new(
            ErrorKind::Internal,
            format!("cannot encode the request: {other}"),
        ),
    })
}

/// What the first frame of a process says.
pub(super) enum Hello {
    Accepted,
    /// The process closed its stdout before any frame.
    Exited,
    /// It is no hello, or a malformed one.
    Protocol(String),
    /// A well-formed hello for something other than what is configured.
    Mismatch(String),
}

/// Judges a process's first frame against what the configuration declares.
pub(super) fn check_hello(settings: &ProcessSettings, frame: &Value) -> Hello {
    let Some(hello) = field(frame, "hello") else {
        return Hello::Protocol(
            "its first frame is not a hello ({hello: {protocol, ability, operations}})".to_owned(),
        );
    };
    match field(hello, "protocol")
        .and_then(Value::as_integer)
        .map(i128::from)
    {
        Some(protocol) if protocol == i128::from(PROTOCOL) => {}
        Some(protocol) => {
            return Hello::Mismatch(format!(
                "it speaks protocol {protocol}; this node speaks protocol {PROTOCOL}"
            ));
        }
        None => return Hello::Protocol("its hello has no integer `protocol`".to_owned()),
    }
    match field(hello, "ability").and_then(Value::as_text) {
        Some(ability) if ability == settings.ability => {}
        Some(ability) => {
            return Hello::Mismatch(format!(
                "it says it provides ability `{}`",
                printable(ability, MAX_MESSAGE_BYTES)
            ));
        }
        None => return Hello::Protocol("its hello has no text `ability`".to_owned()),
    }
    let Some(offered) = field(hello, "operations")
        .and_then(Value::as_array)
        .and_then(|operations| {
            operations
                .iter()
                .map(Value::as_text)
                .collect::<Option<Vec<_>>>()
        })
    else {
        return Hello::Protocol("its hello has no `operations` array of text".to_owned());
    };
    let missing: Vec<&str> = settings
        .operations
        .iter()
        .map(String::as_str)
        .filter(|operation| !offered.contains(operation))
        .collect();
    if !missing.is_empty() {
        return Hello::Mismatch(format!(
            "it does not serve {} (it serves {})",
            quoted_list(&missing),
            printable(&quoted_list(&offered), MAX_MESSAGE_BYTES)
        ));
    }
    Hello::Accepted
}

fn quoted_list(items: &[&str]) -> String {
    if items.is_empty() {
        return "nothing".to_owned();
    }
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One answer: the request id it answers and what the caller gets.
pub(super) struct Answer {
    pub id: u64,
    pub reply: Reply,
}

/// Reads an answer, `{id, ok}` or `{id, error: {kind, message}}`. An answer without a
/// usable id cannot be routed, which breaks the protocol: that is the `Err`.
pub(super) fn answer(frame: Value, ability: &str) -> Result<Answer, String> {
    let Value::Map(entries) = frame else {
        return Err("it sent a frame that is not a map".to_owned());
    };
    let (mut id, mut ok, mut error) = (None, None, None);
    for (key, value) in entries {
        match key.as_text() {
            Some("id") => id = Some(value),
            Some("ok") => ok = Some(value),
            Some("error") => error = Some(value),
            _ => {}
        }
    }
    let id = id
        .as_ref()
        .and_then(Value::as_integer)
        .and_then(|id| u64::try_from(id).ok())
        .ok_or_else(|| "it sent an answer without an unsigned `id`".to_owned())?;
    let reply = match (ok, error) {
        (Some(ok), None) => Ok(ok),
        (None, Some(error)) => Err(provider_error(&error)),
        _ => Err(AbilityError::new(
            ErrorKind::Failed,
            format!(
                "the provider process for `{ability}` answered with neither `ok` nor `error`, or both"
            ),
        )),
    };
    Ok(Answer { id, reply })
}

/// Turns a provider's `{kind, message}` into an ability error; kinds this node does
/// not know become `failed`, keeping the message. The message is the provider's own
/// text, so it is escaped and cut before anyone prints it.
fn provider_error(error: &Value) -> AbilityError {
    let kind = field(error, "kind").and_then(Value::as_text);
    let message = field(error, "message")
        .and_then(Value::as_text)
        .unwrap_or_default();
    AbilityError::new(
        kind.map_or(ErrorKind::Failed, ErrorKind::from_name),
        printable(message, MAX_MESSAGE_BYTES),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &str) -> Value {
        Value::Text(value.into())
    }

    #[test]
    fn a_request_is_one_frame_of_the_spec_shape() {
        let frame = request_frame(7, "read", text("attic"), 1500).unwrap();
        let body: Value = frame::decode(&frame[4..]).unwrap();
        assert_eq!(
            body,
            Value::Map(vec![
                (text("id"), Value::Integer(7.into())),
                (text("operation"), text("read")),
                (text("request"), text("attic")),
                (text("deadline_ms"), Value::Integer(1500.into())),
            ])
        );
        assert_eq!(&frame[..4], (frame.len() as u32 - 4).to_be_bytes());
    }

    #[test]
    fn a_request_over_the_frame_limit_is_too_large() {
        let error =
            request_frame(1, "echo", Value::Bytes(vec![0; MAX_FRAME_BYTES]), 1).unwrap_err();
        assert_eq!(error.kind, ErrorKind::TooLarge, "{error}");
    }

    #[test]
    fn frames_are_read_whole_or_refused() {
        let frame = request_frame(1, "read", Value::Null, 1).unwrap();
        let mut stream = [frame.as_slice(), frame.as_slice()].concat();
        let mut reader = stream.as_slice();
        assert!(read_frame(&mut reader).unwrap().is_some());
        assert!(read_frame(&mut reader).unwrap().is_some());
        assert!(read_frame(&mut reader).unwrap().is_none());

        stream.truncate(frame.len() + 6);
        let mut reader = &stream[frame.len()..];
        assert!(matches!(read_frame(&mut reader), Err(ReadError::Truncated)));
        let mut reader: &[u8] = &[0, 0];
        assert!(matches!(read_frame(&mut reader), Err(ReadError::Truncated)));

        // A length over the limit is refused before anything is allocated for it.
        let mut reader: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        assert!(matches!(
            read_frame(&mut reader),
            Err(ReadError::Frame(FrameError::TooLarge { .. }))
        ));
    }

    #[test]
    fn an_answer_names_its_call() {
        let ok = Value::Map(vec![
            (text("id"), Value::Integer(3.into())),
            (text("ok"), text("x")),
        ]);
        let answer = answer(ok, "sensor").unwrap();
        assert_eq!((answer.id, answer.reply), (3, Ok(text("x"))));

        let anonymous = Value::Map(vec![(text("ok"), text("x"))]);
        assert!(super::answer(anonymous, "sensor").is_err());
        assert!(super::answer(text("x"), "sensor").is_err());
    }
}
