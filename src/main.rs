//! The `spore` command line. The only place in spore that prints to a terminal.

mod api_token;
mod cli;
mod daemon;
mod housekeeping;
mod kind;
mod report;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // A compile for a parent spore: its stderr is the message the parent reports, so
    // nothing else may be written there.
    if let cli::Command::Compile = args.command {
        let code = spore_node::serve_compile(
            &mut std::io::stdin().lock(),
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        );
        return ExitCode::from(code);
    }
    // A running node also writes its log into its home, for `spore logs`.
    let log_file = matches!(
        &args.command,
        cli::Command::Node(daemon::NodeCommand::Run(_))
    )
    .then(|| {
        spore_node::Home::locate(args.home.as_deref())
            .root()
            .join(cli::logs::LOG_FILE)
    });
    cli::logs::init_tracing(args.verbose, log_file.as_deref());
    let outcome = cli::run(&args).and_then(|()| match cli::output::stdout_failure() {
        Some(error) => Err(anyhow::anyhow!("cannot write to standard output: {error}")),
        None => Ok(()),
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => cli::report(&error, args.json),
    }
}
