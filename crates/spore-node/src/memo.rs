//! Memoization of pure functions: the key of a call and the stored form of its outcome.

use ciborium::Value;
use spore_core::{CallRequest, FunctionRef, Hash, value};

/// The memo key of `request` calling `function`: the function reference, every limit that
/// can change what a call returns (the memory cap: a function may behave differently
/// when it is refused memory), and the arguments as they were encoded (canonically, when
/// spore encoded them), hashed. Equal calls give equal keys; the deadline is not part of
/// it, since a call that runs out of time returns nothing to remember.
pub(crate) fn key(function: &FunctionRef, request: &CallRequest) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(function.to_string().as_bytes());
    hasher.update(&[0]);
    hasher.update(&request.memory_bytes.to_le_bytes());
    hasher.update(request.args.as_bytes());
    Hash::from_bytes(*hasher.finalize().as_bytes())
}

/// A stored outcome: a status byte (0 returned, 1 returned an error) and canonical CBOR.
pub(crate) fn encode(outcome: &Result<&Value, &Value>) -> Option<Vec<u8>> {
    let (status, value) = match outcome {
        Ok(value) => (0u8, *value),
        Err(error) => (1u8, *error),
    };
    let mut entry = vec![status];
    entry.extend(value::encode_canonical(value).ok()?);
    Some(entry)
}

/// The inverse of [`encode`]; `None` for an entry this code did not write.
pub(crate) fn decode(entry: &[u8]) -> Option<Result<Value, Value>> {
    let (status, bytes) = entry.split_first()?;
    let value = value::decode(bytes).ok()?;
    match status {
        0 => Some(Ok(value)),
        1 => Some(Err(value)),
        _ => None,
    }
}
