//! How errors reach the person: the message on stderr and the exit code of its kind
//! (docs/cli.md; the table itself is `crate::kind`).

use std::process::ExitCode;

use spore_core::text::{MAX_MESSAGE_BYTES, printable};
use spore_core::trust::TrustError;
use spore_node::{NodeError, TrustStoreError};

use super::backend::RemoteError;
use super::output::errln;
use crate::api_token::TokenError;
use crate::kind;
use spore_node::ErrorKind;

/// A mistake in how spore was called, found by the CLI itself.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn classify(error: &anyhow::Error) -> (ErrorKind, Option<serde_json::Value>) {
    if error.downcast_ref::<UsageError>().is_some() {
        return (ErrorKind::BadRequest, None);
    }
    if let Some(trust) = error.downcast_ref::<TrustStoreError>() {
        return (trust.kind(), None);
    }
    if let Some(refused) = error.downcast_ref::<TrustError>() {
        return (spore_node::trust::refusal_kind(refused), None);
    }
    if let Some(remote) = error.downcast_ref::<RemoteError>() {
        return (remote.kind, remote.value.clone());
    }
    // A bad crate name, or a directory `spore new` will not overwrite.
    if error
        .downcast_ref::<spore_scaffold::template::NewError>()
        .is_some_and(|new| !matches!(new, spore_scaffold::template::NewError::Write { .. }))
    {
        return (ErrorKind::BadRequest, None);
    }
    if error.downcast_ref::<spore_node::ConfigError>().is_some() {
        return (ErrorKind::BadRequest, None);
    }
    if let Some(token) = error.downcast_ref::<TokenError>() {
        return (token.kind(), None);
    }
    match error.downcast_ref::<NodeError>() {
        Some(node_error) => (node_error.kind(), kind::guest_value(node_error)),
        None => (ErrorKind::Internal, None),
    }
}

/// Prints `error` to stderr and returns the exit code for its kind.
pub fn report(error: &anyhow::Error, json: bool) -> ExitCode {
    let (kind, value) = classify(error);
    // A message may carry what a guest, a provider process or a peer wrote: it must not
    // reach a terminal with the control characters that move its cursor or forge lines.
    let message = render(error);
    let message = printable(&message, MAX_MESSAGE_BYTES);
    if json {
        let mut body = serde_json::json!({ "error": { "kind": kind, "message": message } });
        if let Some(value) = value {
            body["error"]["value"] = value;
        }
        errln!("{body}");
    } else {
        errln!("error: {message}");
    }
    ExitCode::from(kind::exit_code(kind))
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
