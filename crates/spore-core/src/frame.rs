//! Length-prefixed CBOR frames, the pure part: a frame is a 4-byte big-endian length,
//! then that many bytes of one CBOR item (`spec/wire.md`, and `spec/abilities.md` for
//! provider processes).
//!
//! Reading and writing stay with the callers (blocking pipes, async streams); this
//! module builds a frame, and checks a length prefix against the protocol's limit
//! before any of the body is read, so that a peer cannot make a reader allocate more
//! than the limit.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The length prefix's size in bytes.
pub const PREFIX_BYTES: usize = 4;

/// Why a frame could not be built or taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The body is longer than the protocol allows (or than a 4-byte prefix can say).
    #[error("a frame of {len} bytes is larger than the limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
    /// The message could not be encoded as CBOR.
    #[error("cannot encode the message as CBOR: {0}")]
    Encode(String),
    /// The body is not exactly one CBOR item of the expected shape.
    #[error("the frame is not one CBOR item of the expected shape: {0}")]
    Decode(String),
}

/// The prefix of a frame whose body is `len` bytes long.
pub fn prefix(len: usize, limit: usize) -> Result<[u8; PREFIX_BYTES], FrameError> {
    let too_large = FrameError::TooLarge { len, limit };
    if len > limit {
        return Err(too_large);
    }
    let len = u32::try_from(len).map_err(|_| too_large)?;
    Ok(len.to_be_bytes())
}

/// The body length a received prefix announces, if it is within `limit`.
pub fn body_len(prefix: [u8; PREFIX_BYTES], limit: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(prefix);
    // On targets where usize is narrower than 32 bits, any length past usize is too large.
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    Ok(len)
}

/// `message` encoded as one frame, prefix included, ready for one write.
pub fn encode<T: Serialize + ?Sized>(message: &T, limit: usize) -> Result<Vec<u8>, FrameError> {
    // The body is encoded behind room for the prefix, so the frame is one buffer.
    let mut frame = vec![0u8; PREFIX_BYTES];
    ciborium::into_writer(message, &mut frame)
        .map_err(|error| FrameError::Encode(error.to_string()))?;
    let prefix = prefix(frame.len() - PREFIX_BYTES, limit)?;
    frame[..PREFIX_BYTES].copy_from_slice(&prefix);
    Ok(frame)
}

/// A frame's body read as one CBOR item; bytes after the item are refused.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let mut rest = body;
    let message =
        ciborium::from_reader(&mut rest).map_err(|error| FrameError::Decode(error.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Decode(match rest.len() {
            1 => "1 byte follows the item".to_owned(),
            n => format!("{n} bytes follow the item"),
        }));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciborium::Value;

    fn id_map(id: u64) -> Value {
        Value::Map(vec![(Value::Text("id".into()), Value::Integer(id.into()))])
    }

    #[test]
    fn a_frame_is_the_big_endian_length_then_the_cbor() {
        // {"id": 1}, the example in spec/abilities.md: a1 (a map of 1), 62 "id" (text
        // of 2), 01.
        let frame = encode(&id_map(1), 16).unwrap();
        assert_eq!(frame, [0, 0, 0, 5, 0xa1, 0x62, b'i', b'd', 0x01]);
        // 300 is 0x19 0x01 0x2c: a body of 7 bytes.
        let frame = encode(&id_map(300), 16).unwrap();
        assert_eq!(&frame[..4], [0, 0, 0, 7]);
        let body: Value = decode(&frame[4..]).unwrap();
        assert_eq!(body, id_map(300));
    }

    #[test]
    fn the_limit_counts_the_body_only() {
        assert!(encode(&id_map(1), 5).is_ok());
        assert_eq!(
            encode(&id_map(1), 4),
            Err(FrameError::TooLarge { len: 5, limit: 4 })
        );
    }

    #[test]
    fn a_prefix_is_checked_against_the_limit_before_any_body() {
        assert_eq!(body_len([0, 0, 1, 0], 256), Ok(256));
        assert_eq!(
            body_len([0, 0, 1, 1], 256),
            Err(FrameError::TooLarge {
                len: 257,
                limit: 256
            })
        );
        assert_eq!(
            body_len([0xff; 4], 16 << 20),
            Err(FrameError::TooLarge {
                len: u32::MAX as usize,
                limit: 16 << 20
            })
        );
        let error = body_len([0xff; 4], 1024).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a frame of 4294967295 bytes is larger than the limit of 1024 bytes"
        );
    }

    #[test]
    fn a_length_a_prefix_cannot_say_is_too_large_whatever_the_limit() {
        assert_eq!(prefix(u32::MAX as usize, usize::MAX), Ok([0xff; 4]));
        #[cfg(target_pointer_width = "64")]
        assert_eq!(
            prefix(1 << 32, usize::MAX),
            Err(FrameError::TooLarge {
                len: 1 << 32,
                limit: usize::MAX
            })
        );
    }

    #[test]
    fn a_body_is_exactly_one_item() {
        assert!(matches!(
            decode::<Value>(&[0xa1, 0x62, b'i', b'd', 0x01, 0x00]),
            Err(FrameError::Decode(reason)) if reason == "1 byte follows the item"
        ));
        assert!(matches!(
            decode::<Value>(&[0xa1, 0x62, b'i']),
            Err(FrameError::Decode(_))
        ));
        assert!(matches!(decode::<Value>(&[]), Err(FrameError::Decode(_))));
    }
}
