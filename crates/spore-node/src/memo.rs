//! Memoization of pure functions: the key of a call and the stored form of its outcome.

use ciborium::Value;
use spore_core::{CallRequest, FunctionRef, Hash, value};

/// The memo key of `request` (its export resolved): the module hash and export name,
/// every limit that can change what a call returns (the memory cap), and the arguments as
/// they were encoded (canonically, when spore encoded them), hashed. Equal calls give
/// equal keys; the deadline is not part of it, since a call that runs out of time
/// returns nothing to remember. (Memoized results are derivable: a change to this key
/// only makes old entries unreachable.)
pub(crate) fn key(request: &CallRequest) -> Hash {
    key_for(&request.function, request)
}

/// [`key`] of `request` calling `function` (the request's function, its export resolved).
pub(crate) fn key_for(function: &FunctionRef, request: &CallRequest) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(function.module.as_bytes());
    hasher.update(
        function
            .export
            .as_ref()
            .map_or("", |e| e.as_str())
            .as_bytes(),
    );
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
