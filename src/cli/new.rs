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
    // The name and the directory are checked before anything is written, the SDK
    // included.
    match args.lang {
        Lang::Rust => template::validate_name(&args.name)?,
        Lang::Ts => typescript::validate_name(&args.name)?,
    }
    let dir = std::path::absolute(args.path.as_ref().unwrap_or(&PathBuf::from(&args.name)))?;
    if !template::is_free(&dir)? {
        return Err(template::NewError::NotEmpty(dir).into());
    }
    let (created, sdk_dir, what, next) = match args.lang {
        Lang::Rust => {
            let created = template::write_crate(&dir, &args.name)?;
            let sdk_dir = created.dir.join(sdk::DIR);
            let what = format!(
                "the function crate {} (spore-guest {}",
                created.name,
                sdk::VERSION
            );
            let next = format!(
                "`cargo test` in it, then `spore build {dir}` or `spore dev {dir}`",
                dir = created.dir.display()
            );
            (created, sdk_dir, what, next)
        }
        Lang::Ts => {
            let sdk_dir = typescript::install(&std::path::absolute(home.typescript_sdk_dir())?)?;
            let created = typescript::write_project(&dir, &args.name, &sdk_dir)?;
            let what = format!("the TypeScript project {} (spore-sdk", created.name);
            let next = format!(
                "`npm install && npm run build` in it, then `spore publish build/{name}.wasm --name {name}`",
                name = created.name
            );
            (created, sdk_dir, what, next)
        }
    };
    if out.json(&serde_json::json!({
        "name": created.name,
        "dir": created.dir,
        "files": created.files,
        "sdk": sdk_dir,
    }))? {
        return Ok(());
    }
    outln!("{}", created.dir.display());
    errln!("  created {what} from {})", sdk_dir.display());
    errln!("  next: {next}");
    Ok(())
}
