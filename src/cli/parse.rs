//! Reading the command line, in two steps (as ripgrep does): clap parses it, and when
//! that fails the raw arguments say how to report it. With `--json` among them, an
//! argument error is the JSON error record every other failure prints
//! (`{"error": {"kind": "bad_request", "message"}}` on stderr, exit 2), so that a
//! program driving spore reads one format; `--help` and `--version` print as always.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use super::Cli;
use super::exit::{UsageError, report};
use super::output::clap_colour;

/// The parsed command line, or the exit code of a command line that asked for help or
/// the version (printed) or that clap refused (reported).
pub fn parse() -> Result<Cli, ExitCode> {
    parse_from(std::env::args_os().collect())
}

fn parse_from(args: Vec<OsString>) -> Result<Cli, ExitCode> {
    let mut command = Cli::command().color(clap_colour());
    let parsed = command
        .try_get_matches_from_mut(&args)
        .and_then(|mut matches| {
            Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command))
        });
    match parsed {
        Ok(cli) => Ok(cli),
        // `use_stderr` is false for what clap prints on request: help and the version.
        Err(error) if error.use_stderr() && asks_for_json(&args) => {
            Err(report(&UsageError(one_line(&error)).into(), true))
        }
        Err(error) => error.exit(),
    }
}

/// Whether `--json` is among the options, before any `--` (after which everything is a
/// value). Read from the raw arguments: the command line did not parse.
fn asks_for_json(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|arg| *arg != "--")
        .any(|arg| arg == "--json")
}

/// clap's message without its styles, its `error: ` and its layout: each paragraph on
/// one line, joined by `; ` (a JSON message is one line, `spec/errors.md`).
fn one_line(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let text = text.trim();
    let text = text.strip_prefix("error: ").unwrap_or(text);
    text.split("\n\n")
        .map(|paragraph| paragraph.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|paragraph| !paragraph.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<OsString> {
        text.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn json_is_asked_for_anywhere_before_a_double_dash() {
        assert!(asks_for_json(&args("spore --json invoke")));
        assert!(asks_for_json(&args("spore invoke f 1 --json")));
        assert!(!asks_for_json(&args("spore invoke f -- --json")));
        assert!(!asks_for_json(&args("spore invoke --jsonx")));
        // The program's own name is not an option.
        assert!(!asks_for_json(&args("--json invoke")));
    }

    #[test]
    fn a_clap_error_becomes_one_line_without_its_error_prefix() {
        let error = Cli::command()
            .color(clap::ColorChoice::Always)
            .try_get_matches_from(args("spore invoke"))
            .unwrap_err();
        let line = one_line(&error);
        assert!(
            line.starts_with("the following required arguments were not provided: <REFERENCE>; Usage: spore invoke"),
            "{line}"
        );
        assert!(!line.contains(['\n', '\u{1b}']), "{line:?}");
    }
}
