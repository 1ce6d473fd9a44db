//! Calling ability operations (spec/abi.md, "Ability imports"; spec/abilities.md).
//!
//! An ability operation is an imported function `(i32, i32) -> i64` whose import module
//! is the ability's name and whose field is the operation's name: it takes one CBOR
//! request and answers with a status byte and one CBOR item. This module holds that
//! ability-agnostic protocol and the [`AbilityError`] every operation can fail with.
//!
//! Most code never uses it directly:
//!
//! - the built-in abilities have typed clients: [`log`](crate::log),
//!   [`clock`](crate::clock), [`random`](crate::random), [`kv`](crate::kv),
//!   [`http`](crate::http), [`config`](crate::config) and [`call`](mod@crate::call);
//! - a custom ability is declared with [`ability!`](crate::ability!), which generates
//!   one function per operation with the right imports.
//!
//! A module imports only the operations its code actually calls, and the node must
//! bind every ability it imports before it runs any of its functions.
//!
//! The lower-level [`call`] takes the import itself:
//!
//! ```ignore
//! #[link(wasm_import_module = "kv")]
//! unsafe extern "C" {
//!     #[link_name = "get"]
//!     fn kv_get(ptr: i32, len: i32) -> i64;
//! }
//!
//! let request = std::collections::BTreeMap::from([("key", "greeting")]);
//! let value: Option<String> = unsafe { spore_guest::ability::call(kv_get, &request) }?;
//! ```

mod error;

use ciborium::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::{AbilityError, kind};

/// The type of every ability operation import.
pub type RawOperation = unsafe extern "C" fn(ptr: i32, len: i32) -> i64;

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
    let encoded = encode_request(request)?;
    // SAFETY: guaranteed by the caller.
    let response = unsafe { raw_call(operation, &encoded) };
    parse_response(response)
}

/// Encodes a request as one CBOR item. Only a failing custom `Serialize` impl (or a map
/// with non-serializable keys) fails, and that is the caller's bad request.
pub(crate) fn encode_request<Request: Serialize + ?Sized>(
    request: &Request,
) -> Result<Vec<u8>, AbilityError> {
    let mut encoded = Vec::new();
    ciborium::into_writer(request, &mut encoded).map_err(|error| {
        AbilityError::new(
            kind::BAD_REQUEST,
            format!("cannot encode the request as CBOR: {error:?}"),
        )
    })?;
    Ok(encoded)
}

/// Interprets a response buffer: status byte then exactly one CBOR item.
///
/// A failure becomes the host's [`AbilityError`]; a response that breaks the protocol,
/// or whose result does not deserialize into `Response`, an error of kind
/// [`kind::BAD_RESPONSE`].
pub fn parse_response<Response: DeserializeOwned>(
    response: &[u8],
) -> Result<Response, AbilityError> {
    let Some((&status, mut body)) = response.split_first() else {
        return Err(AbilityError::bad_response("the response is empty"));
    };
    let item: Value = ciborium::from_reader(&mut body).map_err(|error| {
        AbilityError::bad_response(format!("the response is not one CBOR item: {error:?}"))
    })?;
    if !body.is_empty() {
        return Err(AbilityError::bad_response(
            "the response has bytes after its CBOR item",
        ));
    }
    match status {
        0x00 => crate::floats::deserialized(&item)
            .map_err(|reason| AbilityError::bad_response(format!("unexpected result: {reason}"))),
        0x01 => Err(AbilityError::from_value(item)),
        other => Err(AbilityError::bad_response(format!(
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
    fn failure_carries_kind_message_and_value() {
        let error = AbilityError::new(kind::GUEST_ERROR, "`div` returned an error")
            .with_value(Value::from("division by zero"));
        let result: Result<u32, _> = parse_response(&response(1, &error.to_value()));
        assert_eq!(result, Err(error));
    }

    #[test]
    fn a_result_of_the_wrong_type_is_a_bad_response() {
        let result: Result<u32, _> = parse_response(&response(0, &Value::from("seven")));
        let error = result.unwrap_err();
        assert_eq!(error.kind(), kind::BAD_RESPONSE);
        assert!(error.message().starts_with("unexpected result"), "{error}");
    }

    #[test]
    fn protocol_violations() {
        for bad in [
            vec![],
            vec![0x02, 0xf6],
            vec![0x00, 0xf6, 0xf6],
            vec![0x00, 0x82],
        ] {
            let result: Result<Value, _> = parse_response(&bad);
            assert_eq!(result.unwrap_err().kind(), kind::BAD_RESPONSE, "{bad:?}");
        }
    }
}
