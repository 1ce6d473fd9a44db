//! Fake ability providers, for native tests of code that uses abilities.
//!
//! Built for `wasm32`, every ability call goes to the host. Natively there is no host:
//! a call fails with kind [`unavailable`](crate::ability::kind::UNAVAILABLE), unless
//! [`with_abilities`] has installed a handler on the current thread. The handler gets
//! the ability, the operation and the request as the host would (the request goes
//! through CBOR both ways), so tests exercise the same encoding as a real call.
//!
//! ```
//! use spore_guest::ability::{AbilityError, kind};
//! use spore_guest::testing::{MemoryKv, with_abilities};
//! use spore_guest::{Value, clock, kv};
//!
//! let mut store = MemoryKv::default();
//! let handler = move |ability: &str, operation: &str, request: Value| match ability {
//!     "kv" => store.call(operation, request),
//!     "clock" => Ok(Value::from(1_700_000_000_000u64)),
//!     _ => Err(AbilityError::new(kind::UNAVAILABLE, format!("{ability} is not faked"))),
//! };
//! with_abilities(handler, || {
//!     kv::put("started", &clock::now().unwrap()).unwrap();
//!     assert_eq!(kv::get::<u64>("started"), Ok(Some(1_700_000_000_000)));
//! });
//! // Outside, abilities are unavailable again.
//! assert_eq!(clock::now().unwrap_err().kind(), kind::UNAVAILABLE);
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;

use ciborium::Value;

use crate::ability::{AbilityError, kind};

/// A fake provider: `(ability, operation, request) -> result or error`.
type Handler = Box<dyn FnMut(&str, &str, Value) -> Result<Value, AbilityError>>;

thread_local! {
    static HANDLER: RefCell<Option<Handler>> = const { RefCell::new(None) };
}

/// Runs `body` with `handler` serving every ability call made on this thread.
///
/// Calls made by the handler itself are not faked (they fail as `unavailable`).
/// Handlers nest: the previous one is back when `body` returns or panics.
pub fn with_abilities<R>(
    handler: impl FnMut(&str, &str, Value) -> Result<Value, AbilityError> + 'static,
    body: impl FnOnce() -> R,
) -> R {
    struct Restore(Option<Handler>);
    impl Drop for Restore {
        fn drop(&mut self) {
            HANDLER.set(self.0.take());
        }
    }
    let _restore = Restore(HANDLER.replace(Some(Box::new(handler))));
    body()
}

/// Serves one native ability call: the response buffer a host would return.
pub(crate) fn respond(ability: &str, operation: &str, request: &[u8]) -> Vec<u8> {
    // Taken out while it runs, so that a handler making calls of its own finds none
    // rather than a locked RefCell.
    let result = match HANDLER.take() {
        Some(mut handler) => {
            let result = match ciborium::from_reader::<Value, _>(request) {
                Ok(request) => handler(ability, operation, request),
                Err(error) => Err(AbilityError::new(
                    kind::BAD_REQUEST,
                    format!("the request is not CBOR: {error:?}"),
                )),
            };
            HANDLER.set(Some(handler));
            result
        }
        None => Err(AbilityError::new(
            kind::UNAVAILABLE,
            format!(
                "`{ability}.{operation}`: abilities are only available inside spore, \
                 and this is a native build (spore_guest::testing can fake them)"
            ),
        )),
    };
    match result {
        Ok(value) => crate::__private::encode(0x00, &value),
        Err(error) => crate::__private::encode(0x01, &error),
    }
}

/// An in-memory `kv` provider with the semantics of spec/abilities.md, for tests.
///
/// Values compare by equality of their decoded CBOR, which matches the spec's
/// canonical comparison for everything but maps written in different key orders.
#[derive(Debug, Clone, Default)]
pub struct MemoryKv {
    /// Everything stored, by key.
    pub entries: BTreeMap<String, Value>,
}

impl MemoryKv {
    /// Performs a `kv` operation, as a [`with_abilities`] handler would for `"kv"`.
    pub fn call(&mut self, operation: &str, request: Value) -> Result<Value, AbilityError> {
        let field = |name: &str| {
            request.as_map().and_then(|entries| {
                entries
                    .iter()
                    .find(|(key, _)| key.as_text() == Some(name))
                    .map(|(_, value)| value.clone())
            })
        };
        let key = || match field("key") {
            Some(Value::Text(key)) if (1..=1024).contains(&key.len()) => Ok(key),
            _ => Err(AbilityError::new(
                kind::BAD_REQUEST,
                "the request needs a `key` of 1 to 1024 bytes",
            )),
        };
        // Absent and null are the same to `kv`.
        let present = |value: Option<Value>| value.filter(|value| !value.is_null());
        match operation {
            "get" => Ok(self.entries.get(&key()?).cloned().unwrap_or(Value::Null)),
            "put" => {
                let key = key()?;
                match present(field("value")) {
                    Some(value) => self.entries.insert(key, value),
                    None => self.entries.remove(&key),
                };
                Ok(Value::Null)
            }
            "delete" => Ok(Value::Bool(self.entries.remove(&key()?).is_some())),
            "list" => {
                let Some(Value::Text(prefix)) = field("prefix") else {
                    return Err(AbilityError::new(
                        kind::BAD_REQUEST,
                        "the request needs a text `prefix`",
                    ));
                };
                let limit = match field("limit") {
                    Some(Value::Integer(limit)) => usize::try_from(limit).unwrap_or(10_000),
                    _ => 1000,
                };
                let keys = self.entries.keys().filter(|key| key.starts_with(&prefix));
                Ok(Value::Array(
                    keys.take(limit).cloned().map(Value::Text).collect(),
                ))
            }
            "cas" => {
                let key = key()?;
                if self.entries.get(&key) != present(field("expected")).as_ref() {
                    return Ok(Value::Bool(false));
                }
                match present(field("new")) {
                    Some(new) => self.entries.insert(key, new),
                    None => self.entries.remove(&key),
                };
                Ok(Value::Bool(true))
            }
            other => Err(AbilityError::new(
                kind::BAD_REQUEST,
                format!("kv has no operation `{other}`"),
            )),
        }
    }
}
