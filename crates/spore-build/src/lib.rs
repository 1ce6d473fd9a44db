//! Builds spore function crates into WebAssembly modules by running cargo.
//!
//! A function crate is an ordinary Rust `cdylib` using `spore-guest`; this crate runs
//! `cargo build --release --target wasm32-unknown-unknown` on it and reports the `.wasm`
//! files cargo produced. It is used by the `spore` CLI and by build scripts, so it
//! shields the inner cargo from the environment an outer cargo leaves behind.
//!
//! A build is reproducible: the directories whose paths the compiler could write into a
//! module (the crate's own, cargo's home, and any the caller names) are rewritten to
//! fixed ones with `--remap-path-prefix`, added to the user's own flags, so the same
//! sources give the same module, and the same hash, wherever they are.
//!
//! It knows nothing about what is inside a module (that is the runtime's business), nor
//! about stores or nodes: it only drives cargo.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde::Deserialize;

mod flags;

pub use flags::{
    RustFlags, add_rustflags, cargo_home, remap_flags, source_name, target_dir_from_environment,
};

/// The target every spore module is built for.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// What went wrong while preparing or running a build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("`{command}` failed ({status}){detail}")]
    CommandFailed {
        command: String,
        status: ExitStatus,
        /// What the command printed on stderr, when it was captured (starts with a newline).
        detail: String,
    },
    #[error(
        "the {WASM_TARGET} target is not installed and rustup is not available to install it; \
         install the target's standard library for your Rust toolchain"
    )]
    RustupMissing,
    #[error("{} is not a cargo crate or workspace: it has no Cargo.toml", .0.display())]
    NotACrate(PathBuf),
    #[error("cannot read cargo's output: {0}")]
    Output(#[source] io::Error),
    #[error("cargo printed a message that is not valid JSON ({source}): {line}")]
    BadMessage {
        line: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cargo build of {} failed; the compiler's errors are above ({status})", .dir.display())]
    CargoFailed { dir: PathBuf, status: ExitStatus },
    #[error("the native tests of {} failed; cargo's report is above ({status})", .dir.display())]
    TestsFailed { dir: PathBuf, status: ExitStatus },
    #[error(
        "building {} produced no WebAssembly module: a spore function crate needs \
         `crate-type = [\"cdylib\"]` in the [lib] section of its Cargo.toml",
        .dir.display()
    )]
    NoCdylib { dir: PathBuf },
}

/// Options for [`build_guest`].
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Where cargo puts its output (`--target-dir`); else what the environment or cargo's
    /// configuration says, else `target/` of the workspace.
    pub target_dir: Option<PathBuf>,
    /// Build only these packages (`cargo -p`); all default members if empty.
    pub packages: Vec<String>,
    /// Which of this process's variables the inner cargo sees.
    pub environment: Environment,
    /// Path prefixes rewritten in what the compiler emits, as `(prefix, replacement)`,
    /// besides the two always rewritten (see [`remap_flags`]).
    pub remap: Vec<(PathBuf, String)>,
}

/// Which of this process's environment variables reach the inner cargo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Environment {
    /// For a build script, or any program an outer cargo runs: every variable in
    /// [`is_leaked_cargo_variable`] is removed, including the user's `RUSTFLAGS`,
    /// `CARGO_TARGET_DIR` and `RUSTC_WRAPPER`, which were meant for the outer, native
    /// build (and whose target directory the outer cargo holds locked).
    #[default]
    Isolated,
    /// For a person building their crate: only what cargo sets for the programs it runs
    /// ([`is_set_by_cargo`]) is removed, so the user's `RUSTFLAGS` (or
    /// `CARGO_ENCODED_RUSTFLAGS`), `CARGO_TARGET_DIR` and `RUSTC_WRAPPER` apply.
    User,
}

/// One module produced by a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltModule {
    /// The crate name of the `cdylib` target (`my_fn` for a package `my-fn`), which is
    /// also the file stem of the module.
    pub name: String,
    /// The `.wasm` file.
    pub path: PathBuf,
    /// The `Cargo.toml` of the package the module was built from.
    pub manifest_path: PathBuf,
}

/// Makes sure the standard library for [`WASM_TARGET`] is installed, installing it with
/// `rustup target add` when it is missing.
pub fn ensure_wasm_target() -> Result<(), BuildError> {
    if wasm_target_installed()? {
        return Ok(());
    }
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", WASM_TARGET]);
    let output = match rustup.stdout(Stdio::null()).output() {
        Ok(output) => output,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(BuildError::RustupMissing);
        }
        Err(source) => {
            return Err(BuildError::Spawn {
                program: "rustup".to_owned(),
                source,
            });
        }
    };
    if !output.status.success() {
        return Err(BuildError::CommandFailed {
            command: format!("rustup target add {WASM_TARGET}"),
            status: output.status,
            detail: stderr_detail(&output.stderr),
        });
    }
    Ok(())
}

/// Looks in the sysroot rather than asking rustup, so toolchains that are not managed by
/// rustup (distribution packages, custom builds) are handled too.
fn wasm_target_installed() -> Result<bool, BuildError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let output = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| BuildError::Spawn {
            program: rustc.to_string_lossy().into_owned(),
            source,
        })?;
    if !output.status.success() {
        return Err(BuildError::CommandFailed {
            command: format!("{} --print sysroot", rustc.to_string_lossy()),
            status: output.status,
            detail: stderr_detail(&output.stderr),
        });
    }
    let sysroot = String::from_utf8_lossy(&output.stdout);
    let target_lib = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(WASM_TARGET)
        .join("lib");
    Ok(target_lib.is_dir())
}

fn stderr_detail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!("\n{text}")
    }
}

/// Builds the crate or workspace at `dir` (a directory, or the path of its
/// `Cargo.toml`) in release mode for [`WASM_TARGET`] and returns its modules, sorted by
/// name.
///
/// Compiler diagnostics go to this process's stderr as cargo renders them. The inner
/// cargo sees this process's environment as [`BuildOptions::environment`] says; the
/// default, [`Environment::Isolated`], is safe to use from `build.rs`. Paths are
/// remapped: cargo's home to `/cargo`, the workspace's root directory to `/spore/<its
/// package name>` (a virtual workspace: its directory's name), and `options.remap` in
/// between. Call [`ensure_wasm_target`] first if the target may
/// be missing.
pub fn build_guest(dir: &Path, options: &BuildOptions) -> Result<Vec<BuiltModule>, BuildError> {
    let (mut command, manifest, kept) = cargo_command("build", dir, options)?;
    let dir = manifest.parent().expect("a manifest path has a parent");
    command
        .args(["--release", "--target", WASM_TARGET])
        .arg("--message-format=json-render-diagnostics");
    // rustc runs in the workspace's root, and sees the paths of the workspace's members
    // relative to it and every other path whole: the root is what to rewrite.
    let root = workspace_root(&manifest);
    let mut remap = vec![(cargo_home(), "/cargo".to_owned())];
    remap.extend(options.remap.iter().cloned());
    remap.push((
        root.parent()
            .expect("a manifest path has a parent")
            .to_path_buf(),
        format!("/spore/{}", source_name(&root)),
    ));
    match add_rustflags(&kept, &remap_flags(&remap)) {
        RustFlags::Environment(flags) => {
            command
                .env_remove("RUSTFLAGS")
                .env("CARGO_ENCODED_RUSTFLAGS", flags);
        }
        RustFlags::Config(value) => {
            command.arg("--config").arg(value);
        }
    }
    command.stdout(Stdio::piped()).stderr(Stdio::inherit());

    let mut child = spawn(&mut command)?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let parsed = collect_modules(BufReader::new(stdout));
    // Wait even when parsing failed, so no zombie is left behind.
    let status = child.wait().map_err(BuildError::Output)?;
    let mut modules = parsed?;
    if !status.success() {
        return Err(BuildError::CargoFailed {
            dir: dir.to_path_buf(),
            status,
        });
    }
    if modules.is_empty() {
        return Err(BuildError::NoCdylib {
            dir: dir.to_path_buf(),
        });
    }
    modules.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(modules)
}

/// Runs the native tests of the crate or workspace at `dir` (`cargo test` for the host),
/// in the environment and target directory `options` give; cargo's whole output goes
/// to this process's stderr. Fails with [`BuildError::TestsFailed`] when a test does.
pub fn test_native(dir: &Path, options: &BuildOptions) -> Result<(), BuildError> {
    let (mut command, manifest, _) = cargo_command("test", dir, options)?;
    // Test results are printed on stdout; this process's stdout is for its own results.
    command
        .arg("--quiet")
        .stdout(Stdio::from(io::stderr()))
        .stderr(Stdio::inherit());
    let status = spawn(&mut command)?.wait().map_err(BuildError::Output)?;
    if !status.success() {
        return Err(BuildError::TestsFailed {
            dir: manifest
                .parent()
                .expect("a manifest path has a parent")
                .to_path_buf(),
            status,
        });
    }
    Ok(())
}

/// `cargo <subcommand>` for the crate at `dir` (a directory or its `Cargo.toml`): with
/// its manifest, target directory and packages, run in the crate's directory, in the
/// environment `options.environment` allows. Returns the command, the manifest's
/// absolute path, and the variables of this process the command keeps.
fn cargo_command(
    subcommand: &str,
    dir: &Path,
    options: &BuildOptions,
) -> Result<(Command, PathBuf, Environ), BuildError> {
    let (dir, manifest) = if dir.is_file() {
        (dir.parent().unwrap_or(Path::new(".")), dir.to_path_buf())
    } else {
        (dir, dir.join("Cargo.toml"))
    };
    if !manifest.is_file() {
        return Err(BuildError::NotACrate(dir.to_path_buf()));
    }
    // cargo runs in the crate's directory (below), so relative paths the caller gave
    // must be made absolute against the caller's directory first.
    let manifest = std::path::absolute(&manifest).map_err(BuildError::Output)?;
    let dir = manifest.parent().expect("a manifest path has a parent");
    let mut command = Command::new(cargo_program());
    command
        .arg(subcommand)
        .arg("--manifest-path")
        .arg(&manifest);
    if let Some(target_dir) = &options.target_dir {
        command
            .arg("--target-dir")
            .arg(std::path::absolute(target_dir).map_err(BuildError::Output)?);
    }
    for package in &options.packages {
        command.arg("--package").arg(package);
    }
    // cargo reads `.cargo/config.toml` from the working directory up, not from the
    // manifest, so run it where the crate is.
    command.current_dir(dir);
    let removed = match options.environment {
        Environment::Isolated => is_leaked_cargo_variable,
        Environment::User => is_set_by_cargo,
    };
    let mut kept = Vec::new();
    for (name, value) in std::env::vars_os() {
        match name.to_str() {
            Some(text) if removed(text) => {
                command.env_remove(&name);
            }
            _ => kept.push((name, value)),
        }
    }
    Ok((command, manifest, kept))
}

/// The manifest of the workspace `manifest` belongs to, as `cargo locate-project`
/// finds it; `manifest` itself when cargo cannot say (the build then reports why).
fn workspace_root(manifest: &Path) -> PathBuf {
    let output = Command::new(cargo_program())
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .arg("--manifest-path")
        .arg(manifest)
        .stderr(Stdio::null())
        .output();
    match output {
        Ok(output) if output.status.success() => {
            PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
        }
        _ => manifest.to_path_buf(),
    }
}

/// Environment variables, as `(name, value)`.
type Environ = Vec<(OsString, OsString)>;

fn cargo_program() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"))
}

fn spawn(command: &mut Command) -> Result<std::process::Child, BuildError> {
    command.spawn().map_err(|source| BuildError::Spawn {
        program: cargo_program().to_string_lossy().into_owned(),
        source,
    })
}

fn collect_modules(output: impl BufRead) -> Result<Vec<BuiltModule>, BuildError> {
    let mut modules = Vec::new();
    for line in output.lines() {
        let line = line.map_err(BuildError::Output)?;
        if let Some(module) = parse_message(&line)? {
            modules.push(module);
        }
    }
    Ok(modules)
}

/// Whether `name` is one of the variables cargo sets for build scripts (or a user set
/// for the outer, native build) that would misdirect a nested cargo building wasm:
/// flags meant for the host target, the outer target directory (whose lock the outer
/// cargo holds), wrappers such as clippy-driver, the jobserver, package metadata and
/// profile overrides.
pub fn is_leaked_cargo_variable(name: &str) -> bool {
    is_build_configuration(name) || is_set_by_cargo(name)
}

/// Whether `name` configures a cargo build: flags, target directory, wrappers, profile
/// overrides. A user sets these on purpose for their own build.
fn is_build_configuration(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_RUSTC_WRAPPER",
        "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ];
    EXACT.contains(&name) || name.starts_with("CARGO_PROFILE_")
}

/// Whether `name` is set by cargo for a program it runs (a build script, a test, `cargo
/// run`) and describes that program's package or build, never the one spore starts:
/// the jobserver, package metadata, cfgs, features, links.
pub fn is_set_by_cargo(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "CARGO_MAKEFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_RUSTC_CURRENT_DIR",
        "RUSTC_LINKER",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "NUM_JOBS",
    ];
    const PREFIXES: &[&str] = &[
        "CARGO_PKG_",
        "CARGO_CFG_",
        "CARGO_FEATURE_",
        "DEP_",
        "__CARGO",
    ];
    EXACT.contains(&name) || PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    filenames: Vec<PathBuf>,
    #[serde(default)]
    manifest_path: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

/// Interprets one line of `cargo build --message-format=json` output: the module of a
/// `compiler-artifact` message for a `cdylib` target, `None` for anything else.
///
/// Lines that are not JSON objects are skipped (a wrapper script may print some); a
/// line that looks like one but does not parse is an error.
pub fn parse_message(line: &str) -> Result<Option<BuiltModule>, BuildError> {
    let line = line.trim();
    if !line.starts_with('{') {
        return Ok(None);
    }
    let message: Message = serde_json::from_str(line).map_err(|source| BuildError::BadMessage {
        line: line.to_owned(),
        source,
    })?;
    if message.reason != "compiler-artifact" {
        return Ok(None);
    }
    let (Some(target), Some(manifest_path)) = (message.target, message.manifest_path) else {
        return Ok(None);
    };
    if !target.kind.iter().any(|kind| kind == "cdylib") {
        return Ok(None);
    }
    let wasm = message.filenames.into_iter().find(|file| {
        file.extension()
            .is_some_and(|extension| extension == "wasm")
    });
    Ok(wasm.map(|path| BuiltModule {
        name: target.name,
        path,
        manifest_path,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real lines from `cargo build --release --target wasm32-unknown-unknown
    // --message-format=json-render-diagnostics` with cargo 1.95.
    const CDYLIB: &str = r#"{"reason":"compiler-artifact","package_id":"path+file:///work/main/codebase/arith#0.1.0","manifest_path":"/work/main/codebase/arith/Cargo.toml","target":{"kind":["cdylib"],"crate_types":["cdylib"],"name":"arith","src_path":"/work/main/codebase/arith/src/lib.rs","edition":"2024","doc":true,"doctest":false,"test":true},"profile":{"opt_level":"3","debuginfo":0,"debug_assertions":false,"overflow_checks":false,"test":false},"features":[],"filenames":["/work/main/codebase/target/wasm32-unknown-unknown/release/arith.wasm"],"executable":null,"fresh":true}"#;
    const CDYLIB_AND_RLIB: &str = r#"{"reason":"compiler-artifact","package_id":"path+file:///tmp/spore-check/scratch#my-fn@0.1.0","manifest_path":"/tmp/spore-check/scratch/Cargo.toml","target":{"kind":["cdylib","rlib"],"crate_types":["cdylib","rlib"],"name":"my_fn","src_path":"/tmp/spore-check/scratch/src/lib.rs","edition":"2024","doc":true,"doctest":true,"test":true},"profile":{"opt_level":"3","debuginfo":0,"debug_assertions":false,"overflow_checks":false,"test":false},"features":[],"filenames":["/tmp/spore-check/scratch/target/wasm32-unknown-unknown/release/my_fn.wasm","/tmp/spore-check/scratch/target/wasm32-unknown-unknown/release/libmy_fn.rlib"],"executable":null,"fresh":false}"#;
    const LIBRARY: &str = r#"{"reason":"compiler-artifact","package_id":"registry+https://github.com/rust-lang/crates.io-index#serde@1.0.229","manifest_path":"/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde-1.0.229/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"serde","src_path":"/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde-1.0.229/src/lib.rs","edition":"2021","doc":true,"doctest":true,"test":true},"profile":{"opt_level":"3","debuginfo":0,"debug_assertions":false,"overflow_checks":false,"test":false},"features":["alloc","default","derive","serde_derive","std"],"filenames":["/work/main/codebase/target/wasm32-unknown-unknown/release/deps/libserde-f984e3fcbfb3ac5a.rlib","/work/main/codebase/target/wasm32-unknown-unknown/release/deps/libserde-f984e3fcbfb3ac5a.rmeta"],"executable":null,"fresh":true}"#;
    const BUILD_SCRIPT: &str = r#"{"reason":"build-script-executed","package_id":"registry+https://github.com/rust-lang/crates.io-index#serde@1.0.229","linked_libs":[],"linked_paths":[],"cfgs":["if_docsrs_then_no_serde_core"],"env":[],"out_dir":"/work/main/codebase/target/wasm32-unknown-unknown/release/build/serde-e5adf7cea1e7088e/out"}"#;
    const FINISHED: &str = r#"{"reason":"build-finished","success":true}"#;

    #[test]
    fn cdylib_artifact_gives_its_wasm_file() {
        assert_eq!(
            parse_message(CDYLIB).unwrap(),
            Some(BuiltModule {
                name: "arith".to_owned(),
                path: "/work/main/codebase/target/wasm32-unknown-unknown/release/arith.wasm".into(),
                manifest_path: "/work/main/codebase/arith/Cargo.toml".into(),
            })
        );
    }

    #[test]
    fn cdylib_that_is_also_an_rlib_gives_only_the_wasm_file() {
        let module = parse_message(CDYLIB_AND_RLIB).unwrap().unwrap();
        assert_eq!(module.name, "my_fn");
        assert_eq!(
            module.path,
            Path::new("/tmp/spore-check/scratch/target/wasm32-unknown-unknown/release/my_fn.wasm")
        );
    }

    #[test]
    fn other_messages_are_ignored() {
        for line in [
            LIBRARY,
            BUILD_SCRIPT,
            FINISHED,
            "",
            "   Compiling arith v0.1.0",
        ] {
            assert_eq!(parse_message(line).unwrap(), None, "{line}");
        }
    }

    #[test]
    fn truncated_json_is_an_error() {
        let error = parse_message(&CDYLIB[..40]).unwrap_err();
        assert!(matches!(error, BuildError::BadMessage { .. }), "{error}");
    }

    #[test]
    fn whole_output_yields_every_module() {
        let output = [LIBRARY, BUILD_SCRIPT, CDYLIB, CDYLIB_AND_RLIB, FINISHED].join("\n");
        let names: Vec<_> = collect_modules(output.as_bytes())
            .unwrap()
            .into_iter()
            .map(|module| module.name)
            .collect();
        assert_eq!(names, ["arith", "my_fn"]);
    }

    #[test]
    fn outer_cargo_variables_are_recognised() {
        for leaked in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_MAKEFLAGS",
            "CARGO_PROFILE_RELEASE_LTO",
            "CARGO_PKG_NAME",
            "CARGO_CFG_TARGET_ARCH",
            "RUSTC_WORKSPACE_WRAPPER",
            "__CARGO_FIX_PLZ",
        ] {
            assert!(is_leaked_cargo_variable(leaked), "{leaked}");
        }
        for kept in [
            "CARGO_HOME",
            "CARGO",
            "RUSTC",
            "RUSTUP_TOOLCHAIN",
            "PATH",
            "CARGO_NET_OFFLINE",
        ] {
            assert!(!is_leaked_cargo_variable(kept), "{kept}");
        }
    }
}
