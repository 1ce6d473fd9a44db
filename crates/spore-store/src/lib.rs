//! The codebase: a sled database of modules by hash, their manifests, names with
//! their full history, and the cache of compiled artifacts.
//!
//! This crate persists bytes and guards their integrity: a module is re-hashed every
//! time it is read, and a mismatch is reported as corruption, never returned. It must
//! not know how modules are compiled or run (artifacts are opaque bytes to it), nor
//! anything about the network.

mod artifacts;
mod error;
mod kv;
mod memo;
mod modules;
mod names;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use error::StoreError;
pub use kv::KvSpace;
pub use names::{NameEntry, NameEvent};

/// An open codebase. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Codebase {
    db: sled::Db,
    blobs: sled::Tree,
    manifests: sled::Tree,
    names: sled::Tree,
    name_history: sled::Tree,
    artifacts: sled::Tree,
    memo: sled::Tree,
    path: PathBuf,
}

/// How to open a codebase.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// How long to wait for another process that holds the database to let go.
    pub lock_timeout: Duration,
    /// sled's page cache, in bytes.
    pub cache_bytes: u64,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            lock_timeout: Duration::from_secs(5),
            cache_bytes: 64 << 20,
        }
    }
}

impl Codebase {
    /// Opens (creating if needed) the codebase stored in directory `path`.
    pub fn open(path: &Path) -> Result<Codebase, StoreError> {
        Self::open_with(path, &OpenOptions::default())
    }

    pub fn open_with(path: &Path, options: &OpenOptions) -> Result<Codebase, StoreError> {
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(options.cache_bytes)
            .flush_every_ms(Some(200));
        let started = Instant::now();
        let mut pause = Duration::from_millis(10);
        // sled takes an exclusive file lock: a second process (a CLI command while
        // another runs) waits a bounded time for it, then gets a precise error.
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(error) if is_lock_contention(&error) => {
                    if started.elapsed() >= options.lock_timeout {
                        return Err(StoreError::Locked {
                            path: path.to_owned(),
                            waited: started.elapsed(),
                        });
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                Err(source) => {
                    return Err(StoreError::Open {
                        path: path.to_owned(),
                        source,
                    });
                }
            }
        };
        let tree = |name: &str| db.open_tree(name).map_err(StoreError::from);
        Ok(Codebase {
            blobs: tree("blobs")?,
            manifests: tree("manifests")?,
            names: tree("names")?,
            name_history: tree("name_history")?,
            artifacts: tree("artifacts")?,
            memo: tree("memo")?,
            db,
            path: path.to_owned(),
        })
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every write so far durable. Writes that people wait on call this.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

fn is_lock_contention(error: &sled::Error) -> bool {
    matches!(error, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock
        || io.to_string().contains("lock"))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
