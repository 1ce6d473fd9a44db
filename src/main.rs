//! The `spore` command line. The only place in spore that prints to a terminal.

mod api_token;
mod cli;
mod daemon;
mod housekeeping;
mod kind;
mod report;
mod telemetry;
mod version;

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: a routed HTTP request allocates a few dozen small
/// blocks across two worker threads, and glibc's malloc and free were a tenth of the
/// node's samples under `wrk` (perf, `docs/performance.md`, "HTTP routes").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = match cli::parse() {
        Ok(args) => args,
        Err(code) => return code,
    };
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
    // A running node also writes its log into its home, for `spore logs`, and exports
    // its spans when given a collector.
    let (log_file, otlp) = match &args.command {
        cli::Command::Node(daemon::NodeCommand::Run(run)) => {
            let home = spore_node::Home::locate(args.home.as_deref());
            let otlp = match run.otlp.as_deref().filter(|url| !url.is_empty()) {
                None => None,
                Some(url) => match spore_node::Identity::load_or_create(&home) {
                    Ok(identity) => Some((url, identity.peer_id().to_string())),
                    Err(error) => return cli::report(&error.into(), args.json),
                },
            };
            (Some(home.root().join(cli::logs::LOG_FILE)), otlp)
        }
        _ => (None, None),
    };
    let outputs = cli::logs::NodeOutputs {
        log_file: log_file.as_deref(),
        otlp,
    };
    let _exporter = match cli::logs::init_tracing(args.verbose, outputs) {
        Ok(exporter) => exporter,
        Err(error) => return cli::report(&error, args.json),
    };
    let outcome = cli::run(&args).and_then(|()| match cli::output::stdout_failure() {
        Some(error) => Err(anyhow::anyhow!("cannot write to standard output: {error}")),
        None => Ok(()),
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => cli::report(&error, args.json),
    }
}
