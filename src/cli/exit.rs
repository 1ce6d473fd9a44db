//! Exit codes (documented in docs/cli.md) and how errors reach the person.

use std::process::ExitCode;

use spore_node::{ErrorKind, NodeError};

/// A mistake in how spore was called, found by the CLI itself.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub const OTHER: u8 = 1;
pub const USAGE: u8 = 2;
pub const NOT_FOUND: u8 = 3;
pub const GUEST_ERROR: u8 = 4;
pub const TRAP: u8 = 5;
pub const INVALID_MODULE: u8 = 6;
pub const CORRUPT: u8 = 7;
pub const UNAVAILABLE: u8 = 8;

fn classify(error: &anyhow::Error) -> (u8, &'static str) {
    if error.downcast_ref::<UsageError>().is_some() {
        return (USAGE, "usage");
    }
    match error.downcast_ref::<NodeError>().map(NodeError::kind) {
        Some(ErrorKind::Usage) => (USAGE, "usage"),
        Some(ErrorKind::NotFound) => (NOT_FOUND, "not_found"),
        Some(ErrorKind::Guest) => (GUEST_ERROR, "guest_error"),
        Some(ErrorKind::Trap) => (TRAP, "trap"),
        Some(ErrorKind::InvalidModule) => (INVALID_MODULE, "invalid_module"),
        Some(ErrorKind::Corrupt) => (CORRUPT, "corrupt"),
        Some(ErrorKind::Unavailable) => (UNAVAILABLE, "unavailable"),
        _ => (OTHER, "other"),
    }
}

/// Prints `error` to stderr and returns the exit code for its kind.
pub fn report(error: &anyhow::Error, json: bool) -> ExitCode {
    let (code, kind) = classify(error);
    if json {
        let mut body = serde_json::json!({ "error": { "kind": kind, "message": render(error) } });
        if let Some(NodeError::Invoke(invoke_error)) = error.downcast_ref::<NodeError>()
            && let Some(value) = guest_value(invoke_error)
        {
            body["error"]["value"] = value;
        }
        eprintln!("{body}");
    } else {
        eprintln!("error: {}", render(error));
    }
    ExitCode::from(code)
}

/// The error and its causes, each said once: spore's error types already include their
/// cause in their message, while context added with anyhow does not.
fn render(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn guest_value(error: &spore_node::InvokeError) -> Option<serde_json::Value> {
    match error {
        spore_node::InvokeError::Guest { error, .. } => Some(spore_core::value::to_json(error)),
        _ => None,
    }
}
