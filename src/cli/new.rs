//! `spore new`: a function crate ready to build, outside any checkout of spore.

use std::path::PathBuf;

use clap::Args;
use spore_node::Home;
use spore_scaffold::{sdk, template};

use super::output::{Output, errln, outln};

#[derive(Args, Debug)]
pub struct NewArgs {
    /// The crate's name (a cargo package name: letters, digits, `-`, `_`).
    pub name: String,
    /// Where to write it (created, or an empty directory); default: ./NAME.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
}

pub fn new(args: &NewArgs, home: &Home, out: &Output) -> anyhow::Result<()> {
    // Checked before anything is written, the SDK included.
    template::validate_name(&args.name)?;
    let dir = std::path::absolute(args.path.as_ref().unwrap_or(&PathBuf::from(&args.name)))?;
    if !template::is_free(&dir)? {
        return Err(template::NewError::NotEmpty(dir).into());
    }
    let sdk_dir = sdk::install(&std::path::absolute(home.rust_sdk_dir())?)?;
    let created = template::write_crate(&dir, &args.name, &sdk_dir)?;
    if out.json(&serde_json::json!({
        "name": created.name,
        "dir": created.dir,
        "files": created.files,
        "sdk": sdk_dir,
    }))? {
        return Ok(());
    }
    outln!("{}", created.dir.display());
    errln!(
        "  created the function crate {} (spore-guest {} from {})",
        created.name,
        sdk::VERSION,
        sdk_dir.display()
    );
    errln!(
        "  next: `cargo test` in it, then `spore build {dir}` or `spore dev {dir}`",
        dir = created.dir.display()
    );
    Ok(())
}
