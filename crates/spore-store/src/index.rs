//! The index file (`codebase/index.redb`): a redb database of sealed records
//! ([`crate::envelope`]), its tables (`spec/home.md`), and the one way it is read and
//! written: inside a closure that turns a redb panic into a typed error.
//!
//! Why catch panics: redb trusts the pages it reads (it verifies their checksums only
//! when asked, which [`Index::open`] does), so a page damaged after the index was opened
//! can make redb panic. A node serving other modules and names must not die of one bad
//! page: the panic is caught at this boundary and reported as a damaged index, naming
//! the file; everything redb holds is dropped with the failed transaction.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use redb::{
    Builder, Database, DatabaseError, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase,
    TableDefinition, TableError, WriteTransaction,
};

use crate::envelope;
use crate::error::{Damaged, StoreError};

/// Small records about the index itself: its format, the compiler of the artifacts.
pub const META: &str = "meta";
/// Module hash → manifest.
pub const MANIFESTS: &str = "manifests";
/// Name → its latest event.
pub const NAMES: &str = "names";
/// Name, 0x00, sequence number (big-endian u64) → one event.
pub const NAME_HISTORY: &str = "name_history";
/// Name, 0x00, publisher key (32 bytes), sequence number (big-endian u64) → one signed
/// publication of a mesh name (`spec/trust.md`), as received.
pub const PUBLICATIONS: &str = "publications";
/// Memo key → insertion number, module hash, entry.
pub const MEMO: &str = "memo";
/// Insertion number (big-endian u64) → memo key: the eviction order, oldest first.
pub const MEMO_ORDER: &str = "memo_order";
/// `kv` namespace → bytes of keys and values it holds.
pub const KV_USAGE: &str = "kv_usage";
/// Damage found without a record to attach it to (an index rolled back, a module lost in a
/// migration), reported by `verify` until a repair clears it.
pub const NOTES: &str = "notes";
/// The prefix of each `kv` namespace's table.
pub const KV_PREFIX: &str = "kv.";

/// The index format this code writes, in `meta` under [`FORMAT_KEY`].
pub const FORMAT: u32 = 1;
pub const FORMAT_KEY: &[u8] = b"format";

pub type Table<'a> = TableDefinition<'a, &'static [u8], &'static [u8]>;
/// A table of a read transaction.
pub type ReadTable = ReadOnlyTable<&'static [u8], &'static [u8]>;

pub fn table(name: &str) -> Table<'_> {
    TableDefinition::new(name)
}

pub fn kv_table(namespace: &str) -> String {
    format!("{KV_PREFIX}{namespace}")
}

/// An open index.
pub struct Index {
    /// Always `Some` until dropped (see `Drop`).
    db: Option<Database>,
    path: PathBuf,
}

impl Drop for Index {
    fn drop(&mut self) {
        // Closing flushes and writes redb's header: on a file damaged while it was open,
        // that too can panic, and dropping a codebase must not take the process down.
        if let Some(db) = self.db.take() {
            let _ = guard(&self.path, || {
                drop(db);
                Ok(())
            });
        }
    }
}

/// What opening found.
pub enum Health {
    Clean,
    /// redb's check found damage and rolled the file back to an earlier commit that
    /// verifies; what the later commits wrote may be gone.
    RolledBack,
}

impl Index {
    /// Creates an empty index at `path` (which must not exist), durably.
    pub fn create(path: &Path) -> Result<Index, StoreError> {
        let db = guard(path, || {
            Builder::new().create(path).map_err(|e| open_error(path, e))
        })?;
        let index = Index {
            db: Some(db),
            path: path.to_owned(),
        };
        index.write(Durability::Immediate, |txn| {
            let mut meta = index.open_table(txn, META)?;
            let record = envelope::seal(META, FORMAT_KEY, &FORMAT.to_le_bytes());
            meta.insert(FORMAT_KEY, record.as_slice())
                .map_err(|e| index.err(e))?;
            Ok(())
        })?;
        Ok(index)
    }

    /// Opens the index at `path`, verifying every page's checksum (redb's integrity
    /// check) so that damage is found here, named as the index, rather than trusted.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<(Index, Health), StoreError> {
        let mut db = guard(path, || {
            Builder::new()
                .set_cache_size(cache_bytes)
                .open(path)
                .map_err(|e| open_error(path, e))
        })?;
        let clean = guard(path, || {
            db.check_integrity().map_err(|e| open_error(path, e))
        })?;
        let index = Index {
            db: Some(db),
            path: path.to_owned(),
        };
        index.check_format()?;
        let health = if clean {
            Health::Clean
        } else {
            Health::RolledBack
        };
        Ok((index, health))
    }

    /// Opens a damaged index without verifying it, to read what can still be read.
    pub fn open_unverified(path: &Path) -> Result<Index, StoreError> {
        let db = guard(path, || {
            Builder::new().open(path).map_err(|e| open_error(path, e))
        })?;
        Ok(Index {
            db: Some(db),
            path: path.to_owned(),
        })
    }

    /// Opens, from a copy of the damaged index at `damaged` written to `scratch`, its
    /// latest commit without redb's own bookkeeping, for a salvage to read when redb
    /// refuses the file as it is.
    ///
    /// Why: redb keeps its allocator state in a tree of its own (the system tree), written
    /// when it closes the file in a two-phase commit, and refuses outright a file whose
    /// latest commit was two-phase and fails its checksums ("Primary is corrupted despite
    /// 2-phase commit"): one flipped byte in that allocator state cost the whole index
    /// (the long damage sweep, docs/durability.md). The commit before cannot stand in:
    /// the closing commit also trims the file, and the pages the commit before used may be
    /// gone. So the copy's latest commit slot is rewritten to name no system tree (the
    /// flag cleared, the root zeroed, the slot's XXH3-128 checksum computed again) and
    /// marked as needing repair; redb's repair then verifies the tables and rebuilds the
    /// allocator state from them. Everything here is redb's file format 3 (its
    /// `header.rs`: the "god byte" at byte 9, bit 0 the primary slot, bit 1 repair
    /// required; 128-byte commit slots from byte 64, in each the system tree's flag at
    /// byte 2 and root at bytes 40..72, the checksum of bytes 0..112 at 112..128). A slot
    /// whose checksum does not match before the rewrite is left alone, so a file laid out
    /// otherwise is never rewritten blind; the damaged original is never written.
    pub fn open_without_bookkeeping(damaged: &Path, scratch: &Path) -> Result<Index, StoreError> {
        const GOD_BYTE: usize = 9;
        const PRIMARY: u8 = 0b01;
        const RECOVERY_REQUIRED: u8 = 0b10;
        const SLOTS: usize = 64;
        const SLOT: usize = 128;
        const SYSTEM_ROOT_FLAG: usize = 2;
        const SYSTEM_ROOT: std::ops::Range<usize> = 40..72;
        const CHECKSUM: usize = 112;
        let refuse = |why: &str| StoreError::corrupt(Damaged::Index(damaged.to_owned()), why);
        let mut bytes = std::fs::read(damaged).map_err(StoreError::io(damaged))?;
        if bytes.len() < SLOTS + 2 * SLOT {
            return Err(refuse("it is too short to hold redb's header"));
        }
        let primary = usize::from(bytes[GOD_BYTE] & PRIMARY);
        let start = SLOTS + primary * SLOT;
        let slot = &mut bytes[start..start + SLOT];
        let checksum = |slot: &[u8]| xxhash_rust::xxh3::xxh3_128(&slot[..CHECKSUM]).to_le_bytes();
        if slot[CHECKSUM..] != checksum(slot) {
            return Err(refuse("its latest commit slot fails its own checksum"));
        }
        slot[SYSTEM_ROOT_FLAG] = 0;
        slot[SYSTEM_ROOT].fill(0);
        let sum = checksum(slot);
        slot[CHECKSUM..].copy_from_slice(&sum);
        bytes[GOD_BYTE] |= RECOVERY_REQUIRED;
        std::fs::write(scratch, &bytes).map_err(StoreError::io(scratch))?;
        let db = guard(damaged, || {
            Builder::new()
                .open(scratch)
                .map_err(|e| open_error(damaged, e))
        })?;
        Ok(Index {
            db: Some(db),
            path: scratch.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db(&self) -> Result<&Database, StoreError> {
        self.db
            .as_ref()
            .ok_or_else(|| StoreError::corrupt(Damaged::Index(self.path.clone()), "it is closed"))
    }

    fn check_format(&self) -> Result<(), StoreError> {
        let format = self.read(|txn| self.get(txn, META, FORMAT_KEY))?;
        match format {
            Some(Ok(bytes)) if bytes == FORMAT.to_le_bytes() => Ok(()),
            Some(Ok(bytes)) => Err(StoreError::corrupt(
                Damaged::Index(self.path.clone()),
                format!(
                    "it is in index format {bytes:?}, which this spore does not know; a newer spore wrote it"
                ),
            )),
            Some(Err(why)) => Err(StoreError::corrupt(
                Damaged::Index(self.path.clone()),
                format!("its format record is damaged: {why}"),
            )),
            None => Err(StoreError::corrupt(
                Damaged::Index(self.path.clone()),
                "it has no format record",
            )),
        }
    }

    /// Runs `f` in a read transaction.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        guard(&self.path, || {
            let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
            f(&txn)
        })
    }

    /// Runs `f` in a write transaction and commits it with `durability` if `f` succeeds;
    /// with [`Durability::Immediate`] the commit is on disk (fsync) when this returns.
    pub fn write<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        guard(&self.path, || {
            let mut txn = self.db()?.begin_write().map_err(|e| self.err(e))?;
            txn.set_durability(durability).map_err(|e| self.err(e))?;
            // One-phase commit (redb's default): a current commit slot that fails its
            // checksum is taken for a commit torn by a crash, and redb opens the slot before
            // it. That loses nothing acknowledged, because redb follows every commit with
            // an epilogue commit of the same data (freeing pages), so the slot before holds
            // the same data; only a process killed between the two and then bit rot in that
            // very slot would lose the last commit. Two-phase commit moves that window to
            // the god byte's primary bit instead, and cost 12-45% of the acknowledged kv
            // writes/s (1680 against 1900-2350 with one writer, 2170 against 3800-3900 with
            // four; tests/kv_throughput.rs); the damage sweep (tests/damage.rs, which flips
            // every byte of the commit slots) finds no loss with either.
            match f(&txn) {
                Ok(value) => {
                    txn.commit().map_err(|e| self.err(e))?;
                    Ok(value)
                }
                Err(error) => {
                    let _ = txn.abort();
                    Err(error)
                }
            }
        })
    }

    /// The table `name` of a read transaction; `None` when it was never written.
    pub fn read_table(
        &self,
        txn: &ReadTransaction,
        name: &str,
    ) -> Result<Option<ReadTable>, StoreError> {
        match txn.open_table(table(name)) {
            Ok(table) => Ok(Some(table)),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(error) => Err(self.err(error)),
        }
    }

    pub fn open_table<'t>(
        &self,
        txn: &'t WriteTransaction,
        name: &str,
    ) -> Result<redb::Table<'t, &'static [u8], &'static [u8]>, StoreError> {
        txn.open_table(table(name)).map_err(|e| self.err(e))
    }

    /// The value stored under `key` in `name`: `None` when absent, `Some(Err(why))` when
    /// its envelope does not verify.
    pub fn get(
        &self,
        txn: &ReadTransaction,
        name: &str,
        key: &[u8],
    ) -> Result<Option<Result<Vec<u8>, &'static str>>, StoreError> {
        let Some(table) = self.read_table(txn, name)? else {
            return Ok(None);
        };
        let record = redb::ReadableTable::get(&table, key).map_err(|e| self.err(e))?;
        Ok(record.map(|record| envelope::open(name, key, record.value()).map(<[u8]>::to_vec)))
    }

    /// Every table's name.
    pub fn table_names(&self) -> Result<Vec<String>, StoreError> {
        self.read(|txn| {
            Ok(txn
                .list_tables()
                .map_err(|e| self.err(e))?
                .map(|handle| redb::TableHandle::name(&handle).to_owned())
                .collect())
        })
    }

    /// A redb error as a store error: redb's own "corrupted" is damage to the index.
    pub fn err(&self, error: impl Into<redb::Error>) -> StoreError {
        index_error(&self.path, error.into())
    }
}

fn index_error(path: &Path, error: redb::Error) -> StoreError {
    match error {
        redb::Error::Corrupted(what) => StoreError::corrupt(Damaged::Index(path.to_owned()), what),
        other => StoreError::Index(Box::new(other)),
    }
}

fn open_error(path: &Path, error: DatabaseError) -> StoreError {
    match error {
        // redb's words for a file that is not (or no longer) a redb database, an empty one
        // included.
        DatabaseError::Storage(redb::StorageError::Io(source))
            if matches!(
                source.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            StoreError::corrupt(Damaged::Index(path.to_owned()), source.to_string())
        }
        DatabaseError::Storage(redb::StorageError::Io(source)) => StoreError::Io {
            path: path.to_owned(),
            source,
        },
        DatabaseError::Storage(redb::StorageError::Corrupted(what)) => {
            StoreError::corrupt(Damaged::Index(path.to_owned()), what)
        }
        DatabaseError::RepairAborted | DatabaseError::UpgradeRequired(_) => StoreError::corrupt(
            Damaged::Index(path.to_owned()),
            format!("redb cannot open it: {error}"),
        ),
        other => index_error(path, other.into()),
    }
}

/// Runs `f`, turning a panic inside it (redb reading a damaged page) into a typed error
/// naming the index (see the module's documentation for why).
pub fn guard<T>(path: &Path, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    let caught = {
        let _quiet = QuietPanics::enter();
        catch_unwind(AssertUnwindSafe(f))
    };
    caught.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        tracing::error!(index = %path.display(), %message, "redb panicked; the index is damaged");
        Err(StoreError::corrupt(
            Damaged::Index(path.to_owned()),
            format!("reading it failed: {message}"),
        ))
    })
}

thread_local! {
    /// How many [`guard`]s this thread is inside.
    static GUARDED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// While alive, a panic on this thread is not printed by the panic hook: [`guard`]
/// catches it and reports the damage as a typed error (and a log line). Without this,
/// the default hook wrote "thread 'main' panicked at …redb…" to the terminal of a
/// command that then handled the damage well (seen in the long damage sweep).
/// Panics anywhere else are printed as always.
struct QuietPanics;

impl QuietPanics {
    fn enter() -> QuietPanics {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if GUARDED.with(|guarded| guarded.get()) == 0 {
                    previous(info);
                }
            }));
        });
        GUARDED.with(|guarded| guarded.set(guarded.get() + 1));
        QuietPanics
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        GUARDED.with(|guarded| guarded.set(guarded.get() - 1));
    }
}
