//! `spore dev`: the edit loop. Builds a guest crate, runs its native tests, publishes its
//! modules and moves their names to the new hashes; then waits for the sources to
//! change and does it again, until stopped.

mod watch;

use clap::Args;
use spore_core::Name;
use spore_node::Home;

use super::backend::Backend;
use super::exit::UsageError;
use super::output::{Output, errln};
use super::publish;

#[derive(Args, Debug)]
pub struct DevArgs {
    /// The crate, and the names: with no `--name`, each module by its own name (the
    /// crate's name with `_` for `-`).
    #[command(flatten)]
    pub krate: publish::CrateArgs,
    /// Do not run the crate's native tests (`cargo test`) before publishing.
    #[arg(long)]
    pub no_test: bool,
}

pub fn dev(args: &DevArgs, home: &Home, out: &Output) -> anyhow::Result<()> {
    let dir = std::path::absolute(&args.krate.dir)?;
    if !dir.join("Cargo.toml").is_file() {
        return Err(spore_build::BuildError::NotACrate(dir).into());
    }
    // The target directory may be inside the crate under another name than `target`.
    let ignored = publish::build_options(&args.krate.package, home)?
        .target_dir
        .or_else(spore_build::target_dir_from_environment)
        .map(|target| std::path::absolute(target).unwrap_or_default())
        .into_iter()
        .collect();
    let mut sources = watch::Sources::new(&dir, ignored);
    loop {
        // A failed round (a compile error, a failing test, a node that went away) is
        // reported and the loop goes on: the next save may fix it.
        if let Err(error) = round(args, &dir, home, out) {
            super::report(&error, out.is_json());
        }
        errln!("watching {} for changes (Ctrl-C to stop)", dir.display());
        let changed = sources.wait_for_change();
        let first = changed.first().map(|path| path.display().to_string());
        errln!(
            "changed: {}{}",
            first.unwrap_or_default(),
            match changed.len() {
                0 | 1 => String::new(),
                more => format!(" and {} more", more - 1),
            }
        );
    }
}

/// One build, test and publish; the names move only when all of it succeeded, so they
/// keep pointing at the last version that built and passed its tests.
fn round(args: &DevArgs, dir: &std::path::Path, home: &Home, out: &Output) -> anyhow::Result<()> {
    let built = args.krate.build(home)?;
    let names = built
        .iter()
        .map(|module| match &args.krate.name {
            Some(name) => Ok(name.clone()),
            None => module.name.parse::<Name>().map_err(|error| {
                UsageError(format!("the module {} needs --name: {error}", module.name))
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !args.no_test {
        spore_build::test_native(dir, &publish::build_options(&args.krate.package, home)?)?;
    }
    // Found again each round: a node may have started or stopped on the home since.
    let backend = Backend::for_home(home)?;
    let name_of = |module: &spore_build::BuiltModule| {
        let index = built.iter().position(|built| built.path == module.path)?;
        Some(names[index].clone())
    };
    publish::publish_modules(&built, name_of, None, &backend, out)
}
