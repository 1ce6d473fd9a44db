//! Replacing an index that cannot be opened (it fails redb's integrity check, or is
//! missing while modules remain) with a new one holding everything that can still be
//! read and verifies, and saying what could not.
//!
//! The damaged file is moved to `codebase/damaged/`, never deleted. Every record read
//! from it is kept only if its envelope verifies; manifests are derived again from the
//! module files (so every intact module is published again, including one whose
//! publication a crash interrupted); memo entries and usage counts are not carried over.

use std::ops::Bound;
use std::path::{Path, PathBuf};

use redb::Durability;
use spore_core::{Hash, Manifest};

use crate::error::Damaged;
use crate::index::{Index, KV_PREFIX, MANIFESTS, NAME_HISTORY, NAMES};
use crate::layout::{self, DAMAGED, INDEX_NEW, Layout, MODULES};
use crate::names::{history_seq, parse_name};
use crate::{OpenOptions, StoreError, envelope};

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
}

/// Tables whose records are carried over; the others (`meta`, `manifests`, `memo`,
/// `memo_order`, `kv_usage`, `notes`) are derived again or are caches.
fn carried(table: &str) -> bool {
    table == NAMES || table == NAME_HISTORY || table.starts_with(KV_PREFIX)
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
        if let Some(kept) = &report.damaged_index {
            match Index::open_unverified(kept) {
                Ok(damaged) => copy_records(&damaged, &new, &mut report)?,
                Err(error) => report.lost.push((
                    Damaged::Index(kept.clone()),
                    format!("nothing in it could be read: {error}"),
                )),
            }
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

/// Copies every verifiable record of the carried tables from `damaged` into `new`.
fn copy_records(
    damaged: &Index,
    new: &Index,
    report: &mut SalvageReport,
) -> Result<(), StoreError> {
    let tables = match damaged.table_names() {
        Ok(tables) => tables,
        Err(error) => {
            report.lost.push((
                Damaged::Index(damaged.path().to_owned()),
                format!("its list of tables cannot be read ({error}); names and kv data are lost"),
            ));
            return Ok(());
        }
    };
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
            report.records_kept += good.len();
            new.write(Durability::Immediate, |txn| {
                let mut target = new.open_table(txn, &table)?;
                for (key, record) in &good {
                    target
                        .insert(key.as_slice(), record.as_slice())
                        .map_err(|e| new.err(e))?;
                }
                Ok(())
            })?;
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
