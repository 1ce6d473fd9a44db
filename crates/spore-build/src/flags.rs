//! The compiler flags and directories a build adds to, or takes from, the user's
//! environment: path remapping for reproducible modules, and the target directory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `--remap-path-prefix` flags for `(prefix, replacement)` pairs, in order. rustc
/// applies the last one that matches, so a more specific prefix goes later.
pub fn remap_flags(remap: &[(PathBuf, String)]) -> Vec<String> {
    remap
        .iter()
        .map(|(prefix, replacement)| {
            format!("--remap-path-prefix={}={replacement}", prefix.display())
        })
        .collect()
}

/// How the inner cargo gets its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RustFlags {
    /// As `CARGO_ENCODED_RUSTFLAGS` (replacing `RUSTFLAGS`): the user's flags from the
    /// environment, then ours.
    Environment(OsString),
    /// As `--config build.rustflags=[...]`, when the environment set no flags: cargo
    /// appends an array given this way to the `build.rustflags` of the user's
    /// configuration files instead of replacing it, as a variable would.
    Config(String),
}

/// Adds `extra` to the flags the environment `env` sets: cargo reads
/// `CARGO_ENCODED_RUSTFLAGS` (separated by 0x1f) before `RUSTFLAGS` (separated by
/// spaces), so the first of them that is set is the one extended.
pub fn add_rustflags(env: &[(OsString, OsString)], extra: &[String]) -> RustFlags {
    let find = |name: &str| {
        env.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.to_string_lossy().into_owned())
    };
    let user: Option<Vec<String>> = if let Some(encoded) = find("CARGO_ENCODED_RUSTFLAGS") {
        Some(
            encoded
                .split('\x1f')
                .filter(|flag| !flag.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    } else {
        find("RUSTFLAGS").map(|flags| flags.split_whitespace().map(str::to_owned).collect())
    };
    match user {
        Some(mut flags) => {
            flags.extend(extra.iter().cloned());
            RustFlags::Environment(OsString::from(flags.join("\x1f")))
        }
        None => {
            let array = toml::Value::Array(
                extra
                    .iter()
                    .map(|flag| toml::Value::String(flag.clone()))
                    .collect(),
            );
            RustFlags::Config(format!("build.rustflags={array}"))
        }
    }
}

/// The target directory the environment chooses (`CARGO_TARGET_DIR`, else
/// `CARGO_BUILD_TARGET_DIR`), if any: a caller with a default of its own uses it only
/// when this is `None`.
pub fn target_dir_from_environment() -> Option<PathBuf> {
    ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR"]
        .into_iter()
        .filter_map(std::env::var_os)
        .find(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// Cargo's home, where the sources of registry and git dependencies are unpacked:
/// `$CARGO_HOME`, else `~/.cargo`.
pub fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
}

/// A name for the crate or workspace of `manifest` that does not depend on where it
/// is: its package name, else (a virtual workspace) its directory's name.
pub fn source_name(manifest: &Path) -> String {
    let package = std::fs::read_to_string(manifest)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|table| {
            table
                .get("package")?
                .get("name")?
                .as_str()
                .map(str::to_owned)
        });
    package.unwrap_or_else(|| {
        manifest.parent().and_then(Path::file_name).map_or_else(
            || "crate".to_owned(),
            |name| name.to_string_lossy().into_owned(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(key, value)| (OsString::from(key), OsString::from(value)))
            .collect()
    }

    const REMAP: &str = "--remap-path-prefix=/a=/b";

    #[test]
    fn remap_flags_keep_their_order() {
        let flags = remap_flags(&[
            ("/root/.cargo".into(), "/cargo".into()),
            ("/home/me/hello".into(), "/spore/hello".into()),
        ]);
        assert_eq!(
            flags,
            [
                "--remap-path-prefix=/root/.cargo=/cargo",
                "--remap-path-prefix=/home/me/hello=/spore/hello"
            ]
        );
    }

    #[test]
    fn the_users_rustflags_are_kept_and_extended() {
        let flags = add_rustflags(
            &env(&[("RUSTFLAGS", " --cfg  fast -Copt-level=1 ")]),
            &[REMAP.into()],
        );
        assert_eq!(
            flags,
            RustFlags::Environment(
                "--cfg\x1ffast\x1f-Copt-level=1\x1f--remap-path-prefix=/a=/b".into()
            )
        );
    }

    #[test]
    fn encoded_rustflags_win_over_rustflags_as_in_cargo() {
        let flags = add_rustflags(
            &env(&[
                ("RUSTFLAGS", "--cfg ignored"),
                ("CARGO_ENCODED_RUSTFLAGS", "--cfg\x1fwith space"),
            ]),
            &[REMAP.into()],
        );
        assert_eq!(
            flags,
            RustFlags::Environment("--cfg\x1fwith space\x1f--remap-path-prefix=/a=/b".into())
        );
    }

    #[test]
    fn without_flags_in_the_environment_ours_go_to_the_configuration() {
        let extra = [REMAP.to_owned(), "--cfg=\"x\" y".to_owned()];
        let RustFlags::Config(value) = add_rustflags(&env(&[("PATH", "/bin")]), &extra) else {
            panic!("not given as configuration");
        };
        // As cargo reads it: a TOML key and value.
        let parsed: toml::Table = value.parse().unwrap();
        let flags: Vec<&str> = parsed["build"]["rustflags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|flag| flag.as_str().unwrap())
            .collect();
        assert_eq!(flags, extra);
    }

    #[test]
    fn a_crate_is_named_by_its_package_and_a_workspace_by_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("Cargo.toml");
        std::fs::write(
            &manifest,
            "[package]\nname = \"hello\"\nversion = \"0.1.0\"\n",
        )
        .unwrap();
        assert_eq!(source_name(&manifest), "hello");
        std::fs::write(&manifest, "[workspace]\nmembers = []\n").unwrap();
        let leaf = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(source_name(&manifest), leaf);
    }
}
