//! Runtime support for the code `#[spore_guest::function]` and `spore_guest::ability!`
//! generate. Not a public API: it changes together with the macros.

use std::mem::ManuallyDrop;
use std::sync::{Once, OnceLock};

use ciborium::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// For the bounds of generated ability functions, so that crates using `ability!` need
/// not depend on serde themselves.
pub use serde;

const STATUS_OK: u8 = 0x00;
const STATUS_ERROR: u8 = 0x01;
const STATUS_BAD_ARGUMENTS: u8 = 0x02;

/// Set by the panic hook. With `panic = "abort"` the first panic is also the last, and a
/// `OnceLock` cannot be left locked by the trap that follows it.
static PANIC_MESSAGE: OnceLock<String> = OnceLock::new();

/// Returns `len` fresh bytes for the host to write into (spec/abi.md).
///
/// Every call runs in a fresh instance, so the buffer is leaked rather than tracked.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn spore_alloc(len: i32) -> i32 {
    let mut buffer = ManuallyDrop::new(Vec::<u8>::with_capacity(len as u32 as usize));
    buffer.as_mut_ptr() as usize as i32
}

/// The message and location of the panic that trapped this instance, packed, or 0.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn spore_panic_message() -> i64 {
    PANIC_MESSAGE
        .get()
        .map_or(0, |message| pack(message.as_bytes()))
}

/// The body of every generated export: reads the argument buffer, runs `call` on it and
/// hands the reply to the host as a packed pointer.
///
/// # Safety
///
/// `ptr` and `len` must describe readable memory, as they do when the host calls the
/// export with the buffer it wrote through `spore_alloc`.
pub unsafe fn export(ptr: i32, len: i32, call: impl FnOnce(&[u8]) -> Vec<u8>) -> i64 {
    install_panic_hook();
    let input: &[u8] = if len == 0 {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(ptr as u32 as usize as *const u8, len as u32 as usize) }
    };
    // The host reads the reply after the call returns; the instance is then dropped.
    pack(call(input).leak())
}

fn pack(buffer: &[u8]) -> i64 {
    (((buffer.as_ptr() as usize as u64) << 32) | buffer.len() as u64) as i64
}

fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = info
                .payload_as_str()
                .unwrap_or("panic with a non-string payload");
            let report = match info.location() {
                Some(location) => format!("{message} (at {location})"),
                None => message.to_owned(),
            };
            let _ = PANIC_MESSAGE.set(report);
        }));
    });
}

/// An argument problem, reported to the caller with status 0x02.
#[derive(Debug)]
pub struct ArgumentError(String);

/// The decoded arguments of one call, handed out in order to the generated code.
pub struct Args {
    values: std::vec::IntoIter<Value>,
    position: usize,
    function: &'static str,
    params: &'static [&'static str],
}

impl Args {
    /// Deserializes the next argument into the type of its parameter.
    pub fn take<T: DeserializeOwned>(&mut self) -> Result<T, ArgumentError> {
        let position = self.position;
        self.position += 1;
        let param = self.params.get(position).copied().unwrap_or("?");
        let value = self.values.next().ok_or_else(|| {
            ArgumentError(format!(
                "argument {} (`{param}`) of `{}` is missing",
                position + 1,
                self.function
            ))
        })?;
        crate::floats::deserialized(&value).map_err(|reason| {
            ArgumentError(format!(
                "argument {} (`{param}`) of `{}`: {reason}",
                position + 1,
                self.function
            ))
        })
    }
}

/// Decodes `input` as the argument array of `function` and runs `body` on it, returning
/// the reply buffer: status byte then one CBOR item.
pub fn invoke(
    input: &[u8],
    function: &'static str,
    params: &'static [&'static str],
    body: impl FnOnce(&mut Args) -> Result<Vec<u8>, ArgumentError>,
) -> Vec<u8> {
    let values = match decode_arguments(input, function, params.len()) {
        Ok(values) => values,
        Err(ArgumentError(reason)) => return encode(STATUS_BAD_ARGUMENTS, &reason),
    };
    let mut args = Args {
        values: values.into_iter(),
        position: 0,
        function,
        params,
    };
    match body(&mut args) {
        Ok(reply) => reply,
        Err(ArgumentError(reason)) => encode(STATUS_BAD_ARGUMENTS, &reason),
    }
}

fn decode_arguments(
    input: &[u8],
    function: &str,
    arity: usize,
) -> Result<Vec<Value>, ArgumentError> {
    let mut rest = input;
    let values: Vec<Value> = ciborium::from_reader(&mut rest).map_err(|error| {
        ArgumentError(format!(
            "the arguments of `{function}` are not a CBOR array: {}",
            describe_decode_error(error)
        ))
    })?;
    if !rest.is_empty() {
        let plural = if rest.len() == 1 { "" } else { "s" };
        return Err(ArgumentError(format!(
            "the arguments of `{function}` are followed by {} extra byte{plural}",
            rest.len()
        )));
    }
    if values.len() != arity {
        let plural = if arity == 1 { "" } else { "s" };
        return Err(ArgumentError(format!(
            "`{function}` takes {arity} argument{plural}, got {}",
            values.len()
        )));
    }
    Ok(values)
}

// ciborium's Display is its Debug output; this wording is for people.
fn describe_decode_error<E>(error: ciborium::de::Error<E>) -> String {
    match error {
        // Reading from a slice fails only when it ends early.
        ciborium::de::Error::Io(_) => "the input ends in the middle of an item".to_owned(),
        ciborium::de::Error::Syntax(offset) => format!("malformed CBOR at byte {offset}"),
        ciborium::de::Error::Semantic(_, reason) => reason,
        ciborium::de::Error::RecursionLimitExceeded => "the input is nested too deeply".to_owned(),
    }
}

/// The reply of a function that returned `value`.
pub fn reply<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    encode(STATUS_OK, value)
}

/// The reply of a function that returned a `Result`: `Err` is the function's error value.
pub fn reply_result<T: Serialize, E: Serialize>(result: Result<T, E>) -> Vec<u8> {
    match result {
        Ok(value) => encode(STATUS_OK, &value),
        Err(error) => encode(STATUS_ERROR, &error),
    }
}

/// An ability call in a native build, where there is no host: see `crate::testing`.
#[cfg(not(target_arch = "wasm32"))]
pub fn call_native<Request, Response>(
    ability: &str,
    operation: &str,
    request: &Request,
) -> Result<Response, crate::ability::AbilityError>
where
    Request: Serialize + ?Sized,
    Response: DeserializeOwned,
{
    let request = crate::ability::encode_request(request)?;
    crate::ability::parse_response(&crate::testing::respond(ability, operation, &request))
}

pub(crate) fn encode<T: Serialize + ?Sized>(status: u8, value: &T) -> Vec<u8> {
    let mut buffer = vec![status];
    // Only a failing custom `Serialize` impl gets here: a bug in the function, so a trap.
    if let Err(error) = ciborium::into_writer(value, &mut buffer) {
        panic!("cannot encode a spore function's result as CBOR: {error:?}");
    }
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
        let mut buffer = Vec::new();
        ciborium::into_writer(value, &mut buffer).unwrap();
        buffer
    }

    fn add(input: &[u8]) -> Vec<u8> {
        invoke(input, "add", &["a", "b"], |args| {
            let a: i64 = args.take()?;
            let b: i64 = args.take()?;
            Ok(reply_result(
                a.checked_add(b).ok_or_else(|| "overflow".to_owned()),
            ))
        })
    }

    fn text_reply(reply: &[u8], status: u8) -> String {
        assert_eq!(reply[0], status, "reply {reply:?}");
        ciborium::from_reader(&reply[1..]).unwrap()
    }

    #[test]
    fn success_and_error_statuses() {
        let reply = add(&cbor(&(2, 3)));
        assert_eq!(reply, [&[STATUS_OK][..], &cbor(&5)].concat());
        assert_eq!(
            text_reply(&add(&cbor(&(i64::MAX, 1))), STATUS_ERROR),
            "overflow"
        );
    }

    #[test]
    fn arity_is_checked_before_types() {
        let reason = text_reply(&add(&cbor(&("x",))), STATUS_BAD_ARGUMENTS);
        assert_eq!(reason, "`add` takes 2 arguments, got 1");
    }

    #[test]
    fn type_errors_name_the_argument() {
        let reason = text_reply(&add(&cbor(&(1, "two"))), STATUS_BAD_ARGUMENTS);
        assert!(
            reason.starts_with("argument 2 (`b`) of `add`: invalid type: string"),
            "{reason}"
        );
    }

    #[test]
    fn malformed_input_is_an_argument_error() {
        let reason = text_reply(&add(&cbor(&5)), STATUS_BAD_ARGUMENTS);
        assert!(
            reason.starts_with("the arguments of `add` are not a CBOR array"),
            "{reason}"
        );
        let reason = text_reply(&add(&[0x82, 0x01]), STATUS_BAD_ARGUMENTS);
        assert!(reason.contains("ends in the middle"), "{reason}");
        let reason = text_reply(&add(&[0x82, 0x01, 0x02, 0x00]), STATUS_BAD_ARGUMENTS);
        assert!(reason.ends_with("followed by 1 extra byte"), "{reason}");
    }

    #[test]
    fn unit_is_null() {
        assert_eq!(reply(&()), [STATUS_OK, 0xf6]);
    }
}
