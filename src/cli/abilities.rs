//! `spore abilities` and `spore memo`.

use super::backend::Backend;
use clap::Subcommand;
use serde_json::json;

use super::output::{Output, outln};

#[derive(Subcommand, Debug)]
pub enum MemoCommand {
    /// Forget every memoized result.
    Clear,
}

pub fn list(backend: &Backend, out: &Output) -> anyhow::Result<()> {
    let (config, abilities) = backend.abilities()?;
    if out.json(&json!({ "config": config, "abilities": abilities }))? {
        return Ok(());
    }
    outln!("bindings from {config}");
    let width = abilities.iter().map(|a| a.ability.len()).max().unwrap_or(0);
    for info in &abilities {
        outln!(
            "{:<width$}  {:<28}  {}",
            info.ability,
            info.operations.join(", "),
            info.provider
                .as_deref()
                .unwrap_or("(declared, not bound on this node)")
        );
    }
    Ok(())
}

pub fn memo(command: &MemoCommand, backend: &Backend, out: &Output) -> anyhow::Result<()> {
    match command {
        MemoCommand::Clear => {
            let cleared = backend.clear_memo()?;
            if !out.json(&json!({ "cleared": cleared }))? {
                outln!("{cleared} memoized results forgotten");
            }
            Ok(())
        }
    }
}
