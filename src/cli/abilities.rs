//! `spore abilities` and `spore memo`.

use clap::Subcommand;
use serde_json::json;
use spore_node::Node;

use super::output::Output;

#[derive(Subcommand, Debug)]
pub enum MemoCommand {
    /// Forget every memoized result.
    Clear,
}

pub fn list(node: &Node, out: &Output) -> anyhow::Result<()> {
    let abilities = node.abilities();
    if out.json(&json!({ "config": node.config_file(), "abilities": abilities }))? {
        return Ok(());
    }
    println!("bindings from {}", node.config_file().display());
    let width = abilities.iter().map(|a| a.ability.len()).max().unwrap_or(0);
    for info in &abilities {
        println!(
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

pub fn memo(command: &MemoCommand, node: &Node, out: &Output) -> anyhow::Result<()> {
    match command {
        MemoCommand::Clear => {
            let cleared = node.clear_memo()?;
            if !out.json(&json!({ "cleared": cleared }))? {
                println!("{cleared} memoized results forgotten");
            }
            Ok(())
        }
    }
}
