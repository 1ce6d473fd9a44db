//! Calling ability operations (spec/abi.md, "Ability imports").
//!
//! An ability operation is an imported function `(i32, i32) -> i64` whose import module
//! is the ability's name and whose field is the operation's name. Typed clients for each
//! ability (issue 3) belong in submodules here, built on [`call`]; this module holds
//! only the ability-agnostic request/response protocol.
//!
//! ```ignore
//! #[link(wasm_import_module = "kv")]
//! unsafe extern "C" {
//!     #[link_name = "get"]
//!     fn kv_get(ptr: i32, len: i32) -> i64;
//! }
//!
//! let value: Option<Vec<u8>> = unsafe { spore_guest::ability::call(kv_get, &("key",)) }?;
//! ```

use std::fmt;

use ciborium::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The type of every ability operation import.
pub type RawOperation = unsafe extern "C" fn(ptr: i32, len: i32) -> i64;

/// Why an ability operation did not produce a result.
#[derive(Debug, Clone, PartialEq)]
pub enum AbilityError {
    /// The operation failed; the value is the error the host reported (a map with at
    /// least a text `message`).
    Failed(Value),
    /// The response broke the protocol, or did not have the expected shape.
    Protocol(String),
}

impl AbilityError {
    /// The `message` of a failure, or the description of a protocol problem.
    pub fn message(&self) -> &str {
        match self {
            AbilityError::Failed(Value::Map(entries)) => entries
                .iter()
                .find_map(|(key, value)| match (key, value) {
                    (Value::Text(key), Value::Text(message)) if key == "message" => {
                        Some(message.as_str())
                    }
                    _ => None,
                })
                .unwrap_or("the operation failed without a message"),
            AbilityError::Failed(_) => "the operation failed without a message",
            AbilityError::Protocol(reason) => reason,
        }
    }
}

impl fmt::Display for AbilityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for AbilityError {}

/// Sends an already encoded request to `operation` and returns the raw response buffer
/// (status byte then one CBOR item).
///
/// # Safety
///
/// `operation` must be an ability operation import that follows the ABI: it reads the
/// request and returns a packed buffer it placed in this module's memory via
/// `spore_alloc`.
pub unsafe fn raw_call(operation: RawOperation, request: &[u8]) -> &'static [u8] {
    // SAFETY: guaranteed by the caller.
    let packed =
        unsafe { operation(request.as_ptr() as usize as i32, request.len() as i32) } as u64;
    let (ptr, len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
    if len == 0 {
        return &[];
    }
    // SAFETY: the host wrote `len` bytes at `ptr` through `spore_alloc`, which leaks, so
    // the buffer lives as long as the instance.
    unsafe { std::slice::from_raw_parts(ptr as *const u8, len) }
}

/// Calls `operation` with `request` and decodes its result.
///
/// # Safety
///
/// As for [`raw_call`].
pub unsafe fn call<Request, Response>(
    operation: RawOperation,
    request: &Request,
) -> Result<Response, AbilityError>
where
    Request: Serialize + ?Sized,
    Response: DeserializeOwned,
{
    let mut encoded = Vec::new();
    ciborium::into_writer(request, &mut encoded)
        .map_err(|error| AbilityError::Protocol(format!("cannot encode the request: {error:?}")))?;
    // SAFETY: guaranteed by the caller.
    let response = unsafe { raw_call(operation, &encoded) };
    parse_response(response)
}

/// Interprets a response buffer: status byte then exactly one CBOR item.
pub fn parse_response<Response: DeserializeOwned>(
    response: &[u8],
) -> Result<Response, AbilityError> {
    let Some((&status, mut body)) = response.split_first() else {
        return Err(AbilityError::Protocol("the response is empty".to_owned()));
    };
    let item: Value = ciborium::from_reader(&mut body)
        .map_err(|error| AbilityError::Protocol(format!("the response is not CBOR: {error:?}")))?;
    if !body.is_empty() {
        return Err(AbilityError::Protocol(
            "the response has bytes after its CBOR item".to_owned(),
        ));
    }
    match status {
        0x00 => item.deserialized().map_err(|error| {
            let ciborium::value::Error::Custom(reason) = error;
            AbilityError::Protocol(format!("unexpected result: {reason}"))
        }),
        0x01 => Err(AbilityError::Failed(item)),
        other => Err(AbilityError::Protocol(format!(
            "unknown response status {other:#04x}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u8, value: &Value) -> Vec<u8> {
        crate::__private::encode(status, value)
    }

    #[test]
    fn success_is_decoded_into_the_result_type() {
        let result: Result<u32, _> = parse_response(&response(0, &Value::from(7)));
        assert_eq!(result, Ok(7));
    }

    #[test]
    fn failure_carries_the_message() {
        let error = Value::Map(vec![(Value::from("message"), Value::from("no such key"))]);
        let result: Result<u32, _> = parse_response(&response(1, &error));
        assert_eq!(result.unwrap_err().to_string(), "no such key");
    }

    #[test]
    fn protocol_violations() {
        for bad in [vec![], vec![0x02, 0xf6], vec![0x00, 0xf6, 0xf6]] {
            let result: Result<Value, _> = parse_response(&bad);
            assert!(matches!(result, Err(AbilityError::Protocol(_))), "{bad:?}");
        }
    }
}
