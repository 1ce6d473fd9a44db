//! What a salvage takes from the records found in the damaged index's pages
//! ([`super::carve`]) beyond what redb could read of it, and the names derived again.
//!
//! A page holds records of the commit that wrote it until a later commit reuses it, so a
//! sealed record found in the pages is one the index held at some point, not
//! necessarily now. Each table is judged by what can change in it:
//! - `name_history` only ever gains events, so every event found is one the name had:
//!   all are kept.
//! - A `kv` record can be written over or deleted. When redb could read the index, what
//!   it read is current, and a namespace's usage record (bytes of keys and values) says
//!   whether that is all: if it adds up, records found only in pages are stale and left
//!   out; if the records found only in pages make up the difference, they are kept;
//!   otherwise each is reported as possibly lost. When redb could read nothing, a record
//!   found in one version is kept and one found in several is reported lost.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use redb::{Durability, ReadableTable};

use super::{ReadFrom, SalvageReport, carve, item_of, keep};
use crate::StoreError;
use crate::envelope;
use crate::error::Damaged;
use crate::index::{Index, KV_PREFIX, KV_USAGE, NAME_HISTORY, NAMES};
use crate::names::{decode_entry, history_seq};

/// Each namespace's usage record in `damaged` (bytes of keys and values), where it opens.
pub fn usage_records(damaged: &Index) -> BTreeMap<String, u64> {
    let read = damaged.read(|txn| {
        let mut usage = BTreeMap::new();
        let Some(table) = damaged.read_table(txn, KV_USAGE)? else {
            return Ok(usage);
        };
        for item in table.iter().map_err(|e| damaged.err(e))? {
            let (key, record) = item.map_err(|e| damaged.err(e))?;
            let bytes = envelope::open(KV_USAGE, key.value(), record.value())
                .ok()
                .and_then(|v| <[u8; 8]>::try_from(v).ok());
            if let (Ok(namespace), Some(bytes)) = (std::str::from_utf8(key.value()), bytes) {
                usage.insert(namespace.to_owned(), u64::from_le_bytes(bytes));
            }
        }
        Ok(usage)
    });
    read.unwrap_or_default()
}

/// Adds to `new` what the pages of the damaged index at `kept` hold beyond what it has
/// (see the module's documentation); `recorded_usage` is [`usage_records`] of it.
pub fn fill_in(
    kept: &Path,
    new: &Index,
    recorded_usage: &BTreeMap<String, u64>,
    report: &mut SalvageReport,
) -> Result<(), StoreError> {
    let file = match std::fs::read(kept) {
        Ok(file) => file,
        Err(error) => {
            if report.read_from == ReadFrom::Pages {
                report.lost.push((
                    Damaged::Index(kept.to_owned()),
                    format!("nothing in it could be read: {error}"),
                ));
            }
            return Ok(());
        }
    };
    if report.read_from == ReadFrom::Pages {
        // Without redb's directory of tables nothing says what the index held: what was
        // in a page that is damaged or gone is lost without a name.
        report.lost.push((
            Damaged::Index(kept.to_owned()),
            "redb could read no commit of it, so its records were read from its pages: any in a damaged or missing page are lost and cannot be named, and a kv key deleted shortly before the damage may be back".into(),
        ));
    }
    for (table, found) in carve::carve(&file).tables {
        let held = held(new, &table)?;
        let extra: Vec<(Vec<u8>, BTreeSet<Vec<u8>>)> = found
            .into_iter()
            .filter(|(key, _)| !held.contains_key(key))
            .collect();
        if extra.is_empty() {
            continue;
        }
        let (single, several): (Vec<_>, Vec<_>) = extra
            .into_iter()
            .partition(|(_, versions)| versions.len() == 1);
        for (key, _) in &several {
            report.lost.push((
                item_of(&table, key),
                "its page was damaged, and several values of it were found in older pages; which is current cannot be told".into(),
            ));
        }
        let single: Vec<(Vec<u8>, Vec<u8>)> = single
            .into_iter()
            .filter_map(|(key, versions)| Some((key, versions.into_iter().next()?)))
            .collect();
        let kept = match table.strip_prefix(KV_PREFIX) {
            None => true,
            Some(_) if report.read_from == ReadFrom::Pages => true,
            Some(namespace) => {
                let bytes = |records: &mut dyn Iterator<Item = (&Vec<u8>, &Vec<u8>)>| -> u64 {
                    records
                        .map(|(k, r)| k.len() as u64 + envelope::value_len(r))
                        .sum()
                };
                let had = bytes(&mut held.iter());
                let with = had + bytes(&mut single.iter().map(|(k, r)| (k, r)));
                match recorded_usage.get(namespace) {
                    // All there: what only the pages hold was written over or deleted.
                    Some(recorded) if *recorded == had => continue,
                    Some(recorded) if *recorded == with && several.is_empty() => true,
                    _ => {
                        for (key, _) in &single {
                            report.lost.push((
                                item_of(&table, key),
                                "its page was damaged; an older page holds a value of it, but whether that value was still current cannot be told".into(),
                            ));
                        }
                        false
                    }
                }
            }
        };
        if !kept || single.is_empty() {
            continue;
        }
        keep(new, &table, &single, report)?;
        // Given back: no longer among what was lost.
        let restored: BTreeSet<Damaged> = single.iter().map(|(k, _)| item_of(&table, k)).collect();
        report.lost.retain(|(item, _)| !restored.contains(item));
    }
    Ok(())
}

/// Points each name of `new` where the last event of its history says (its `names`
/// record, when that is later than every event its history kept).
pub fn derive_names(new: &Index) -> Result<(), StoreError> {
    let mut latest: BTreeMap<Vec<u8>, (u64, Vec<u8>)> = BTreeMap::new();
    for (key, record) in held(new, NAMES)? {
        if let Some(entry) = envelope::open(NAMES, &key, &record)
            .ok()
            .and_then(|v| decode_entry(v).ok())
        {
            latest.insert(key, (entry.seq, record[envelope::HEADER..].to_vec()));
        }
    }
    for (key, record) in held(new, NAME_HISTORY)? {
        let Some(split) = key.iter().position(|b| *b == 0) else {
            continue;
        };
        let seq = history_seq(&key[..=split], &key);
        let name = key[..split].to_vec();
        if latest.get(&name).is_none_or(|(last, _)| seq > *last) {
            latest.insert(name, (seq, record[envelope::HEADER..].to_vec()));
        }
    }
    new.write(Durability::Immediate, |txn| {
        let mut names = new.open_table(txn, NAMES)?;
        for (name, (_, event)) in &latest {
            let record = envelope::seal(NAMES, name, event);
            names
                .insert(name.as_slice(), record.as_slice())
                .map_err(|e| new.err(e))?;
        }
        Ok(())
    })
}

/// Every record of `table` in `new` (which it wrote itself, so whole), by key.
fn held(new: &Index, table: &str) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, StoreError> {
    new.read(|txn| {
        let mut records = BTreeMap::new();
        let Some(source) = new.read_table(txn, table)? else {
            return Ok(records);
        };
        for item in source.iter().map_err(|e| new.err(e))? {
            let (key, record) = item.map_err(|e| new.err(e))?;
            records.insert(key.value().to_vec(), record.value().to_vec());
        }
        Ok(records)
    })
}
