//! The ability error of `spec/abilities.md` ("Calls"): a map `{kind, message, value?}`.

use std::fmt;

use ciborium::Value;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The stable kinds of ability errors, to compare with [`AbilityError::kind`].
///
/// The first ten are the kinds the built-in providers use (`spec/abilities.md`);
/// custom providers may use others. [`BAD_RESPONSE`](kind::BAD_RESPONSE) is this crate's own.
pub mod kind {
    /// The request did not have the operation's shape, or broke one of its limits.
    pub const BAD_REQUEST: &str = "bad_request";
    /// The binding does not allow this (an `http` host off the allowlist, ...).
    pub const NOT_ALLOWED: &str = "not_allowed";
    /// A request or response exceeded a size limit.
    pub const TOO_LARGE: &str = "too_large";
    /// The operation did not finish within the caller's deadline.
    pub const TIMEOUT: &str = "timeout";
    /// The provider is not running, or this is a native build (see the crate docs).
    pub const UNAVAILABLE: &str = "unavailable";
    /// The thing asked for does not exist.
    pub const NOT_FOUND: &str = "not_found";
    /// Anything else went wrong (DNS, connection, storage, ...).
    pub const FAILED: &str = "failed";
    /// `call`: the called function returned an error; it is the error's `value`.
    pub const GUEST_ERROR: &str = "guest_error";
    /// `call`: the called function trapped or hit a limit.
    pub const TRAP: &str = "trap";
    /// `call`: the call would go past the node's depth limit.
    pub const DEPTH: &str = "depth";
    /// Never sent by a host: this crate could not read the response, or the result did
    /// not deserialize into the type the caller asked for.
    pub const BAD_RESPONSE: &str = "bad_response";
}

/// Why an ability operation did not produce a result.
///
/// Hosts report failures as a map `{kind, message, value?}`; this is that map. It is
/// also `Serialize` as that map, so a function (or a Wasm handler) can return it as its
/// error value and its caller sees the same kind and message.
///
/// ```
/// use spore_guest::ability::{AbilityError, kind};
///
/// let error = AbilityError::new(kind::NOT_FOUND, "no sensor called `attic`");
/// assert_eq!(error.kind(), kind::NOT_FOUND);
/// assert_eq!(error.to_string(), "not_found: no sensor called `attic`");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AbilityError {
    kind: String,
    message: String,
    value: Option<Value>,
}

impl AbilityError {
    /// An error of `kind` (usually one of [`kind`]) saying `message`.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> AbilityError {
        AbilityError {
            kind: kind.into(),
            message: message.into(),
            value: None,
        }
    }

    /// The same error carrying `value`, as a `guest_error` carries the called function's
    /// error value.
    pub fn with_value(mut self, value: Value) -> AbilityError {
        self.value = Some(value);
        self
    }

    /// The machine-readable kind: one of [`kind`], or a custom provider's own.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// What went wrong, for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error value a called function returned (kind `guest_error` of `call`).
    pub fn value(&self) -> Option<&Value> {
        self.value.as_ref()
    }

    /// Reads the error item of a failed response. Lenient, because a guest should see
    /// whatever a (custom) provider said: a missing kind is `failed`, and an item that
    /// is not a map is kept as the `value`.
    pub fn from_value(item: Value) -> AbilityError {
        let Value::Map(entries) = item else {
            return AbilityError::new(kind::FAILED, "the operation failed with a non-map error")
                .with_value(item);
        };
        let mut error = AbilityError::new(kind::FAILED, "the operation failed without a message");
        for (key, value) in entries {
            match (key.as_text(), value) {
                (Some("kind"), Value::Text(kind)) => error.kind = kind,
                (Some("message"), Value::Text(message)) => error.message = message,
                (Some("value"), value) => error.value = Some(value),
                _ => {}
            }
        }
        error
    }

    /// The `{kind, message, value?}` map, as a host sends it.
    pub fn to_value(&self) -> Value {
        let mut entries = vec![
            (Value::from("kind"), Value::from(self.kind.as_str())),
            (Value::from("message"), Value::from(self.message.as_str())),
        ];
        if let Some(value) = &self.value {
            entries.push((Value::from("value"), value.clone()));
        }
        Value::Map(entries)
    }

    pub(crate) fn bad_response(message: impl Into<String>) -> AbilityError {
        AbilityError::new(kind::BAD_RESPONSE, message)
    }
}

impl fmt::Display for AbilityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for AbilityError {}

impl Serialize for AbilityError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AbilityError {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(AbilityError::from_value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_round_trips() {
        let error = AbilityError::new(kind::GUEST_ERROR, "`div` returned an error")
            .with_value(Value::from("division by zero"));
        assert_eq!(AbilityError::from_value(error.to_value()), error);
        let back: AbilityError = Value::serialized(&error).unwrap().deserialized().unwrap();
        assert_eq!(back, error);
    }

    #[test]
    fn a_null_value_is_still_a_value() {
        let map = Value::Map(vec![
            (Value::from("kind"), Value::from("guest_error")),
            (Value::from("message"), Value::from("x")),
            (Value::from("value"), Value::Null),
        ]);
        assert_eq!(AbilityError::from_value(map).value(), Some(&Value::Null));
    }

    #[test]
    fn odd_errors_are_read_leniently() {
        let error = AbilityError::from_value(Value::Map(vec![(
            Value::from("message"),
            Value::from("disk full"),
        )]));
        assert_eq!((error.kind(), error.message()), ("failed", "disk full"));

        let error = AbilityError::from_value(Value::from(7));
        assert_eq!(error.kind(), kind::FAILED);
        assert_eq!(error.value(), Some(&Value::from(7)));
    }
}
