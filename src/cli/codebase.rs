//! `spore ls`, `spore inspect` and `spore verify`.

use clap::Args;
use serde_json::json;
use spore_node::ModuleInfo;

use super::backend::Backend;

use super::output::{Output, bytes, errln, outln};

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A name, a hash or unique prefix, or a function reference.
    pub reference: String,
}

pub fn ls(backend: &Backend, out: &Output) -> anyhow::Result<()> {
    let modules = backend.modules()?;
    if out.json(&modules)? {
        return Ok(());
    }
    if modules.is_empty() {
        errln!("the codebase is empty; publish a module with `spore publish FILE.wasm`");
        return Ok(());
    }
    let functions: Vec<String> = modules
        .iter()
        .map(|m| {
            let names: Vec<&str> = m.manifest.function_names().map(|f| f.as_str()).collect();
            summary(&names, FUNCTIONS_COLUMN)
        })
        .collect();
    let width = functions
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max("FUNCTIONS".len());
    outln!(
        "{:<12}  {:>10}  {:<width$}  NAMES",
        "HASH",
        "SIZE",
        "FUNCTIONS"
    );
    for (module, functions) in modules.iter().zip(&functions) {
        let names: Vec<String> = module.names.iter().map(|(n, _)| n.to_string()).collect();
        outln!(
            "{:<12}  {:>10}  {functions:<width$}  {}",
            module.manifest.module.short(12),
            bytes(module.manifest.size),
            names.join(", ")
        );
    }
    Ok(())
}

pub fn inspect(args: &InspectArgs, backend: &Backend, out: &Output) -> anyhow::Result<()> {
    let info = backend.inspect(&args.reference)?;
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
    outln!("module     {}", manifest.module);
    outln!("manifest   {}", info.manifest_hash);
    outln!(
        "size       {} ({} bytes)",
        bytes(manifest.size),
        manifest.size
    );
    outln!(
        "functions  {}",
        list(
            manifest
                .functions
                .iter()
                .map(|(name, reach)| match reach.as_slice() {
                    [] => format!("{name} (pure)"),
                    reach => format!("{name} ({})", reach.join(", ")),
                })
                .collect()
        )
    );
    outln!(
        "abilities  {}",
        list(manifest.abilities().iter().map(|a| a.to_string()).collect())
    );
    outln!(
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
    outln!(
        "memory     {} initial, {}",
        bytes(memory.initial_pages * 65536),
        memory
            .maximum_pages
            .map(|max| format!("{} maximum", bytes(max * 65536)))
            .unwrap_or_else(|| "no maximum".into())
    );
    for (name, target) in &info.names {
        outln!("name       {name} -> {target}");
    }
}

pub fn verify(backend: &Backend, out: &Output) -> anyhow::Result<()> {
    let (checked, corrupt) = backend.verify()?;
    let report: Vec<_> = corrupt
        .iter()
        .map(|(hash, error)| json!({ "hash": hash, "error": error }))
        .collect();
    if !out.json(&json!({ "checked": checked, "corrupt": report }))? {
        for (_, error) in &corrupt {
            outln!("{error}");
        }
        outln!("{checked} modules checked, {} corrupt", corrupt.len());
    }
    match corrupt.into_iter().next() {
        None => Ok(()),
        Some((hash, error)) => Err(super::backend::RemoteError {
            kind: spore_node::ErrorKind::Corrupt,
            message: format!("module {hash} is corrupt: {error}"),
            value: None,
        }
        .into()),
    }
}

/// How wide `spore ls` lets its functions column grow: a module may export hundreds of
/// long names.
const FUNCTIONS_COLUMN: usize = 60;

/// `names` joined by commas, cut to about `width` characters with a count of the rest.
fn summary(names: &[&str], width: usize) -> String {
    let mut text = String::new();
    for (shown, name) in names.iter().enumerate() {
        let separator = if shown == 0 { "" } else { ", " };
        if text.len() + separator.len() + name.len() > width && shown > 0 {
            text.push_str(&format!(", … {} more", names.len() - shown));
            return text;
        }
        text.push_str(separator);
        text.push_str(name);
    }
    text
}
