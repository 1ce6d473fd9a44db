//! `spore publish`, `spore build` and `spore hash`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use spore_core::{Hash, Name};
use spore_node::Published;

use super::backend::Backend;

use super::output::{Output, bytes, errln, outln};

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// The compiled module (`.wasm`).
    pub file: PathBuf,
    /// Name the function (a module with several functions: `NAME.function` each).
    #[arg(long)]
    pub name: Option<Name>,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// A guest crate (or a workspace of them) using spore-guest.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Name the functions, as with `spore publish --name` (only when one module is built).
    #[arg(long)]
    pub name: Option<Name>,
    /// Build only these packages of a workspace (repeatable).
    #[arg(long, short)]
    pub package: Vec<String>,
}

#[derive(Args, Debug)]
pub struct HashArgs {
    pub file: PathBuf,
}

pub fn hash(args: &HashArgs, out: &Output) -> anyhow::Result<()> {
    let bytes = read(&args.file)?;
    let hash = Hash::of(&bytes);
    if !out.json(&serde_json::json!({ "hash": hash, "file": args.file }))? {
        outln!("{hash}  {}", args.file.display());
    }
    Ok(())
}

pub fn publish(args: &PublishArgs, backend: &Backend, out: &Output) -> anyhow::Result<()> {
    let bytes = read(&args.file)?;
    let published = backend.publish(&bytes, args.name.as_ref())?;
    report(&published, out)
}

pub fn build(args: &BuildArgs, backend: &Backend, out: &Output) -> anyhow::Result<()> {
    let options = spore_build::BuildOptions {
        packages: args.package.clone(),
        ..Default::default()
    };
    let built = spore_build::build_guest(&args.dir, &options)?;
    if args.name.is_some() && built.len() > 1 {
        return Err(super::exit::UsageError(format!(
            "--name needs exactly one module, but {} were built; pick one with --package",
            built.len()
        ))
        .into());
    }
    for module in &built {
        let bytes = read(&module.path)?;
        let published = backend.publish(&bytes, args.name.as_ref())?;
        out.text(format!("{}: {}", module.name, module.path.display()));
        report(&published, out)?;
    }
    Ok(())
}

fn report(published: &Published, out: &Output) -> anyhow::Result<()> {
    if out.json(published)? {
        return Ok(());
    }
    let manifest = &published.manifest;
    outln!("{}", manifest.module);
    let functions: Vec<&str> = manifest.function_names().map(|f| f.as_str()).collect();
    errln!(
        "  {} {}, functions: {}{}",
        if published.new {
            "published"
        } else {
            "already published"
        },
        bytes(manifest.size),
        functions.join(", "),
        match manifest.abilities().as_slice() {
            [] => String::new(),
            abilities => format!(", abilities: {}", abilities.join(", ")),
        }
    );
    for (name, target) in &published.names {
        errln!("  named {name} -> {target}");
    }
    Ok(())
}

fn read(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}
