//! `spore ls`, `spore inspect` and `spore verify`.

use clap::Args;
use serde_json::json;
use spore_node::{ModuleInfo, Node};

use super::output::{Output, bytes};

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A name, a hash or unique prefix, or a function reference.
    pub reference: String,
}

pub fn ls(node: &Node, out: &Output) -> anyhow::Result<()> {
    let modules = node.modules()?;
    if out.json(&modules)? {
        return Ok(());
    }
    if modules.is_empty() {
        eprintln!("the codebase is empty; publish a module with `spore publish FILE.wasm`");
        return Ok(());
    }
    let functions: Vec<String> = modules
        .iter()
        .map(|m| {
            m.manifest
                .functions
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    let width = functions
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max("FUNCTIONS".len());
    println!(
        "{:<12}  {:>10}  {:<width$}  NAMES",
        "HASH", "SIZE", "FUNCTIONS"
    );
    for (module, functions) in modules.iter().zip(&functions) {
        let names: Vec<String> = module.names.iter().map(|(n, _)| n.to_string()).collect();
        println!(
            "{:<12}  {:>10}  {functions:<width$}  {}",
            module.manifest.module.short(12),
            bytes(module.manifest.size),
            names.join(", ")
        );
    }
    Ok(())
}

pub fn inspect(args: &InspectArgs, node: &Node, out: &Output) -> anyhow::Result<()> {
    let info = node.inspect(&args.reference)?;
    if out.json(&info)? {
        return Ok(());
    }
    print_info(&info);
    Ok(())
}

fn print_info(info: &ModuleInfo) {
    let manifest = &info.manifest;
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "(none)".to_owned()
        } else {
            items.join(", ")
        }
    };
    println!("module     {}", manifest.module);
    println!("manifest   {}", info.manifest_hash);
    println!(
        "size       {} ({} bytes)",
        bytes(manifest.size),
        manifest.size
    );
    println!(
        "functions  {}",
        list(manifest.functions.iter().map(|f| f.to_string()).collect())
    );
    println!(
        "abilities  {}",
        list(manifest.abilities().iter().map(|a| a.to_string()).collect())
    );
    println!(
        "imports    {}",
        list(
            manifest
                .imports
                .iter()
                .map(|i| format!("{}.{}", i.ability, i.operation))
                .collect()
        )
    );
    let memory = &manifest.memory;
    println!(
        "memory     {} initial, {}",
        bytes(memory.initial_pages * 65536),
        memory
            .maximum_pages
            .map(|max| format!("{} maximum", bytes(max * 65536)))
            .unwrap_or_else(|| "no maximum".into())
    );
    for (name, target) in &info.names {
        println!("name       {name} -> {target}");
    }
}

pub fn verify(node: &Node, out: &Output) -> anyhow::Result<()> {
    let (checked, failures) = node.verify()?;
    let report: Vec<_> = failures
        .iter()
        .map(|(hash, error)| json!({ "hash": hash, "error": error.to_string() }))
        .collect();
    if !out.json(&json!({ "checked": checked, "corrupt": report }))? {
        for (_, error) in &failures {
            println!("{error}");
        }
        println!("{checked} modules checked, {} corrupt", failures.len());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        let (_, first) = failures.into_iter().next().expect("not empty");
        Err(spore_node::NodeError::from(first).into())
    }
}
