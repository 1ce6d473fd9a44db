//! The crate `spore new` writes: the SDK copied inside it, a manifest whose dependency
//! on `spore-guest` points there, a release profile for small modules, an example
//! function, and native tests that fake an ability with `spore_guest::testing`.

use std::path::{Path, PathBuf};

/// Writing a new crate failed.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error("`{name}` cannot name a crate: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error(
        "{} exists and is not empty; choose another name or --path, \
         or remove what is there first",
        .0.display()
    )]
    NotEmpty(PathBuf),
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Names cargo or rustc refuse for a package, or that would clash with what the crate
/// depends on.
const RESERVED: &[&str] = &[
    "alloc",
    "core",
    "proc_macro",
    "std",
    "test",
    "self",
    "crate",
    "super",
    "Self",
    "spore_guest",
    "spore_guest_macros",
    "ciborium",
    "serde",
];

/// Rust's keywords, which cannot name a library (its crate name is the package name).
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// Checks `name` as a cargo package name whose library can be a spore module: ASCII
/// letters, digits, `-` and `_`, starting with a letter, and no keyword or name of a
/// crate it would shadow.
pub fn validate_name(name: &str) -> Result<(), NewError> {
    let fail = |reason| {
        Err(NewError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("it is empty");
    }
    if name.len() > 64 {
        return fail("it is longer than 64 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return fail("it must start with an ASCII letter");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return fail("it may hold only ASCII letters, digits, `-` and `_`");
    }
    let crate_name = name.replace('-', "_");
    if KEYWORDS.contains(&crate_name.as_str()) {
        return fail("it is a Rust keyword");
    }
    if RESERVED.contains(&crate_name.as_str()) {
        return fail("it is the name of a crate it would shadow");
    }
    Ok(())
}

/// Whether a crate can be written into `dir`: it is missing or empty.
pub fn is_free(dir: &Path) -> Result<bool, NewError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(source) => Err(NewError::Write {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// A crate just written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCrate {
    pub name: String,
    pub dir: PathBuf,
    /// The files written, relative to `dir`.
    pub files: Vec<PathBuf>,
}

/// Writes the crate `name` into `dir` (created if missing; refused unless empty), with
/// the SDK the binary carries in `dir/`[`crate::sdk::DIR`].
pub fn write_crate(dir: &Path, name: &str) -> Result<NewCrate, NewError> {
    validate_name(name)?;
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| NewError::Write { path, source }
    };
    if !is_free(dir)? {
        return Err(NewError::NotEmpty(dir.to_path_buf()));
    }
    std::fs::create_dir_all(dir).map_err(write_error(dir))?;
    let sdk = Path::new(crate::sdk::DIR);
    let mut written: Vec<PathBuf> = crate::sdk::write_into(&dir.join(sdk))
        .map_err(|error| NewError::Write {
            path: error.dir,
            source: error.source,
        })?
        .into_iter()
        .map(|file| sdk.join(file))
        .collect();
    let files = [
        ("Cargo.toml", manifest(name)),
        ("src/lib.rs", LIB_RS.replace("{name}", name)),
        (".gitignore", "/target\n".to_owned()),
    ];
    for (file, text) in &files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_error(parent))?;
        }
        std::fs::write(&path, text).map_err(write_error(&path))?;
    }
    written.extend(files.iter().map(|(file, _)| PathBuf::from(file)));
    Ok(NewCrate {
        name: name.to_owned(),
        dir: dir.to_path_buf(),
        files: written,
    })
}

fn manifest(name: &str) -> String {
    let version = crate::sdk::VERSION;
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the WebAssembly module `spore build` publishes. rlib: the same functions as a
# Rust library, for tests in tests/ and for other crates.
crate-type = ["cdylib", "rlib"]

[dependencies]
# The spore SDK {version}, copied into {sdk}/ by `spore new` from the sources the spore
# binary carries (commit it: see {sdk}/README.md). To take it from a registry instead,
# replace the line with
#   spore-guest = "{version}"
spore-guest = {{ path = "{sdk}/{guest}" }}

# A crate of its own, even when created inside another workspace.
[workspace]

# Small modules: each is stored, sent across the mesh and compiled by every node that
# runs it.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"
# `true` drops the name section too: the symbols' names, which say nothing a caller needs.
strip = true
"#,
        sdk = crate::sdk::DIR,
        guest = crate::sdk::GUEST_CRATE,
    )
}

const LIB_RS: &str = r#"//! {name}: spore functions.
//!
//! `spore build` compiles this crate to a WebAssembly module and publishes it;
//! `spore dev .` does so again on every change. `cargo test` runs the tests natively.

use spore_guest::{function, kv};

/// Greets `who`: a pure function (its result depends only on its arguments).
#[function]
fn greet(who: String) -> String {
    format!("Hello, {who}!")
}

/// Counts the visits of `who` in the `kv` ability and returns the new count.
#[function]
fn visit(who: String) -> Result<u64, String> {
    let key = format!("visits/{who}");
    let seen: Option<u64> = kv::get(&key).map_err(|error| format!("kv.get {key}: {error}"))?;
    let count = seen.unwrap_or(0) + 1;
    kv::put(&key, &count).map_err(|error| format!("kv.put {key}: {error}"))?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use spore_guest::testing::{MemoryKv, with_abilities};

    use super::*;

    #[test]
    fn greet_says_hello_to_who() {
        assert_eq!(greet("spore".into()), "Hello, spore!");
    }

    #[test]
    fn visits_are_counted_per_name() {
        // A fake `kv` in memory, serving the calls the function makes.
        let mut store = MemoryKv::default();
        with_abilities(
            move |_, operation, request| store.call(operation, request),
            || {
                assert_eq!(visit("ada".into()), Ok(1));
                assert_eq!(visit("ada".into()), Ok(2));
                assert_eq!(visit("bob".into()), Ok(1));
            },
        );
    }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_package_names_are_accepted() {
        for name in ["hello", "my-fn", "my_fn2", "A"] {
            validate_name(name).unwrap();
        }
    }

    #[test]
    fn names_cargo_or_rustc_refuse_are_rejected() {
        for name in [
            "",
            "2fast",
            "-x",
            "_x",
            "my fn",
            "my.fn",
            "é",
            "fn",
            "std",
            "test",
            "spore-guest",
        ] {
            let error = validate_name(name).unwrap_err();
            assert!(
                matches!(error, NewError::InvalidName { .. }),
                "{name}: {error}"
            );
        }
    }

    #[test]
    fn a_non_empty_directory_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let error = write_crate(dir.path(), "hello").unwrap_err();
        assert!(matches!(error, NewError::NotEmpty(_)), "{error}");
        assert!(!dir.path().join("Cargo.toml").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn the_manifest_points_at_the_sdk_inside_the_crate_and_makes_small_modules() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("hello");
        let written = write_crate(&target, "hello").unwrap();
        assert_eq!(written.dir, target);
        let manifest = std::fs::read_to_string(target.join("Cargo.toml")).unwrap();
        let parsed: toml::Table = manifest.parse().unwrap();
        // Relative, so inside the crate's workspace: cargo then hashes the relative path
        // into the code it builds, the same wherever the crate is.
        let guest = parsed["dependencies"]["spore-guest"]["path"]
            .as_str()
            .unwrap();
        assert_eq!(guest, "spore-sdk/spore-guest", "{manifest}");
        assert!(target.join(guest).join("Cargo.toml").is_file());
        assert!(
            written
                .files
                .contains(&PathBuf::from("spore-sdk/spore-guest/Cargo.toml"))
        );
        for line in [
            "crate-type = [\"cdylib\", \"rlib\"]",
            "lto = true",
            "panic = \"abort\"",
            "codegen-units = 1",
            "strip = true",
        ] {
            assert!(manifest.contains(line), "{line} missing: {manifest}");
        }
        let lib = std::fs::read_to_string(target.join("src/lib.rs")).unwrap();
        assert!(
            lib.contains("#[function]") && lib.contains("spore_guest::testing"),
            "{lib}"
        );
    }
}
