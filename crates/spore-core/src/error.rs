//! The one taxonomy of failures (`spec/errors.md`): every layer (the runtime, ability
//! providers, the mesh wire, the CLI's exit codes and the HTTP API's statuses) names a
//! failure with an [`ErrorKind`], and a failure that crosses a process or a network keeps
//! it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of failure something is. Serialized as its snake_case name; a name this
/// code does not know reads as [`ErrorKind::Failed`], so a newer peer's kinds degrade
/// instead of breaking the message they arrive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is malformed: a bad reference, name, JSON value or option, an
    /// ambiguous prefix, arguments the function refused, a request an ability refused.
    BadRequest,
    /// No such hash, prefix, name, function or key.
    NotFound,
    /// The function needs abilities that neither this node nor a reachable peer binds.
    Unbound,
    /// A policy refused it: a host off an allowlist, a caller without the right.
    NotAllowed,
    /// A request, argument, value or response is over a size limit.
    TooLarge,
    /// The function ran and returned an error value.
    GuestError,
    /// The function trapped (a Rust panic included) or broke the guest ABI.
    Trap,
    /// The call's deadline passed.
    Timeout,
    /// The function tried to grow its memory past the call's cap.
    MemoryLimit,
    /// The function overflowed its Wasm stack.
    StackOverflow,
    /// A `call` would nest deeper than the node allows.
    Depth,
    /// Bytes that are not a valid spore module.
    InvalidModule,
    /// Stored data failed its integrity check.
    Corrupt,
    /// Something needed is not available now: the home is held by another process, a
    /// peer or provider process is unreachable, no instance slot is free. Trying again
    /// later may work.
    Unavailable,
    /// A peer has as many calls running on the node, or has made as many calls in the
    /// last second, as the node allows one peer; trying again later may work.
    Busy,
    /// Something is over a storage quota: a `kv` namespace, or the bytes of modules a
    /// node keeps to run one peer's calls.
    Quota,
    /// spore itself failed: an IO error of its own, a broken invariant.
    Internal,
    /// An operation failed for a reason of its own (a provider's storage, DNS, a
    /// connection), or a kind this code does not know.
    #[serde(other)]
    Failed,
}

impl ErrorKind {
    /// Every kind, in the order `spec/errors.md` lists them.
    pub const ALL: [ErrorKind; 18] = [
        ErrorKind::BadRequest,
        ErrorKind::NotFound,
        ErrorKind::Unbound,
        ErrorKind::NotAllowed,
        ErrorKind::TooLarge,
        ErrorKind::GuestError,
        ErrorKind::Trap,
        ErrorKind::Timeout,
        ErrorKind::MemoryLimit,
        ErrorKind::StackOverflow,
        ErrorKind::Depth,
        ErrorKind::InvalidModule,
        ErrorKind::Corrupt,
        ErrorKind::Unavailable,
        ErrorKind::Busy,
        ErrorKind::Quota,
        ErrorKind::Internal,
        ErrorKind::Failed,
    ];

    /// The kind's name, as it is written on the wire and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Unbound => "unbound",
            ErrorKind::NotAllowed => "not_allowed",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::GuestError => "guest_error",
            ErrorKind::Trap => "trap",
            ErrorKind::Timeout => "timeout",
            ErrorKind::MemoryLimit => "memory_limit",
            ErrorKind::StackOverflow => "stack_overflow",
            ErrorKind::Depth => "depth",
            ErrorKind::InvalidModule => "invalid_module",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Busy => "busy",
            ErrorKind::Quota => "quota",
            ErrorKind::Failed => "failed",
            ErrorKind::Internal => "internal",
        }
    }

    /// The kind named `name`; [`ErrorKind::Failed`] for a name this code does not know,
    /// as when it is deserialized.
    pub fn from_name(name: &str) -> ErrorKind {
        ErrorKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .unwrap_or(ErrorKind::Failed)
    }
}

/// A failure as it travels between processes and nodes: the error record of
/// `spec/errors.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
    /// With [`ErrorKind::GuestError`]: the error value the function returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<ciborium::Value>,
}

impl Failure {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
            value: None,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_travel_as_their_names_and_unknown_names_read_as_failed() {
        for kind in ErrorKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<ErrorKind>(&json).unwrap(), kind);
            assert_eq!(ErrorKind::from_name(kind.as_str()), kind);
            let mut cbor = Vec::new();
            ciborium::into_writer(&kind, &mut cbor).unwrap();
            assert_eq!(
                ciborium::from_reader::<ErrorKind, _>(&cbor[..]).unwrap(),
                kind
            );
        }
        assert_eq!(
            serde_json::from_str::<ErrorKind>("\"sensor_offline\"").unwrap(),
            ErrorKind::Failed
        );
        assert_eq!(ErrorKind::from_name("sensor_offline"), ErrorKind::Failed);
    }
}
