//! Where things live in the codebase directory (`spec/home.md`), and the one way files
//! are written there: a temporary file, fsync, rename, fsync of the directory, so that a
//! file either is absent or has all its bytes, whenever the process dies.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::StoreError;

/// The index: manifests, names and their history, memo, `kv`.
pub const INDEX: &str = "index.redb";
/// An index being built (first open, migration, salvage); renamed to [`INDEX`] once whole.
pub const INDEX_NEW: &str = "index.redb.new";
/// Module bytes, one file per module, named by its hash in hex.
pub const MODULES: &str = "modules";
/// Compiled artifacts, one file per module and compiler.
pub const ARTIFACTS: &str = "artifacts";
/// Files being written; anything here when the codebase is opened is left from a crash.
pub const TMP: &str = "tmp";
/// The file whose lock is the codebase's: one process at a time.
pub const LOCK: &str = "lock";
/// Where a sled database (the codebase format before `index.redb`) is moved once imported.
pub const SLED_MIGRATED: &str = "sled-migrated";
/// Where a damaged index is kept when `verify --repair` replaces it.
pub const DAMAGED: &str = "damaged";

/// The paths of one codebase directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn index(&self) -> PathBuf {
        self.root.join(INDEX)
    }

    pub fn module(&self, hash: &spore_core::Hash) -> PathBuf {
        self.root.join(MODULES).join(hash.to_hex())
    }

    pub fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Creates the directories a codebase needs.
    pub fn create_dirs(&self) -> Result<(), StoreError> {
        for dir in [MODULES, ARTIFACTS, TMP] {
            let path = self.root.join(dir);
            std::fs::create_dir_all(&path).map_err(StoreError::io(&path))?;
        }
        Ok(())
    }

    /// Writes `bytes` to `path` so that `path` is either absent or whole, durably, when
    /// this returns.
    pub fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let tmp = self.tmp_path();
        let result = (|| {
            let mut file = File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&tmp, path)?;
            sync_dir(path.parent().unwrap_or(&self.root))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(StoreError::io(path))
    }

    fn tmp_path(&self) -> PathBuf {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        self.root.join(TMP).join(format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ))
    }
}

/// Makes a directory's entries (a rename, a removal) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Every file of `dir` with its name, skipping entries that are not files. A missing
/// directory has none.
pub fn files(dir: &Path) -> Result<Vec<(String, PathBuf)>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(StoreError::io(dir)(error)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(StoreError::io(dir))?;
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            ));
        }
    }
    out.sort();
    Ok(out)
}
