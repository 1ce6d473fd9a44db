//! Builds spore function crates into WebAssembly modules by running cargo.
//!
//! A function crate is an ordinary Rust `cdylib` using `spore-guest`; this crate runs
//! `cargo build --release --target wasm32-unknown-unknown` on it and reports the `.wasm`
//! files cargo produced. It is used by the `spore` CLI and by build scripts, so it
//! shields the inner cargo from the environment an outer cargo leaves behind.
//!
//! It knows nothing about what is inside a module (that is the runtime's business), nor
//! about stores or nodes: it only drives cargo.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde::Deserialize;

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
    /// Where cargo puts its output; cargo's default (`target/` of the workspace) if unset.
    pub target_dir: Option<PathBuf>,
    /// Build only these packages (`cargo -p`); all default members if empty.
    pub packages: Vec<String>,
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
/// cargo does not see the variables an outer cargo sets for build scripts (see
/// [`is_leaked_cargo_variable`]), so this is safe to call from `build.rs`. Call
/// [`ensure_wasm_target`] first if the target may be missing.
pub fn build_guest(dir: &Path, options: &BuildOptions) -> Result<Vec<BuiltModule>, BuildError> {
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
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(&cargo);
    command
        .args(["build", "--release", "--target", WASM_TARGET])
        .arg("--message-format=json-render-diagnostics")
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
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_leaked_cargo_variable) {
            command.env_remove(name);
        }
    }
    command.stdout(Stdio::piped()).stderr(Stdio::inherit());

    let mut child = command.spawn().map_err(|source| BuildError::Spawn {
        program: cargo.to_string_lossy().into_owned(),
        source,
    })?;
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
        "CARGO_MAKEFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_RUSTC_CURRENT_DIR",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
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
        "CARGO_PROFILE_",
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
