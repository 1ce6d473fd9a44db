//! The TypeScript side of the tests: installs the npm packages of `sdk/assemblyscript`
//! and `codebase/ts` (`npm ci`) and builds the TypeScript functions, once per test
//! process, into a directory of this process's own. Skips, loudly, only when `node` or
//! `npm` is not on PATH.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::repo_root;

/// The directory holding the built `codebase/ts` modules (`arith.wasm`, ...), or `None`
/// when node or npm is missing (after saying so on the terminal).
pub fn modules() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT.get_or_init(install_and_build).as_deref()
}

/// The path of the built TypeScript module `name` (`"arith"` for `src/arith.ts`).
pub fn module(dir: &Path, name: &str) -> String {
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.is_file(), "no {}", path.display());
    path.to_str().unwrap().to_owned()
}

pub fn sdk_dir() -> PathBuf {
    repo_root().join("sdk/assemblyscript")
}

/// Runs `program args` in `dir`, panicking with its output when it fails.
pub fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`{program} {}` in {} failed ({}):\n{stdout}\n{stderr}",
        args.join(" "),
        dir.display(),
        output.status
    );
    stdout
}

fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

fn install_and_build() -> Option<PathBuf> {
    if !on_path("node") || !on_path("npm") {
        // Past the test harness's capture, so that a skip is seen, not only a pass.
        let _ = writeln!(
            std::io::stderr(),
            "\n\n*** SKIPPING the TypeScript (AssemblyScript) tests: `node` and `npm` must be on \
             PATH (Debian: apt-get install nodejs npm). They are NOT tested here. ***\n"
        );
        return None;
    }
    // Another test process may be installing into the same directories.
    let lock = File::create(Path::new(env!("CARGO_TARGET_TMPDIR")).join("npm-assemblyscript.lock"))
        .expect("the target's tmp directory is writable");
    lock.lock().expect("lock npm-assemblyscript.lock");
    run(&sdk_dir(), "npm", &["ci", "--no-audit", "--no-fund"]);
    let codebase = repo_root().join("codebase/ts");
    run(&codebase, "npm", &["ci", "--no-audit", "--no-fund"]);
    let out =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("codebase-ts-{}", std::process::id()));
    run(
        &codebase,
        "node",
        &["build.mjs", out.to_str().expect("a UTF-8 target directory")],
    );
    Some(out)
}
