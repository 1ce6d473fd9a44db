//! Argument parsing and dispatch. Each command lives in its own module and talks to a
//! [`backend::Backend`]: the home itself, or the node running on it.

mod abilities;
pub mod backend;
mod codebase;
mod completions;
mod dev;
mod exit;
mod invoke;
mod key;
mod limits;
pub mod logs;
pub mod mesh;
mod names;
mod new;
pub mod output;
mod parse;
mod progress;
mod publish;
mod routes;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use spore_node::Home;

pub use exit::report;
pub use parse::parse;

/// spore: publish WebAssembly functions by hash and run them anywhere.
#[derive(Parser, Debug)]
#[command(name = "spore", version = crate::version::VERSION, about, long_about = None)]
pub struct Cli {
    /// The spore home (codebase, configuration). Default: $SPORE_HOME, else the
    /// platform data directory.
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log more (repeat for more detail); logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Publish a compiled module; prints its hash (the same as `b3sum FILE`).
    Publish(publish::PublishArgs),
    /// Build a guest crate for wasm32 and publish what it produces.
    Build(publish::BuildArgs),
    /// Print the hash of a file without publishing it.
    Hash(publish::HashArgs),
    /// Write a new function crate (Rust, or TypeScript with --lang ts), with the SDK
    /// this binary carries.
    New(new::NewArgs),
    /// Build, test, publish and name a guest crate, then again on every change.
    ///
    /// Without --name, each module is named by its crate (`my-fn` names `my_fn.greet`).
    Dev(dev::DevArgs),
    /// Run a function by hash, prefix or name; arguments are JSON values.
    Invoke(invoke::InvokeArgs),
    /// List the modules in the codebase.
    Ls,
    /// Show a module's manifest, functions, abilities and names.
    Inspect(codebase::InspectArgs),
    /// Check every stored record (modules re-hashed, names, history, kv) and name each
    /// damaged one (exit 7); `--repair` drops them and says what was lost.
    Verify(codebase::VerifyArgs),
    /// Remove a module; refused while names point into it, unless --force.
    Rm(codebase::RmArgs),
    /// Remove what nothing refers to: unpublished module files, stale compiled
    /// artifacts, memo entries of removed modules.
    Gc,
    /// Point names at functions, list them, and see their history.
    #[command(subcommand)]
    Names(names::NamesCommand),
    /// Print the running node's log (`node.log` in the home), and follow it with -f.
    Logs(logs::LogsArgs),
    /// The HTTP routes a node serves with `spore node run --http` (config.toml).
    #[command(subcommand)]
    Routes(routes::RoutesCommand),
    /// List the abilities this node knows and the providers bound to them.
    Abilities,
    /// Manage memoized results of pure functions.
    #[command(subcommand)]
    Memo(abilities::MemoCommand),
    /// Make and list the keys this home holds (mesh keys, publisher keys).
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Make a mesh, admit nodes to it, join one, revoke, and show this node's membership.
    #[command(subcommand)]
    Mesh(mesh::MeshCommand),
    /// Run a long-lived node in the mesh, ask about the one running, or print its id.
    #[command(subcommand)]
    Node(crate::daemon::NodeCommand),
    /// Print the completion script for a shell: `spore completions bash > /etc/bash_completion.d/spore`.
    Completions(completions::CompletionsArgs),
    /// Compile one module for the spore process that started this one: a request on
    /// stdin, the compiled artifact on stdout (`spore_runtime::serve_compile`).
    #[command(name = "__compile", hide = true)]
    Compile,
}

pub fn run(cli: &Cli) -> anyhow::Result<()> {
    let out = output::Output::new(cli.json);
    let home = Home::locate(cli.home.as_deref());
    // Opened only by the commands that use a codebase: `hash`, `key` and `mesh` need
    // none, and `node run` must own the home itself.
    let backend = || backend::Backend::for_home(&home);
    match &cli.command {
        Command::Hash(args) => publish::hash(args, &out),
        Command::Completions(args) => completions::print(args),
        Command::Node(command) => crate::daemon::run(command, &home, &out),
        Command::Key(command) => key::run(command, &home, &out),
        Command::Mesh(command) => mesh::run(command, &home, &out),
        Command::Build(args) => publish::build(args, &home, &out),
        Command::New(args) => new::new(args, &home, &out),
        Command::Dev(args) => dev::dev(args, &home, &out),
        Command::Publish(args) => publish::publish(args, &backend()?, &out),
        Command::Invoke(args) => invoke::invoke(args, &backend()?, &out),
        Command::Ls => codebase::ls(&backend()?, &out),
        Command::Inspect(args) => codebase::inspect(args, &backend()?, &out),
        Command::Verify(args) => codebase::verify(args, &home, &out),
        Command::Rm(args) => codebase::rm(args, &backend()?, &out),
        Command::Gc => codebase::gc(&backend()?, &out),
        Command::Names(command) => names::run(command, &backend()?, &out),
        Command::Routes(command) => routes::run(command, &home, &out),
        Command::Logs(args) => logs::logs(args, &home),
        Command::Abilities => abilities::list(&backend()?, &out),
        Command::Memo(command) => abilities::memo(command, &backend()?, &out),
        Command::Compile => unreachable!("served by main before anything else"),
    }
}

/// How this binary compiles modules: by running itself as `spore __compile`, a process
/// that can be stopped at the compile limits. In this process only if the binary cannot
/// say where it is.
pub fn compiler() -> spore_node::Compiler {
    match std::env::current_exe() {
        Ok(program) => spore_node::Compiler::Program {
            program,
            args: vec!["__compile".into()],
        },
        Err(error) => {
            tracing::warn!(%error, "cannot find this program; compiling in this process, without compile limits");
            spore_node::Compiler::InProcess
        }
    }
}
