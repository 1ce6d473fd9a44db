//! Printing results: text for people, JSON for programs (`--json`).
//!
//! Every line the CLI prints goes through [`outln!`] (results, stdout) or [`errln!`]
//! (notes and errors, stderr), never `println!`: those panic when the stream is gone, as
//! stdout is in `spore ls | head -1` once `head` has exited (docs/cli.md, "Output").

use std::fmt;
use std::io::{self, Write};
use std::sync::OnceLock;

use serde::Serialize;

/// Prints a line of results to stdout, like `println!`; see [`stdout_line`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::stdout_line(format_args!($($arg)*))
    };
}

/// Prints a line to stderr, like `eprintln!`, ignoring a stderr that is gone.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::output::stderr_line(format_args!($($arg)*))
    };
}

pub(crate) use {errln, outln};

/// Why stdout could not be written, once it could not.
static STDOUT_FAILED: OnceLock<io::Error> = OnceLock::new();

/// Writes `line` to stdout. Once a write has failed, the rest of the output is dropped:
/// the command still does what it was asked (a publish is stored, a name set) and its
/// exit code says how that went. A reader that went away is no failure of spore's
/// ([`stdout_failure`] forgets it); any other error is reported when the command ends.
pub fn stdout_line(line: fmt::Arguments<'_>) {
    if STDOUT_FAILED.get().is_some() {
        return;
    }
    if let Err(error) = writeln!(io::stdout().lock(), "{line}") {
        let _ = STDOUT_FAILED.set(error);
    }
}

/// Writes `line` to stderr; a stderr that is gone leaves nowhere to complain.
pub fn stderr_line(line: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Whether stdout can no longer be written (its reader went away, or it failed).
pub fn stdout_gone() -> bool {
    STDOUT_FAILED.get().is_some()
}

/// The error stdout failed with, unless it was only that its reader went away (a
/// broken pipe), which ends a command's output, quietly, and not the command.
pub fn stdout_failure() -> Option<&'static io::Error> {
    STDOUT_FAILED
        .get()
        .filter(|error| error.kind() != io::ErrorKind::BrokenPipe)
}

/// Whether stderr is a terminal, where a person watches: the one test behind colour in
/// the logs ([`colour_on_stderr`]) and the progress bars (`super::progress`).
pub fn stderr_is_terminal() -> bool {
    io::IsTerminal::is_terminal(&io::stderr())
}

/// Whether what goes to stderr may be coloured: on a terminal, unless `NO_COLOR` is set.
pub fn colour_on_stderr() -> bool {
    stderr_is_terminal() && !no_color()
}

/// How clap colours its help and its argument errors: never with `NO_COLOR` set; else
/// clap colours a stream only when it is a terminal (it checks the one it writes to:
/// stdout for help, stderr for errors).
pub fn clap_colour() -> clap::ColorChoice {
    if no_color() {
        clap::ColorChoice::Never
    } else {
        clap::ColorChoice::Auto
    }
}

/// Whether `NO_COLOR` asks for no colour: set to anything but the empty string, as
/// no-color.org says.
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    /// Whether the output is for programs (`--json`) rather than people.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints `value` as one line of JSON (only in `--json` mode; returns whether it did).
    pub fn json<T: Serialize>(&self, value: &T) -> anyhow::Result<bool> {
        if self.json {
            outln!("{}", serde_json::to_string(value)?);
        }
        Ok(self.json)
    }

    /// Prints a line for people (only when not in `--json` mode).
    pub fn text(&self, line: impl std::fmt::Display) {
        if !self.json {
            outln!("{line}");
        }
    }
}

/// A byte count the way people read it.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A time in milliseconds since the epoch, as RFC 3339 UTC.
pub fn timestamp(ms: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(time).to_string()
}
