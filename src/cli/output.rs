//! Printing results: text for people, JSON for programs (`--json`).

use serde::Serialize;

pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    /// Prints `value` as one line of JSON (only in `--json` mode; returns whether it did).
    pub fn json<T: Serialize>(&self, value: &T) -> anyhow::Result<bool> {
        if self.json {
            println!("{}", serde_json::to_string(value)?);
        }
        Ok(self.json)
    }

    /// Prints a line for people (only when not in `--json` mode).
    pub fn text(&self, line: impl std::fmt::Display) {
        if !self.json {
            println!("{line}");
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
