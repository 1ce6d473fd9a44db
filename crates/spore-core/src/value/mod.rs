//! The value codec (`spec/values.md`): spore's data model, canonical CBOR, and the JSON
//! mapping people use.
//!
//! - [`check`] walks the bytes of one data item without allocating: well-formed CBOR,
//!   inside spore's data model, nested at most [`MAX_DEPTH`] deep, nothing after it.
//! - [`decode`] and [`decode_as`] build the value in the same walk, so their errors are
//!   [`check`]'s precise ones.
//! - [`encode_canonical`] writes the one canonical encoding of a value; [`write_head`]
//!   is its head encoder, for writers that frame bytes themselves.
//! - [`from_json`] and [`to_json`] are the mapping to and from JSON.

mod build;
mod canonical;
mod float;
mod head;
mod json;
mod walk;

use ciborium::Value;

pub use head::{Major, write_head};
pub use json::{from_json, to_json};
pub use walk::MAX_DEPTH;

/// Why bytes are not one spore value, or a value cannot be written or read as asked.
/// Offsets count bytes from the start of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    #[error("the CBOR ends inside the item at byte {offset}")]
    Truncated { offset: usize },
    #[error("malformed CBOR at byte {offset}: {problem}")]
    Malformed {
        offset: usize,
        problem: &'static str,
    },
    #[error(
        "CBOR simple value {value} at byte {offset} is not a spore value \
         (of the simple values, only false, true, null and undefined are)"
    )]
    SimpleValue { offset: usize, value: u8 },
    #[error("the CBOR nests arrays, maps and tags more than {limit} deep at byte {offset}")]
    TooDeep { offset: usize, limit: usize },
    #[error("{count} unexpected bytes after the CBOR item, from byte {offset}")]
    TrailingBytes { offset: usize, count: usize },
    #[error("a CBOR map has the key {key} twice")]
    DuplicateKey { key: String },
    #[error("the number {number} is beyond the range of a double")]
    OutOfRange { number: String },
    #[error("the value cannot be written as CBOR: {0}")]
    Unserializable(String),
    #[error("the CBOR value does not have the expected shape: {0}")]
    Shape(String),
}

/// Checks that `bytes` are exactly one spore value, without building it.
pub fn check(bytes: &[u8]) -> Result<(), ValueError> {
    walk::walk(bytes, |_| Ok(()))
}

/// Decodes exactly one spore value; anything [`check`] refuses is refused alike.
pub fn decode(bytes: &[u8]) -> Result<Value, ValueError> {
    // One walk both checks and builds: it stops at the first problem, which is the one
    // `check` reports, and what was built so far is dropped. A duplicate key is reported
    // only for bytes that pass `check` (spec/values.md).
    let mut builder = build::Builder::default();
    walk::walk(bytes, |event| builder.event(event))?;
    Ok(builder
        .finish()?
        .expect("a walk that succeeds completes one item"))
}

/// Decodes one spore value into a typed value, with the same strictness as [`decode`].
pub fn decode_as<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ValueError> {
    decode(bytes)?
        .deserialized()
        .map_err(|ciborium::value::Error::Custom(reason)| ValueError::Shape(reason))
}

/// Encodes `value` canonically: equal values give equal bytes.
pub fn encode_canonical(value: &Value) -> Result<Vec<u8>, ValueError> {
    let mut out = Vec::new();
    canonical::write(value, 0, &mut out)?;
    Ok(out)
}

/// Encodes any serializable type canonically (through [`Value`], so map order is fixed).
pub fn to_canonical<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ValueError> {
    let value = Value::serialized(value).map_err(|e| ValueError::Unserializable(e.to_string()))?;
    encode_canonical(&value)
}
