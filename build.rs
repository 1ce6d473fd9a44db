//! Tells the binary which commit it was built from, for `spore --version`
//! (`src/version.rs`): `SPORE_COMMIT`, the short hash and date of the checkout's HEAD.
//!
//! A packager building from a tarball sets `SPORE_BUILD_COMMIT` to what should be shown;
//! without it and without a git checkout of this very package (no git, no `.git`, or
//! the source unpacked inside some other repository) the commit is "unknown commit".
//! Nothing here fails the build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SPORE_BUILD_COMMIT");
    let commit = match std::env::var("SPORE_BUILD_COMMIT") {
        Ok(given) if !given.trim().is_empty() => given.trim().to_owned(),
        _ => from_git().unwrap_or_else(|| "unknown commit".to_owned()),
    };
    println!("cargo:rustc-env=SPORE_COMMIT={commit}");
}

/// `HASH DATE` of HEAD, when the package is the top of a git work tree.
fn from_git() -> Option<String> {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    // A crate unpacked inside someone else's repository must not take its commit.
    let top = git(&manifest_dir, &["rev-parse", "--show-toplevel"])?;
    if !same_dir(Path::new(&top), &manifest_dir) {
        return None;
    }
    watch_head(&manifest_dir);
    git(
        &manifest_dir,
        &["log", "-1", "--format=%h %cs", "--abbrev=12", "HEAD"],
    )
}

/// Reruns this script when HEAD moves: a checkout changes `HEAD`, a commit changes the
/// branch's ref file (or `packed-refs`). Only files that exist are named, since cargo
/// reruns a script on every build when a named file is missing. Paths come from
/// `git rev-parse --git-path`, which knows where a linked worktree keeps them.
fn watch_head(dir: &Path) {
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(
            dir,
            &["rev-parse", "--path-format=absolute", "--git-path", &name],
        ) && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// What `git ARGS` prints in `dir`, trimmed; `None` if git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}
