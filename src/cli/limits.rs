//! `--timeout` and `--memory`: per-call limits on the command line.

use std::time::Duration;

use clap::Args;
use spore_node::Limits;

use super::exit::UsageError;

#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Wall-clock deadline for the call, e.g. `500ms`, `10s`, `2m` (default 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Memory cap for the call, e.g. `16MiB`, `1GiB` (default 64MiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<u64>,
}

impl LimitArgs {
    pub fn apply(&self, defaults: Limits) -> Limits {
        Limits {
            deadline: self.timeout.unwrap_or(defaults.deadline),
            memory_bytes: self.memory.unwrap_or(defaults.memory_bytes),
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, UsageError> {
    humantime::parse_duration(text).map_err(|e| {
        UsageError(format!(
            "`{text}` is not a duration ({e}); try `500ms` or `10s`"
        ))
    })
}

/// Parses `123`, `64KiB`, `64MiB`, `1GiB` (and the decimal `KB`, `MB`, `GB`).
pub fn parse_size(text: &str) -> Result<u64, UsageError> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => {
            return Err(UsageError(format!(
                "`{text}` is not a size; try `64MiB` or `1GiB`"
            )));
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| UsageError(format!("`{text}` is not a size; try `64MiB` or `1GiB`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("2KB").unwrap(), 2000);
        assert!(parse_size("64 moons").is_err());
        assert!(parse_size("MiB").is_err());
    }
}
