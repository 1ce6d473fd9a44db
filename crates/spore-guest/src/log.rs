//! The `log` ability: lines in the node's log, at four levels.
//!
//! The node writes each message through its `tracing` subscriber with the function
//! reference and the invocation id. Logging cannot fail from the caller's point of
//! view: a function should not fail, or have to handle an error, because a log line
//! could not be written, so failures are ignored.
//!
//! ```no_run
//! let page = "home";
//! spore_guest::log::info(&format!("counting a visit of {page}"));
//! ```
//!
//! A module imports only the levels it uses.

use serde::de::IgnoredAny;

spore_guest_macros::ability!(ops = "log" { debug, info, warn, error });

/// Logs `message` at level debug.
pub fn debug(message: &str) {
    let _: Result<IgnoredAny, _> = ops::debug(message);
}

/// Logs `message` at level info.
pub fn info(message: &str) {
    let _: Result<IgnoredAny, _> = ops::info(message);
}

/// Logs `message` at level warn.
pub fn warn(message: &str) {
    let _: Result<IgnoredAny, _> = ops::warn(message);
}

/// Logs `message` at level error.
pub fn error(message: &str) {
    let _: Result<IgnoredAny, _> = ops::error(message);
}
