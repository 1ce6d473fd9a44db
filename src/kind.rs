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

/// The HTTP status of a request to a route (`spec/http.md`) whose call failed with
/// `kind`. Unlike the API's, it speaks to a service's clients: a function's failure is
/// the server's (500), and what the node cannot reach now is unavailable (503).
pub fn route_status(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::BadRequest => 400,
        ErrorKind::NotAllowed => 403,
        ErrorKind::TooLarge => 413,
        ErrorKind::Quota => 507,
        ErrorKind::Timeout => 504,
        ErrorKind::Unbound | ErrorKind::Unavailable | ErrorKind::NotFound | ErrorKind::Busy => 503,
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

    /// spec/http.md's table of failures: each row's kinds, and its status (or statuses,
    /// `A and B`, one per kind in order), as `route_status` gives them; every kind is in
    /// some row.
    #[test]
    fn spec_http_gives_every_kind_the_status_route_status_gives_it() {
        let spec = include_str!("../spec/http.md");
        let table = &spec[spec.find("| kind (`spec/errors.md`) | status |").unwrap()..];
        let mut seen = Vec::new();
        for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            if cells[1].contains("integer `status`") {
                continue;
            }
            let kinds: Vec<ErrorKind> = cells[1]
                .split('`')
                .skip(1)
                .step_by(2)
                .filter_map(|name| ErrorKind::ALL.into_iter().find(|k| k.to_string() == name))
                .collect();
            let statuses: Vec<u16> = cells[2]
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse().ok())
                .collect();
            for (i, kind) in kinds.iter().enumerate() {
                let status = statuses.get(i).or(statuses.first()).unwrap();
                assert_eq!(route_status(*kind), *status, "{kind}: {row}");
                seen.push(*kind);
            }
        }
        for kind in ErrorKind::ALL {
            assert!(
                seen.contains(&kind),
                "spec/http.md has no status for `{kind}`"
            );
        }
    }
}
