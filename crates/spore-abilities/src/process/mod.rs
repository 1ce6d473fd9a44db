//! External provider processes (`spec/abilities.md`, "Provider process protocol"): any
//! ability served by a program that speaks length-prefixed CBOR frames on its standard
//! input and output, kept running by a supervisor.
//!
//! Three jobs, one module each:
//! - `protocol`: the messages (hello, request, answer) and their frames; no IO of its
//!   own beyond reading a frame from a pipe.
//! - `connection`: one running process and its three threads: a writer that owns its
//!   stdin (callers hand it encoded frames, so a provider that stops reading can never
//!   block a caller past its deadline), a reader that owns stdout and routes each answer
//!   by id to the caller waiting for it, and one that forwards stderr to the log. Its
//!   bookkeeping of who waits for which id is `calls`.
//! - `supervisor`: the [`ProcessProvider`] callers see. It starts the process (at once,
//!   or on first use), and when a process dies or breaks the protocol, restarts it with
//!   exponential backoff; calls meanwhile fail at once rather than wait.
//!
//! Everything a process says that reaches people (its stderr, the messages of its error
//! answers, its hello) is passed through `spore_core::text::printable` first.

mod calls;
mod connection;
mod protocol;
mod supervisor;

use std::io;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use spore_runtime::{AbilityError, ErrorKind};

pub use protocol::{MAX_FRAME_BYTES, PROTOCOL};
pub use supervisor::ProcessProvider;

/// How a binding to an external provider process is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSettings {
    /// The ability served, which the process must name in its hello.
    pub ability: String,
    /// The operations the configuration declares; the process must serve all of them.
    pub operations: Vec<String>,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// The working directory of the process (default: the node's).
    pub cwd: Option<PathBuf>,
    /// Environment variables set for the process, on top of the node's own.
    pub env: Vec<(String, String)>,
    /// The longest a call may wait for its answer; a caller's earlier deadline wins.
    pub timeout: Duration,
}

impl ProcessSettings {
    /// The longest a call waits for its answer, when the binding sets no timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
}

impl Default for ProcessSettings {
    fn default() -> ProcessSettings {
        ProcessSettings {
            ability: String::new(),
            operations: Vec::new(),
            command: Vec::new(),
            cwd: None,
            env: Vec::new(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }
}

/// Why a provider process could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    #[error("the provider command for ability `{ability}` is empty")]
    EmptyCommand { ability: String },
    #[error("cannot start `{command}` as the provider process for ability `{ability}`: {source}")]
    Spawn {
        ability: String,
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot start a thread for the provider process of ability `{ability}`: {source}")]
    Thread {
        ability: String,
        #[source]
        source: io::Error,
    },
    #[error("the provider process `{command}` for ability `{ability}` {exit} before sending its hello{}", last_words(.stderr))]
    ExitedBeforeHello {
        ability: String,
        command: String,
        /// How it ended, e.g. "exited (exit status: 1)".
        exit: String,
        /// Its last lines of standard error, escaped and cut to be printable.
        stderr: Vec<String>,
    },
    #[error("the provider process `{command}` for ability `{ability}` sent no hello within {}s", .timeout.as_secs())]
    HelloTimeout {
        ability: String,
        command: String,
        timeout: Duration,
    },
    #[error(
        "the provider process `{command}` for ability `{ability}` broke the protocol: {problem}"
    )]
    Protocol {
        ability: String,
        command: String,
        problem: String,
    },
    #[error(
        "the provider process `{command}` does not serve ability `{ability}` as configured: {problem}"
    )]
    Mismatch {
        ability: String,
        command: String,
        problem: String,
    },
    #[error("the provider process for ability `{ability}` was shut down while starting")]
    ShutDown { ability: String },
}

/// The lines are joined with an escaped newline, as `printable` shows one, so that the
/// message stays one line.
fn last_words(stderr: &[String]) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; its standard error ended with: {}", stderr.join(r"\n"))
    }
}

/// The command as people would type it, for messages.
fn command_line(command: &[String]) -> String {
    command
        .iter()
        .map(|arg| {
            if arg.is_empty() || arg.contains(char::is_whitespace) {
                format!("{arg:?}")
            } else {
                arg.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn unavailable(message: String) -> AbilityError {
    AbilityError::new(ErrorKind::Unavailable, message)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
