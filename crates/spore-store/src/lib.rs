//! The codebase: modules by hash (one file each), and an index (`index.redb`, a redb
//! database) of their manifests, names with their full history, memoized results and
//! `kv` data; plus the cache of compiled artifacts (files). The layout and the record
//! format are specified in `spec/home.md`.
//!
//! This crate persists bytes and guards their integrity. A write that returns has been
//! made durable (fsync); a module is re-hashed every time it is read; every index record
//! is sealed with a checksum over its table, key and value; and anything that fails a
//! check is reported as [`StoreError::Corrupt`] naming what it belongs to, never
//! returned. What can be derived again (manifests, artifacts, memo entries, the current
//! target of a name whose history is intact) is dropped and rebuilt with a log line.
//!
//! It must not know how modules are compiled or run (artifacts are opaque bytes to it),
//! nor anything about the network.

mod artifacts;
mod envelope;
mod error;
mod housekeeping;
mod index;
mod kv;
mod layout;
mod memo;
mod migrate;
mod modules;
mod names;
mod publications;
mod salvage;

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use spore_core::{Hash, Manifest};

pub use error::{Damaged, StoreError};

/// The record formats of `spec/home.md`, for its vectors and for tools that read a home.
pub mod format {
    pub use crate::artifacts::{checksum as artifact_checksum, compiler_id};
    pub use crate::envelope::{open as open_record, seal as seal_record};
}
pub use housekeeping::{Damage, GcReport, RepairReport, VerifyReport};
pub use kv::KvSpace;
pub use modules::{Removed, Staged};
pub use names::{NameEntry, NameEvent};
pub use salvage::{ReadFrom, SalvageReport};

use index::{Health, Index};
use layout::Layout;

/// An open codebase. Cheap to clone; all clones share one index and one lock.
#[derive(Clone)]
pub struct Codebase {
    inner: Arc<Inner>,
}

struct Inner {
    layout: Layout,
    index: Index,
    /// Modules being published: readable by the compiler, listed nowhere, stored nowhere.
    staged: RwLock<HashMap<Hash, Arc<StagedModule>>>,
    kv: kv::Writer,
    memo_max_bytes: u64,
    /// Counts the commits that moved a name or dropped a module (see
    /// [`Codebase::names_generation`]).
    names_generation: AtomicU64,
    hot_memo: std::sync::Mutex<memo::HotMemo>,
    /// Held for as long as the codebase is open: its lock is the home's.
    _lock: File,
}

/// A staged module's bytes and manifest.
type StagedModule = (Vec<u8>, Manifest);

/// How to open a codebase.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// How long to wait for another process that holds the codebase to let go.
    pub lock_timeout: Duration,
    /// The index's page cache, in bytes.
    pub cache_bytes: u64,
    /// The most bytes of memoized results kept; the oldest go first beyond it.
    pub memo_max_bytes: u64,
}

impl OpenOptions {
    /// The memo's size cap when the configuration sets none.
    pub const DEFAULT_MEMO_MAX_BYTES: u64 = 64 << 20;
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            lock_timeout: Duration::from_secs(5),
            cache_bytes: 64 << 20,
            memo_max_bytes: Self::DEFAULT_MEMO_MAX_BYTES,
        }
    }
}

impl Codebase {
    /// Opens (creating if needed) the codebase stored in directory `path`.
    pub fn open(path: &Path) -> Result<Codebase, StoreError> {
        Self::open_with(path, &OpenOptions::default())
    }

    #[tracing::instrument(skip_all, fields(path = %path.display()))]
    pub fn open_with(path: &Path, options: &OpenOptions) -> Result<Codebase, StoreError> {
        let layout = Layout {
            root: path.to_owned(),
        };
        let lock = lock(&layout, options.lock_timeout)?;
        let index = prepare(&layout, options)?;
        Ok(Codebase {
            inner: Arc::new(Inner {
                layout,
                index,
                staged: RwLock::default(),
                kv: kv::Writer::default(),
                memo_max_bytes: options.memo_max_bytes,
                names_generation: AtomicU64::new(0),
                hot_memo: Default::default(),
                _lock: lock,
            }),
        })
    }

    /// Where the codebase lives.
    pub fn path(&self) -> &Path {
        &self.inner.layout.root
    }

    /// A number that changes after every commit that moves a name or drops a module, so
    /// a caller may keep what a name resolved to for as long as it stays the same (the
    /// codebase is this process's alone: nothing else writes it meanwhile).
    pub fn names_generation(&self) -> u64 {
        self.inner.names_generation.load(Ordering::Acquire)
    }

    /// Marks a committed change of names or modules: bumped after the commit, so a
    /// resolution read before it carries the old number and is not trusted after it.
    pub(crate) fn names_changed(&self) {
        self.inner.names_generation.fetch_add(1, Ordering::AcqRel);
    }

    fn index(&self) -> &Index {
        &self.inner.index
    }

    fn layout(&self) -> &Layout {
        &self.inner.layout
    }
}

/// Takes the codebase's lock, waiting up to `timeout` for another process to let go.
fn lock(layout: &Layout, timeout: Duration) -> Result<File, StoreError> {
    std::fs::create_dir_all(&layout.root).map_err(StoreError::io(&layout.root))?;
    let path = layout.dir(layout::LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(StoreError::io(&path))?;
    let started = Instant::now();
    let mut pause = Duration::from_millis(10);
    // A second process (a CLI command while another runs) waits a bounded time for the
    // lock, then gets a precise error.
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                if started.elapsed() >= timeout {
                    return Err(StoreError::Locked {
                        path: layout.root.clone(),
                        waited: started.elapsed(),
                    });
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(StoreError::io(&path)(error)),
        }
    }
}

/// Brings the directory to the current layout (creating it, importing a sled database,
/// clearing what a crash left) and opens its index. The caller holds the lock.
fn prepare(layout: &Layout, options: &OpenOptions) -> Result<Index, StoreError> {
    layout.create_dirs()?;
    for (_, stale) in layout::files(&layout.dir(layout::TMP))? {
        let _ = std::fs::remove_file(stale);
    }
    let index_path = layout.index();
    if !index_path.exists() {
        if migrate::sled_present(layout) {
            migrate::import(layout)?;
        } else {
            let modules = layout::files(&layout.dir(layout::MODULES))?;
            if !modules.is_empty() {
                return Err(StoreError::corrupt(
                    Damaged::Index(index_path),
                    format!("it is missing while {} module files remain", modules.len()),
                ));
            }
            create_index(layout)?;
        }
    }
    if migrate::sled_present(layout) {
        // An import finished, but the process died before moving the old files aside.
        migrate::move_aside(layout)?;
    }
    let (index, health) = Index::open(&index_path, options.cache_bytes as usize)?;
    if let Health::RolledBack = health {
        tracing::error!(index = %index_path.display(), "the index failed its integrity check and was rolled back to an earlier commit");
        housekeeping::add_note(
            &index,
            "the index failed its integrity check on opening and was rolled back to its last commit that verifies; writes acknowledged after that commit may be lost",
        )?;
    }
    Ok(index)
}

/// Creates an empty index: built beside its final name and renamed, so that an index
/// file is always a whole one.
pub(crate) fn create_index(layout: &Layout) -> Result<(), StoreError> {
    let new = layout.dir(layout::INDEX_NEW);
    let _ = std::fs::remove_file(&new);
    drop(Index::create(&new)?);
    install_index(layout, &new)
}

/// Renames a complete index built at `new` to the index's name, durably.
pub(crate) fn install_index(layout: &Layout, new: &Path) -> Result<(), StoreError> {
    let index = layout.index();
    std::fs::rename(new, &index).map_err(StoreError::io(&index))?;
    layout::sync_dir(&layout.root).map_err(StoreError::io(&layout.root))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
