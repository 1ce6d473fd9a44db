//! Where a node keeps its state.

use std::path::{Path, PathBuf};

/// A spore home: a directory holding the codebase (and later configuration and
/// identity). Chosen by `--home`, else `$SPORE_HOME`, else the platform data directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    pub const ENV: &'static str = "SPORE_HOME";

    pub fn new(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// The home given explicitly, else from the environment, else the platform default.
    pub fn locate(explicit: Option<&Path>) -> Home {
        if let Some(path) = explicit {
            return Home::new(path);
        }
        if let Some(path) = std::env::var_os(Self::ENV).filter(|p| !p.is_empty()) {
            return Home::new(path);
        }
        let base = dirs::data_dir().unwrap_or_else(|| PathBuf::from("."));
        Home::new(base.join("spore"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn codebase_dir(&self) -> PathBuf {
        self.root.join("codebase")
    }

    /// Where `spore new --lang ts` installs the TypeScript SDK the binary carries, one
    /// directory per build of it.
    pub fn typescript_sdk_dir(&self) -> PathBuf {
        self.root.join("sdk").join("assemblyscript")
    }

    /// The cargo target directory `spore build` and `spore dev` share between every
    /// crate they build, when the user set none (`CARGO_TARGET_DIR`): the dependencies
    /// every function crate has (the SDK, serde) are then compiled once.
    pub fn build_target_dir(&self) -> PathBuf {
        self.root.join("target")
    }
}

/// Creates `path` holding `bytes`, readable only by its owner, unless it exists already;
/// returns whether it created it. The file appears whole or not at all: a process killed
/// half-way leaves at most a stray temporary file, never an empty or partial `path` that
/// every later command would stumble on. (A plain create-then-write left exactly that
/// window on a home's first use.)
pub fn create_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    let staged = write_staged(path, bytes)?;
    // A hard link is created whole and never replaces an existing file: when two
    // processes create the same file at once, one wins and the other reads it.
    let created = match std::fs::hard_link(&staged, path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(e);
        }
    };
    std::fs::remove_file(&staged)?;
    sync_parent(path)?;
    Ok(created)
}

/// Replaces `path` with `bytes` (owner-only), atomically: readers see the old file or the
/// new one, whole.
pub fn replace_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let staged = write_staged(path, bytes)?;
    std::fs::rename(&staged, path)?;
    sync_parent(path)
}

/// Writes `bytes` to a fresh owner-only file beside `path` and syncs it.
fn write_staged(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}.partial", std::process::id()));
    let staged = path.with_file_name(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&staged)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(staged)
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_file_is_created_once_whole_and_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        assert!(create_private_file(&path, b"first").unwrap());
        assert!(!create_private_file(&path, b"second").unwrap(), "kept");
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        replace_private_file(&path, b"third").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"third");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no staged file is left behind");
    }
}
