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

/// What the error record says of a failure besides its message (`spec/errors.md`).
struct Record {
    kind: ErrorKind,
    /// A guest error's value.
    value: Option<serde_json::Value>,
    /// For an unknown name, the names likely meant.
    suggestions: Vec<String>,
}

impl Record {
    fn of(kind: ErrorKind) -> Record {
        Record {
            kind,
            value: None,
            suggestions: Vec::new(),
        }
    }
}

fn classify(error: &anyhow::Error) -> Record {
    if error.downcast_ref::<UsageError>().is_some() {
        return Record::of(ErrorKind::BadRequest);
    }
    if let Some(trust) = error.downcast_ref::<TrustStoreError>() {
        return Record::of(trust.kind());
    }
    if let Some(refused) = error.downcast_ref::<TrustError>() {
        return Record::of(spore_node::trust::refusal_kind(refused));
    }
    if let Some(remote) = error.downcast_ref::<RemoteError>() {
        return Record {
            kind: remote.kind,
            value: remote.value.clone(),
            suggestions: remote.suggestions.clone(),
        };
    }
    // A bad crate name, or a directory `spore new` will not overwrite.
    if error
        .downcast_ref::<spore_scaffold::template::NewError>()
        .is_some_and(|new| !matches!(new, spore_scaffold::template::NewError::Write { .. }))
    {
        return Record::of(ErrorKind::BadRequest);
    }
    if error.downcast_ref::<spore_node::ConfigError>().is_some() {
        return Record::of(ErrorKind::BadRequest);
    }
    if let Some(token) = error.downcast_ref::<TokenError>() {
        return Record::of(token.kind());
    }
    match error.downcast_ref::<NodeError>() {
        Some(node_error) => Record {
            kind: node_error.kind(),
            value: kind::guest_value(node_error),
            suggestions: node_error
                .suggestions()
                .iter()
                .map(|name| name.as_str().to_owned())
                .collect(),
        },
        None => Record::of(ErrorKind::Internal),
    }
}

/// Prints `error` to stderr and returns the exit code for its kind.
pub fn report(error: &anyhow::Error, json: bool) -> ExitCode {
    let Record {
        kind,
        value,
        suggestions,
    } = classify(error);
    // A message may carry what a guest, a provider process or a peer wrote: it must not
    // reach a terminal with the control characters that move its cursor or forge lines.
    let message = render(error);
    let message = printable(&message, MAX_MESSAGE_BYTES);
    if json {
        let mut body = serde_json::json!({ "error": { "kind": kind, "message": message } });
        if let Some(value) = value {
            body["error"]["value"] = value;
        }
        if !suggestions.is_empty() {
            body["error"]["suggestions"] = serde_json::json!(suggestions);
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
