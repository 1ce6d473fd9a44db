//! `spore completions SHELL`: the shell's completion script for every command and
//! option, generated from the same definitions that parse them (`clap_complete`).

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;
use super::output::outln;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    pub shell: Shell,
}

/// Prints the script to stdout, through `outln!` like every result (a closed pipe ends
/// it quietly).
pub fn print(args: &CompletionsArgs) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "spore", &mut script);
    outln!("{}", String::from_utf8(script)?.trim_end());
    Ok(())
}
