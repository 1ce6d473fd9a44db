//! `spore names ...`: names point at functions and keep their history.

use clap::Subcommand;
use serde_json::json;
use spore_core::Name;
use spore_node::{NameEntry, NameEvent};

use super::backend::Backend;

use super::output::{Output, outln, timestamp};

#[derive(Subcommand, Debug)]
pub enum NamesCommand {
    /// Point NAME at a function (rolling back is setting it to an earlier reference).
    Set {
        name: Name,
        /// A hash or prefix with `:function`, or another name.
        reference: String,
    },
    /// List the names and where they point.
    Ls,
    /// Show every reference NAME has pointed at, oldest first.
    History { name: Name },
    /// Remove NAME (its history is kept).
    Rm { name: Name },
}

pub fn run(command: &NamesCommand, backend: &Backend, out: &Output) -> anyhow::Result<()> {
    match command {
        NamesCommand::Set { name, reference } => {
            let entry = backend.set_name(name, reference)?;
            print_entry(name, &entry, out)
        }
        NamesCommand::Rm { name } => {
            let entry = backend.remove_name(name)?;
            print_entry(name, &entry, out)
        }
        NamesCommand::Ls => {
            let names = backend.names()?;
            let rows: Vec<_> = names
                .iter()
                .map(|(name, entry)| json!({ "name": name, "target": entry.target(), "seq": entry.seq, "at_ms": entry.at_ms }))
                .collect();
            if !out.json(&rows)? {
                for (name, entry) in &names {
                    outln!("{name:<32} {}", describe(&entry.event));
                }
            }
            Ok(())
        }
        NamesCommand::History { name } => {
            let history = backend.name_history(name)?;
            if !out.json(&history)? {
                for entry in &history {
                    outln!(
                        "#{:<4} {}  {}",
                        entry.seq,
                        timestamp(entry.at_ms),
                        describe(&entry.event)
                    );
                }
            }
            Ok(())
        }
    }
}

fn print_entry(name: &Name, entry: &NameEntry, out: &Output) -> anyhow::Result<()> {
    if !out.json(&json!({ "name": name, "entry": entry }))? {
        outln!("{name} #{} {}", entry.seq, describe(&entry.event));
    }
    Ok(())
}

fn describe(event: &NameEvent) -> String {
    match event {
        NameEvent::Set(target) => format!("-> {target}"),
        NameEvent::Removed => "removed".to_owned(),
    }
}
