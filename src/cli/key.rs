//! `spore key ...`: the keys this home holds (`<home>/keys/NAME.key`; `spore_node::trust`).

use clap::Subcommand;
use serde_json::json;
use spore_node::{Home, TrustStore};

use super::output::{Output, outln};

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Make a key named NAME (a label) and print its public key.
    New { name: String },
    /// List the keys this home holds: name and public key.
    Ls,
}

pub fn run(command: &KeyCommand, home: &Home, out: &Output) -> anyhow::Result<()> {
    let store = TrustStore::new(home);
    match command {
        KeyCommand::New { name } => {
            let key = store.new_key(name)?.public();
            if !out.json(&json!({ "name": name, "public_key": key.to_string() }))? {
                outln!("{key}");
            }
        }
        KeyCommand::Ls => {
            let keys = store.keys()?;
            let rows: Vec<_> = keys
                .iter()
                .map(|(name, key)| json!({ "name": name, "public_key": key.to_string() }))
                .collect();
            if !out.json(&rows)? {
                let width = keys.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
                for (name, key) in &keys {
                    outln!("{name:<width$}  {key}");
                }
            }
        }
    }
    Ok(())
}
