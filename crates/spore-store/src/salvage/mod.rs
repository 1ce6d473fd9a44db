//! Replacing an index that cannot be opened (it fails redb's integrity check, or is
//! missing while modules remain) with a new one holding everything that can still be
//! read and verifies, and saying what could not.
//!
//! The damaged file is moved to `codebase/damaged/`, never deleted. Its records are read
//! through redb from its latest commit, or from the commit before when the latest cannot
//! be read at all, and then from its pages directly ([`carve`]), which finds what a
//! damaged page of a tree hid from redb's walk; [`pages`] says what of that is kept.
//! Every record is kept only if its envelope verifies; manifests are derived again from
//! the module files (so every intact module is published again, including one whose
//! publication a crash interrupted); each name points where the last event of its
//! history says; memo entries and usage counts are not carried over.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use redb::Durability;
use spore_core::{Hash, Manifest};

use crate::error::Damaged;
use crate::index::{Index, KV_PREFIX, MANIFESTS, NAME_HISTORY, NAMES, PUBLICATIONS};
use crate::layout::{self, DAMAGED, INDEX_NEW, Layout, MODULES, TMP};
use crate::names::{history_seq, parse_name};
use crate::{OpenOptions, StoreError, envelope};

mod carve;
mod pages;

/// What a salvage kept and lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalvageReport {
    /// Where the damaged index was moved (when there was one).
    pub damaged_index: Option<PathBuf>,
    /// Index records carried over.
    pub records_kept: usize,
    /// Modules published again from their files.
    pub modules: usize,
    /// Each item lost: named where its key still says what it was.
    pub lost: Vec<(Damaged, String)>,
    /// Where in the damaged index the records were read from.
    pub read_from: ReadFrom,
}

/// Where a salvage read the damaged index's records, most trusted first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadFrom {
    /// Its latest commit, through redb (or there was no index to read).
    #[default]
    LatestCommit,
    /// Its latest commit, through redb, on a copy without redb's own bookkeeping (its
    /// allocator state), which was what could not be read: see
    /// [`Index::open_without_bookkeeping`].
    LatestCommitRebuilt,
    /// Its pages, read directly, because redb could read no commit of it
    /// ([`crate::carve`]): a `kv` key deleted shortly before the damage may be back.
    Pages,
}

impl ReadFrom {
    /// The words for it in reports (`spore verify --repair --json`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReadFrom::LatestCommit => "latest_commit",
            ReadFrom::LatestCommitRebuilt => "latest_commit_rebuilt",
            ReadFrom::Pages => "pages",
        }
    }
}

/// The copy of a damaged index opened without redb's bookkeeping, under `tmp/`.
const REBUILT: &str = "index.rebuilt.redb";

/// Tables whose records are carried over; the others (`meta`, `manifests`, `memo`,
/// `memo_order`, `kv_usage`, `notes`) are derived again or are caches.
fn carried(table: &str) -> bool {
    table == NAMES || table == NAME_HISTORY || table == PUBLICATIONS || table.starts_with(KV_PREFIX)
}

impl crate::Codebase {
    /// Replaces the index of the codebase at `path` with one built from what can still be
    /// read (see the module's documentation). The codebase must not be open.
    #[tracing::instrument(skip_all, fields(path = %path.display()))]
    pub fn salvage(path: &Path, options: &OpenOptions) -> Result<SalvageReport, StoreError> {
        let layout = Layout {
            root: path.to_owned(),
        };
        let _lock = crate::lock(&layout, options.lock_timeout)?;
        layout.create_dirs()?;
        let mut report = SalvageReport::default();
        let old = layout.index();
        if !old.exists() && crate::migrate::sled_present(&layout) {
            // The old database was never imported: importing it is the only way to it.
            crate::migrate::import(&layout)?;
            return Ok(report);
        }
        if old.exists() {
            let dir = layout.dir(DAMAGED);
            std::fs::create_dir_all(&dir).map_err(StoreError::io(&dir))?;
            let kept = dir.join(format!("{}.{}", layout::INDEX, crate::now_ms()));
            std::fs::rename(&old, &kept).map_err(StoreError::io(&kept))?;
            layout::sync_dir(&layout.root).map_err(StoreError::io(&layout.root))?;
            report.damaged_index = Some(kept);
        }
        let new_path = layout.dir(INDEX_NEW);
        let _ = std::fs::remove_file(&new_path);
        let new = Index::create(&new_path)?;
        if let Some(kept) = report.damaged_index.clone() {
            let scratch = layout.dir(TMP).join(REBUILT);
            let mut recorded_usage = BTreeMap::new();
            match readable(&kept, &scratch) {
                Ok((damaged, tables, read_from)) => {
                    report.read_from = read_from;
                    recorded_usage = pages::usage_records(&damaged);
                    copy_records(&damaged, tables, &new, &mut report)?;
                }
                Err(error) => {
                    tracing::warn!(%error, "no commit of the damaged index can be read; reading its pages");
                    report.read_from = ReadFrom::Pages;
                }
            }
            let _ = std::fs::remove_file(&scratch);
            pages::fill_in(&kept, &new, &recorded_usage, &mut report)?;
            pages::derive_names(&new)?;
        }
        republish_modules(&layout, &new, &mut report)?;
        drop(new);
        crate::install_index(&layout, &new_path)?;
        for (item, what) in &report.lost {
            tracing::error!(%item, what, "lost in salvaging the index");
        }
        tracing::warn!(
            kept = report.records_kept,
            modules = report.modules,
            lost = report.lost.len(),
            "the index was salvaged"
        );
        Ok(report)
    }
}

/// The damaged index at `kept` opened for reading its latest commit, with its list of
/// tables and how it was read: as it is when redb can open it and list its tables, else a copy at `scratch`
/// without redb's bookkeeping ([`Index::open_without_bookkeeping`]).
fn readable(kept: &Path, scratch: &Path) -> Result<(Index, Vec<String>, ReadFrom), StoreError> {
    let latest = Index::open_unverified(kept).and_then(|index| {
        let tables = index.table_names()?;
        Ok((index, tables))
    });
    match latest {
        Ok((index, tables)) => Ok((index, tables, ReadFrom::LatestCommit)),
        Err(error) => {
            tracing::warn!(%error, "redb cannot read the damaged index as it is; reading it without redb's bookkeeping");
            let index = Index::open_without_bookkeeping(kept, scratch)?;
            let tables = index.table_names()?;
            Ok((index, tables, ReadFrom::LatestCommitRebuilt))
        }
    }
}

/// Copies every verifiable record of the carried tables among `tables` from `damaged`
/// into `new`.
fn copy_records(
    damaged: &Index,
    tables: Vec<String>,
    new: &Index,
    report: &mut SalvageReport,
) -> Result<(), StoreError> {
    for table in tables.into_iter().filter(|t| carried(t)) {
        let mut after: Option<Vec<u8>> = None;
        // A damaged page can stop a scan part way; the scan resumes once past the key
        // it stopped after, and what it cannot reach is reported by table.
        for attempt in 0..2 {
            let mut good = Vec::new();
            let resume = after.clone();
            let scanned = damaged.read(|txn| {
                let Some(source) = damaged.read_table(txn, &table)? else {
                    return Ok(());
                };
                let start = match &resume {
                    Some(key) => Bound::Excluded(key.as_slice()),
                    None => Bound::Unbounded,
                };
                for item in source
                    .range::<&[u8]>((start, Bound::Unbounded))
                    .map_err(|e| damaged.err(e))?
                {
                    let (key, record) = item.map_err(|e| damaged.err(e))?;
                    let (key, record) = (key.value().to_vec(), record.value().to_vec());
                    match envelope::open(&table, &key, &record) {
                        Ok(_) => good.push((key.clone(), record)),
                        Err(why) => report.lost.push((item_of(&table, &key), why.to_owned())),
                    }
                    after = Some(key);
                }
                Ok(())
            });
            keep(new, &table, &good, report)?;
            match scanned {
                Ok(()) => break,
                Err(error) if attempt == 1 => report.lost.push((
                    Damaged::Record {
                        table: table.clone(),
                        key: after
                            .as_deref()
                            .map_or("(its first)".into(), |k| format!("after {}", shown(k))),
                    },
                    format!("the records from there on cannot be read: {error}"),
                )),
                Err(_) => {}
            }
        }
    }
    Ok(())
}

/// Stores `records` (keys and sealed records) in `table` of `new`, and counts them kept.
fn keep(
    new: &Index,
    table: &str,
    records: &[(Vec<u8>, Vec<u8>)],
    report: &mut SalvageReport,
) -> Result<(), StoreError> {
    new.write(Durability::Immediate, |txn| {
        let mut target = new.open_table(txn, table)?;
        for (key, record) in records {
            target
                .insert(key.as_slice(), record.as_slice())
                .map_err(|e| new.err(e))?;
        }
        Ok(())
    })?;
    report.records_kept += records.len();
    Ok(())
}

/// Derives a manifest for every intact module file and stores it; a damaged module file
/// is removed and reported.
fn republish_modules(
    layout: &Layout,
    new: &Index,
    report: &mut SalvageReport,
) -> Result<(), StoreError> {
    for (name, path) in layout::files(&layout.dir(MODULES))? {
        let Ok(hash) = name.parse::<Hash>() else {
            continue;
        };
        let bytes = std::fs::read(&path).map_err(StoreError::io(&path))?;
        let manifest = if Hash::of(&bytes) == hash {
            Manifest::derive(&bytes).map_err(|e| e.to_string())
        } else {
            Err("its bytes do not match their hash".into())
        };
        match manifest {
            Ok(manifest) => {
                let record = envelope::seal(MANIFESTS, hash.as_bytes(), &manifest.to_bytes());
                new.write(Durability::Immediate, |txn| {
                    new.open_table(txn, MANIFESTS)?
                        .insert(hash.as_bytes().as_slice(), record.as_slice())
                        .map_err(|e| new.err(e))?;
                    Ok(())
                })?;
                report.modules += 1;
            }
            Err(why) => {
                std::fs::remove_file(&path).map_err(StoreError::io(&path))?;
                report.lost.push((Damaged::Module(hash), why));
            }
        }
    }
    Ok(())
}

/// What a record of `table` under `key` belongs to, as far as the key says.
fn item_of(table: &str, key: &[u8]) -> Damaged {
    if let Some(namespace) = table.strip_prefix(KV_PREFIX) {
        return Damaged::Kv {
            namespace: namespace.to_owned(),
            key: String::from_utf8_lossy(key).into_owned(),
        };
    }
    if table == NAMES
        && let Ok(name) = parse_name(table, key)
    {
        return Damaged::Name(name);
    }
    if table == NAME_HISTORY
        && let Some(split) = key.iter().position(|b| *b == 0)
        && let Ok(name) = parse_name(table, &key[..split])
    {
        let seq = history_seq(&key[..=split], key);
        return Damaged::NameHistory { name, seq };
    }
    Damaged::Record {
        table: table.to_owned(),
        key: shown(key),
    }
}

fn shown(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(text) => format!("`{}`", text.escape_debug()),
        Err(_) => crate::modules::hex(key),
    }
}
