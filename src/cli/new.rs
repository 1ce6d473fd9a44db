//! `spore new`: a function crate ready to build, outside any checkout of spore.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use spore_node::Home;
use spore_scaffold::{sdk, template, typescript};

use super::output::{Output, errln, outln};

#[derive(Args, Debug)]
pub struct NewArgs {
    /// The crate's name (a cargo package name: letters, digits, `-`, `_`).
    pub name: String,
    /// Where to write it (created, or an empty directory); default: ./NAME.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// The language: a Rust crate, or a TypeScript project on AssemblyScript.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Rust,
    #[value(alias = "typescript")]
    Ts,
}

pub fn new(args: &NewArgs, home: &Home, out: &Output) -> anyhow::Result<()> {
    if args.lang == Lang::Ts {
        return new_typescript(args, home, out);
    }
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

/// `spore new NAME --lang ts`: the TypeScript SDK installed under the home, and a
/// project from its template depending on it.
fn new_typescript(args: &NewArgs, home: &Home, out: &Output) -> anyhow::Result<()> {
    typescript::validate_name(&args.name)?;
    let dir = std::path::absolute(args.path.as_ref().unwrap_or(&PathBuf::from(&args.name)))?;
    if !template::is_free(&dir)? {
        return Err(template::NewError::NotEmpty(dir).into());
    }
    let sdk_dir = typescript::install(&std::path::absolute(home.typescript_sdk_dir())?)?;
    let created = typescript::write_project(&dir, &args.name, &sdk_dir)?;
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
        "  created the TypeScript project {} (spore-sdk from {})",
        created.name,
        sdk_dir.display()
    );
    errln!(
        "  next: `npm install && npm run build` in it, then `spore publish build/{}.wasm --name {}`",
        created.name,
        created.name
    );
    Ok(())
}
