//! `--timeout` and `--memory`: per-call limits on the command line.

use std::time::Duration;

use clap::Args;

use super::exit::UsageError;

#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Wall-clock deadline for the call, e.g. `500ms`, `10s`, `2m` (default: the node's, 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Memory cap for the call, e.g. `16MiB`, at most the node's `limits.max_memory`
    /// (256MiB unless configured; never over 1GiB) (default: the node's, 64MiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    pub memory: Option<u64>,
}

/// A duration on the command line (`--timeout`, `spore mesh admit --expires`).
pub(super) fn parse_duration(text: &str) -> Result<Duration, UsageError> {
    humantime::parse_duration(text).map_err(|e| {
        UsageError(format!(
            "`{text}` is not a duration ({e}); try `500ms`, `10s`, `12h` or `30d`"
        ))
    })
}

/// A memory cap, checked here against the most any call may have, so that a cap the
/// runtime cannot give is refused before anything runs.
fn parse_memory(text: &str) -> Result<u64, UsageError> {
    let bytes = spore_node::parse_size(text)
        .ok_or_else(|| UsageError(format!("`{text}` is not a size; try `64MiB` or `1GiB`")))?;
    spore_node::check_memory(bytes).map_err(|e| UsageError(format!("--memory {text}: {e}")))?;
    Ok(bytes)
}
