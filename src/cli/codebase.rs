//! `spore ls`, `spore inspect`, `spore verify`, `spore rm` and `spore gc`.

use clap::Args;
use spore_node::{Home, ModuleInfo};

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
    for signature in &info.signatures {
        outln!("signature  {signature}");
    }
    for (name, target) in &info.names {
        outln!("name       {name} -> {target}");
    }
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Drop every damaged item (saying what was lost); an index that cannot be opened
    /// is rebuilt from what can still be read.
    #[arg(long)]
    pub repair: bool,
}

pub fn verify(args: &VerifyArgs, home: &Home, out: &Output) -> anyhow::Result<()> {
    let mut salvaged = None;
    let backend = match Backend::for_home(home) {
        Ok(backend) => backend,
        Err(error) if args.repair && damaged_index(&error) => {
            errln!("{error}");
            errln!("rebuilding the index from what can still be read");
            let report = spore_node::salvage_home(home)?;
            salvaged = Some(crate::housekeeping::salvaged(&report));
            Backend::for_home(home)?
        }
        Err(error) => return Err(error),
    };
    let mut report = backend.verify(args.repair)?;
    let mut damaged: Vec<serde_json::Value> =
        report["damaged"].as_array().cloned().unwrap_or_default();
    if let Some(salvaged) = salvaged {
        damaged.extend(salvaged["lost"].as_array().cloned().unwrap_or_default());
        report["salvaged"] = salvaged;
    }
    if !out.json(&report)? {
        let label = if args.repair { "lost" } else { "damaged" };
        for item in &damaged {
            outln!(
                "{label}: {}: {}",
                item["item"].as_str().unwrap_or_default(),
                item["what"].as_str().unwrap_or_default()
            );
        }
        let checked = &report["checked"];
        outln!(
            "{} modules, {} names ({} history events), {} kv records checked; {} damaged{}",
            checked["modules"],
            checked["names"],
            checked["name_events"],
            checked["kv_records"],
            damaged.len(),
            if args.repair && !damaged.is_empty() {
                " and dropped"
            } else {
                ""
            }
        );
    }
    // As fsck does, a check that found damage exits non-zero even when it repaired it.
    match damaged.first() {
        None => Ok(()),
        Some(first) => Err(super::backend::RemoteError {
            kind: spore_node::ErrorKind::Corrupt,
            message: format!(
                "{} damaged item{} found{}, the first: {}",
                damaged.len(),
                if damaged.len() == 1 { "" } else { "s" },
                if args.repair {
                    " and dropped"
                } else {
                    "; `spore verify --repair` drops them"
                },
                first["item"].as_str().unwrap_or_default()
            ),
            value: None,
            suggestions: Vec::new(),
        }
        .into()),
    }
}

/// Whether opening the home failed because its index cannot be opened.
fn damaged_index(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<spore_node::NodeError>()
        .is_some_and(spore_node::NodeError::is_damaged_index)
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// The module: a hash, a unique prefix, or a name pointing into it.
    pub reference: String,
    /// Remove it even though names point into it, and remove those names (their
    /// history keeps where they pointed).
    #[arg(long)]
    pub force: bool,
}

pub fn rm(args: &RmArgs, backend: &Backend, out: &Output) -> anyhow::Result<()> {
    let removed = backend.remove_module(&args.reference, args.force)?;
    if out.json(&removed)? {
        return Ok(());
    }
    outln!("{}", removed["module"].as_str().unwrap_or_default());
    for name in removed["names"].as_array().into_iter().flatten() {
        errln!("  removed name {}", name.as_str().unwrap_or_default());
    }
    Ok(())
}

pub fn gc(backend: &Backend, out: &Output) -> anyhow::Result<()> {
    let report = backend.gc()?;
    if out.json(&report)? {
        return Ok(());
    }
    let modules = report["modules"].as_array().map_or(0, Vec::len);
    outln!(
        "removed {modules} unpublished module files, {} compiled artifacts, {} memo entries",
        report["artifacts"],
        report["memo_entries"]
    );
    Ok(())
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
