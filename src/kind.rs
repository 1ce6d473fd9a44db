//! What each kind of failure (`spore_core::ErrorKind`, `spec/errors.md`) means to a
//! person or a program: the CLI's exit code (docs/cli.md) and the HTTP API's status
//! (docs/api.md). Two tables over the one enum, so that the CLI and the API always agree.

use spore_node::{ErrorKind, InvokeError, NodeError};

/// The exit code of a command that failed with `kind`.
pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::BadRequest | ErrorKind::TooLarge => 2,
        ErrorKind::NotFound | ErrorKind::Unbound => 3,
        ErrorKind::GuestError => 4,
        ErrorKind::Trap
        | ErrorKind::Timeout
        | ErrorKind::MemoryLimit
        | ErrorKind::StackOverflow
        | ErrorKind::Depth => 5,
        ErrorKind::InvalidModule => 6,
        ErrorKind::Corrupt => 7,
        ErrorKind::Unavailable | ErrorKind::Busy => 8,
        ErrorKind::NotAllowed | ErrorKind::Quota => 9,
        ErrorKind::Failed | ErrorKind::Internal => 1,
        _ => 1,
    }
}

/// The HTTP status of a request that failed with `kind`.
pub fn http_status(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::BadRequest => 400,
        ErrorKind::NotAllowed => 403,
        ErrorKind::NotFound => 404,
        ErrorKind::TooLarge => 413,
        ErrorKind::Busy => 429,
        ErrorKind::Quota => 507,
        ErrorKind::GuestError
        | ErrorKind::Trap
        | ErrorKind::MemoryLimit
        | ErrorKind::StackOverflow
        | ErrorKind::Depth
        | ErrorKind::InvalidModule => 422,
        ErrorKind::Unbound | ErrorKind::Unavailable => 503,
        ErrorKind::Timeout => 504,
        ErrorKind::Corrupt | ErrorKind::Failed | ErrorKind::Internal => 500,
        _ => 500,
    }
}

/// The error value a function returned, when `error` is a guest error.
pub fn guest_value(error: &NodeError) -> Option<serde_json::Value> {
    match error {
        NodeError::Invoke(InvokeError::Guest { error, .. }) => {
            Some(spore_core::value::to_json(error))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/api.md prints both tables as one; every kind must have its row there, and
    /// the row must say what the code does.
    #[test]
    fn docs_api_lists_every_kind_with_the_status_and_exit_code_the_code_uses() {
        let doc = include_str!("../docs/api.md");
        for kind in ErrorKind::ALL {
            let row = doc
                .lines()
                .find(|line| line.starts_with(&format!("| `{kind}` |")))
                .unwrap_or_else(|| panic!("docs/api.md has no row for `{kind}`"));
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            assert_eq!(cells[2], http_status(kind).to_string(), "status of {kind}");
            assert_eq!(cells[3], exit_code(kind).to_string(), "exit code of {kind}");
        }
    }
}
