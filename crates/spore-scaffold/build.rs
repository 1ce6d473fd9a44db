//! Embeds the sources of `spore-guest` and `spore-guest-macros` (every file of both
//! crates but build output) into this crate, so that the `spore` binary can install the
//! SDK it was built with on a machine that has no checkout (src/sdk.rs); and likewise
//! the TypeScript SDK of `sdk/assemblyscript` with its project template
//! (src/typescript.rs).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

/// The crates embedded, as directories next to this one.
const CRATES: [&str; 2] = ["spore-guest", "spore-guest-macros"];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let crates = manifest_dir.parent().expect("this crate is in crates/");

    let mut files = Vec::new();
    for name in CRATES {
        let dir = crates.join(name);
        // A directory is scanned as a whole by cargo: any file added, removed or edited
        // below it rebuilds this crate, and so the binary carries the SDK as it is.
        println!("cargo:rerun-if-changed={}", dir.display());
        collect(&dir, Path::new(name), false, &mut files);
    }
    files.sort();

    let generated = file_list(&files);

    let guest_manifest = fs::read_to_string(crates.join("spore-guest/Cargo.toml"))
        .expect("spore-guest has a Cargo.toml");
    let version = package_version(&guest_manifest).expect("spore-guest's manifest has a version");
    println!("cargo:rustc-env=SPORE_GUEST_VERSION={version}");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    fs::write(out_dir.join("sdk_files.rs"), generated).expect("OUT_DIR is writable");

    // The TypeScript SDK: what its package.json publishes ("files"), and the manifest.
    let typescript = crates
        .parent()
        .expect("crates/ is in the repository")
        .join("sdk/assemblyscript");
    println!("cargo:rerun-if-changed={}", typescript.display());
    let mut sdk_files = Vec::new();
    for entry in ["package.json", "README.md", "index.ts"] {
        sdk_files.push((PathBuf::from(entry), typescript.join(entry)));
    }
    for dir in ["assembly", "bin", "transform"] {
        collect(&typescript.join(dir), Path::new(dir), false, &mut sdk_files);
    }
    sdk_files.sort();
    fs::write(
        out_dir.join("typescript_sdk_files.rs"),
        file_list(&sdk_files),
    )
    .expect("OUT_DIR is writable");
    // The template keeps its dotfiles: `.npmrc` is what makes a `file:` SDK install.
    let mut template = Vec::new();
    collect(
        &typescript.join("template"),
        Path::new(""),
        true,
        &mut template,
    );
    template.sort();
    fs::write(
        out_dir.join("typescript_template_files.rs"),
        file_list(&template),
    )
    .expect("OUT_DIR is writable");
}

/// `files` as the Rust expression of a `&[(&str, &[u8])]`.
fn file_list(files: &[(PathBuf, PathBuf)]) -> String {
    let mut generated = String::from("&[\n");
    for (relative, absolute) in files {
        let relative = relative.to_str().expect("the SDK's file names are UTF-8");
        let absolute = absolute.to_str().expect("the repository has a UTF-8 path");
        writeln!(
            generated,
            "    ({relative:?}, include_bytes!({absolute:?})),"
        )
        .unwrap();
    }
    generated.push(']');
    generated
}

/// Every file below `dir` as `(path under the SDK, absolute path)`, without build output
/// (`target/`, `node_modules/`) and, unless `hidden`, hidden files (editor swap files,
/// `.git`).
fn collect(dir: &Path, relative: &Path, hidden: bool, files: &mut Vec<(PathBuf, PathBuf)>) {
    for entry in fs::read_dir(dir).expect("the SDK's directories are readable") {
        let entry = entry.expect("the SDK's directories are readable");
        let name = entry.file_name();
        let name_text = name.to_string_lossy();
        if (name_text.starts_with('.') && !hidden)
            || ["target", "node_modules", "build", "Cargo.lock"].contains(&&*name_text)
        {
            continue;
        }
        let path = entry.path();
        if entry.file_type().expect("readable").is_dir() {
            collect(&path, &relative.join(&name), hidden, files);
        } else {
            files.push((relative.join(&name), path));
        }
    }
}

/// The `version = "..."` of the `[package]` table: the first such line, which is where
/// the SDK's manifests keep it.
fn package_version(manifest: &str) -> Option<&str> {
    manifest.lines().find_map(|line| {
        let value = line
            .trim()
            .strip_prefix("version")?
            .trim()
            .strip_prefix('=')?;
        Some(value.trim().trim_matches('"'))
    })
}
