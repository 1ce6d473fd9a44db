//! Embeds the sources of `spore-guest` and `spore-guest-macros` (every file of both
//! crates but build output) into this crate, so that the `spore` binary can install the
//! SDK it was built with on a machine that has no checkout (src/sdk.rs).

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
        collect(&dir, Path::new(name), &mut files);
    }
    files.sort();

    let mut generated = String::from("&[\n");
    for (relative, absolute) in &files {
        let relative = relative.to_str().expect("the SDK's file names are UTF-8");
        let absolute = absolute.to_str().expect("the repository has a UTF-8 path");
        writeln!(
            generated,
            "    ({relative:?}, include_bytes!({absolute:?})),"
        )
        .unwrap();
    }
    generated.push(']');

    let guest_manifest = fs::read_to_string(crates.join("spore-guest/Cargo.toml"))
        .expect("spore-guest has a Cargo.toml");
    let version = package_version(&guest_manifest).expect("spore-guest's manifest has a version");
    println!("cargo:rustc-env=SPORE_GUEST_VERSION={version}");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("sdk_files.rs");
    fs::write(out, generated).expect("OUT_DIR is writable");
}

/// Every file below `dir` as `(path under the SDK, absolute path)`, without build output
/// (`target/`) and hidden files (editor swap files, `.git`).
fn collect(dir: &Path, relative: &Path, files: &mut Vec<(PathBuf, PathBuf)>) {
    for entry in fs::read_dir(dir).expect("the SDK's directories are readable") {
        let entry = entry.expect("the SDK's directories are readable");
        let name = entry.file_name();
        let name_text = name.to_string_lossy();
        if name_text.starts_with('.') || name_text == "target" || name_text == "Cargo.lock" {
            continue;
        }
        let path = entry.path();
        if entry.file_type().expect("readable").is_dir() {
            collect(&path, &relative.join(&name), files);
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
