//! The `spore` command line. The only place in spore that prints to a terminal.

mod cli;
mod daemon;
mod housekeeping;
mod kind;
mod report;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_tracing(args.verbose);
    let outcome = cli::run(&args).and_then(|()| match cli::output::stdout_failure() {
        Some(error) => Err(anyhow::anyhow!("cannot write to standard output: {error}")),
        None => Ok(()),
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => cli::report(&error, args.json),
    }
}
