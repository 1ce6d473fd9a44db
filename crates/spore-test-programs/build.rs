//! Builds every crate of `codebase/` for wasm32 and generates the constants `lib.rs`
//! includes. The modules go to `codebase/target`, the target directory a plain `cargo
//! build` in `codebase/` uses, so the CLI, scripts and tests share one build.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("this crate is in crates/ of the spore repository");
    let codebase = root.join("codebase");

    watch_sources(&codebase, &root.join("crates"));

    if let Err(error) = spore_build::ensure_wasm_target() {
        panic!("cannot build codebase/: {error}");
    }
    // Isolated (the default): this script's environment is the outer cargo's.
    let options = spore_build::BuildOptions {
        target_dir: Some(codebase.join("target")),
        ..Default::default()
    };
    let modules = match spore_build::build_guest(&codebase, &options) {
        Ok(modules) => modules,
        Err(error) => panic!("cannot build codebase/: {error}"),
    };

    let mut generated = String::new();
    for module in &modules {
        let path = module.path.to_str().expect("codebase/ has a UTF-8 path");
        writeln!(
            generated,
            "/// The `{name}` module, built from `codebase/`.\n\
             pub const {constant}: &str = {path:?};",
            name = module.name,
            constant = module.name.to_uppercase(),
        )
        .unwrap();
    }
    generated.push_str(
        "\n/// Every module as `(name, path)`, by name.\npub const ALL: &[(&str, &str)] = &[\n",
    );
    for module in &modules {
        writeln!(
            generated,
            "    ({:?}, {}),",
            module.name,
            module.name.to_uppercase()
        )
        .unwrap();
    }
    generated.push_str("];\n");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("modules.rs");
    fs::write(&out, generated).expect("OUT_DIR is writable");
}

/// Asks cargo to rerun this script when a guest's sources or manifests change, but not
/// when `codebase/target` does (watching `codebase/` as a whole would rerun it forever).
/// A new crate is noticed because it must be added to the members in
/// `codebase/Cargo.toml`.
fn watch_sources(codebase: &Path, crates: &Path) {
    for file in ["Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", codebase.join(file).display());
    }
    let members = fs::read_dir(codebase).expect("codebase/ is readable");
    for member in members {
        let member = member.expect("codebase/ is readable").path();
        if member.join("Cargo.toml").is_file() {
            println!(
                "cargo:rerun-if-changed={}",
                member.join("Cargo.toml").display()
            );
            println!("cargo:rerun-if-changed={}", member.join("src").display());
            if member.join("build.rs").is_file() {
                println!(
                    "cargo:rerun-if-changed={}",
                    member.join("build.rs").display()
                );
            }
        }
    }
    for sdk in ["spore-guest", "spore-guest-macros"] {
        println!(
            "cargo:rerun-if-changed={}",
            crates.join(sdk).join("Cargo.toml").display()
        );
        println!(
            "cargo:rerun-if-changed={}",
            crates.join(sdk).join("src").display()
        );
    }
}
