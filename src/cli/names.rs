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
    /// Sign a publication of NAME to the mesh: NAME points at REFERENCE on every node
    /// whose `[trust.names]` trusts the key. Publishing an earlier reference again is
    /// the rollback.
    Publish {
        name: Name,
        /// A hash or prefix with `:function`, or another name; held on this node.
        #[arg(required_unless_present = "remove")]
        reference: Option<String>,
        /// The home's key that signs (`spore key ls`).
        #[arg(long, value_name = "KEY")]
        sign: String,
        /// Publish that NAME points nowhere any more.
        #[arg(long, conflicts_with = "reference")]
        remove: bool,
    },
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
        NamesCommand::Publish {
            name,
            reference,
            sign,
            remove: _,
        } => {
            let published = backend.publish_name(name, reference.as_deref(), sign)?;
            if !out.json(&published)? {
                outln!(
                    "{name} #{} {}  signed by {sign} ({})",
                    published.seq,
                    published
                        .target
                        .as_ref()
                        .map_or("removed".to_owned(), |t| format!("-> {t}")),
                    published.publisher
                );
            }
            Ok(())
        }
        NamesCommand::Ls => {
            let names = backend.names()?;
            // A name of this home hides a mesh name of the same name (`spore invoke`
            // resolves the home's first).
            let mesh: Vec<_> = backend
                .mesh_names()?
                .into_iter()
                .filter(|m| !names.iter().any(|(name, _)| *name == m.name))
                .collect();
            let mut rows: Vec<_> = names
                .iter()
                .map(|(name, entry)| json!({ "name": name, "target": entry.target(), "seq": entry.seq, "at_ms": entry.at_ms, "source": "local" }))
                .collect();
            rows.extend(mesh.iter().map(|m| json!({ "name": m.name, "target": m.target, "seq": m.seq, "at_ms": m.at_ms, "source": "mesh", "publisher": m.publisher })));
            if !out.json(&rows)? {
                for (name, entry) in &names {
                    outln!("{name:<32} {:<80} local", describe(&entry.event));
                }
                for m in &mesh {
                    let target = m
                        .target
                        .as_ref()
                        .map_or(String::new(), |t| format!("-> {t}"));
                    outln!(
                        "{:<32} {target:<80} mesh #{} signed by {}",
                        m.name,
                        m.seq,
                        m.publisher
                    );
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
