//! `spore publish`, `spore build` and `spore hash`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use spore_core::{Hash, Name};
use spore_node::{Home, Published};

use super::backend::Backend;
use super::progress::Steps;

use super::output::{Output, bytes, errln, outln};

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// The compiled module (`.wasm`).
    pub file: PathBuf,
    /// Name the function (a module with several functions: `NAME.function` each).
    #[arg(long)]
    pub name: Option<Name>,
    /// Also publish the names to the mesh, signed with the home's key named KEY
    /// (`spore key new KEY`); nodes whose `[trust.names]` trust that key believe them.
    #[arg(long, value_name = "KEY", requires = "name")]
    pub sign: Option<String>,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub krate: CrateArgs,
    /// Also publish the names to the mesh, signed with the home's key named KEY.
    #[arg(long, value_name = "KEY", requires = "name")]
    pub sign: Option<String>,
}

/// What `spore build` and `spore dev` build, and how the modules are named.
#[derive(Args, Debug)]
pub struct CrateArgs {
    /// A guest crate (or a workspace of them) using spore-guest.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Name the functions `NAME.function`, as with `spore publish --name` (only when one
    /// module is built).
    #[arg(long)]
    pub name: Option<Name>,
    /// Build only these packages of a workspace (repeatable).
    #[arg(long, short)]
    pub package: Vec<String>,
}

impl CrateArgs {
    /// Builds the modules (see [`build_modules`]); more than one with `--name` is refused.
    pub(super) fn build(&self, home: &Home) -> anyhow::Result<Vec<spore_build::BuiltModule>> {
        let built = build_modules(&self.dir, &self.package, home)?;
        if self.name.is_some() && built.len() > 1 {
            return Err(super::exit::UsageError(format!(
                "--name needs exactly one module, but {} were built; pick one with --package",
                built.len()
            ))
            .into());
        }
        Ok(built)
    }
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
    report(&published, args.sign.as_deref(), backend, out)
}

pub fn build(args: &BuildArgs, home: &Home, out: &Output) -> anyhow::Result<()> {
    let built = args.krate.build(home)?;
    // Opened after the build: a build can take minutes, and a node may start meanwhile.
    let backend = Backend::for_home(home)?;
    publish_modules(
        &built,
        |_| args.krate.name.clone(),
        args.sign.as_deref(),
        &backend,
        out,
    )
}

/// Builds the guest crate at `dir` as a user's build: their `RUSTFLAGS`,
/// `CARGO_TARGET_DIR` and `RUSTC_WRAPPER` apply, and without a target directory of
/// theirs every crate shares the home's ([`Home::build_target_dir`]).
pub(super) fn build_modules(
    dir: &Path,
    packages: &[String],
    home: &Home,
) -> anyhow::Result<Vec<spore_build::BuiltModule>> {
    spore_build::ensure_wasm_target()?;
    Ok(spore_build::build_guest(
        dir,
        &build_options(packages, home)?,
    )?)
}

/// The options of a user's build on `home` (see [`build_modules`]).
pub(super) fn build_options(
    packages: &[String],
    home: &Home,
) -> anyhow::Result<spore_build::BuildOptions> {
    let target_dir = match spore_build::target_dir_from_environment() {
        Some(_) => None,
        None => Some(std::path::absolute(home.build_target_dir())?),
    };
    Ok(spore_build::BuildOptions {
        target_dir,
        packages: packages.to_vec(),
        environment: spore_build::Environment::User,
        // `spore new` puts the SDK inside the crate, under the workspace root remapped
        // anyway.
        remap: Vec::new(),
    })
}

/// Publishes each built module, named as `name_of` says, and reports each.
pub(super) fn publish_modules(
    built: &[spore_build::BuiltModule],
    name_of: impl Fn(&spore_build::BuiltModule) -> Option<Name>,
    sign: Option<&str>,
    backend: &Backend,
    out: &Output,
) -> anyhow::Result<()> {
    // cargo, above, draws its own progress on the terminal; a bar of ours over it would
    // overwrite its lines. Ours counts the modules as each is hashed and published (the
    // node compiles it then, which can take seconds).
    let steps = Steps::new(out, "publishing", built.len());
    for module in built {
        steps.begin(&module.name);
        let bytes = read(&module.path)?;
        let published = backend.publish(&bytes, name_of(module).as_ref())?;
        steps.print(|| {
            out.text(format!("{}: {}", module.name, module.path.display()));
            report(&published, sign, backend, out)
        })?;
    }
    Ok(())
}

/// Prints what was published; with `sign`, first signs and spreads a publication of
/// each name set (then `--json` gives `{"published", "publications"}`).
fn report(
    published: &Published,
    sign: Option<&str>,
    backend: &Backend,
    out: &Output,
) -> anyhow::Result<()> {
    let mut publications = Vec::new();
    if let Some(key) = sign {
        for (name, target) in &published.names {
            publications.push(backend.publish_name(name, Some(&target.to_string()), key)?);
        }
        if out.json(&serde_json::json!({ "published": published, "publications": publications }))? {
            return Ok(());
        }
    } else if out.json(published)? {
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
    for publication in &publications {
        errln!(
            "  published {} #{} to the mesh, signed by {key} ({})",
            publication.name,
            publication.seq,
            publication.publisher,
            key = sign.unwrap_or_default()
        );
    }
    Ok(())
}

fn read(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}
