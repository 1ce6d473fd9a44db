//! Reading sealed records straight out of the pages of an index file whose table
//! directory redb cannot read: the last resort of a salvage ([`crate::salvage`]).
//!
//! redb finds a table through its table tree, one small tree shared by every commit; one
//! flipped byte in its page (the long damage sweep found two in 300) leaves every
//! table's pages whole and unreachable. This reads each 4 KiB boundary of the file as a
//! redb leaf page (the layout is redb's documented file format: a type byte `1`, a
//! reserved byte, a little-endian u16 count `n`, `n` u32 key ends, `n` u32 value ends,
//! the keys, then the values, every offset from the start of the page) and keeps every
//! pair whose value opens as a sealed record of a table it could belong to. Since a
//! record opens only under its own table and key ([`crate::envelope`]), nothing read this
//! way can be wrong data for its key; what pages cannot tell is which of several copies
//! is current, because a page that a later commit replaced keeps its bytes until reused.
//! So: a name's history is append-only, and its current event is its last; a `kv` key
//! found with different values is reported lost rather than guessed at; and a `kv` key
//! deleted shortly before the damage can come back (what the salvage report says).
//!
//! This module must not know anything of redb beyond the leaf layout above.

use std::collections::{BTreeMap, BTreeSet};

use crate::envelope;
use crate::index::{KV_PREFIX, KV_USAGE, NAME_HISTORY, PUBLICATIONS, kv_table};

/// redb's page size: every page, of any order, starts at a multiple of it.
const PAGE: usize = 4096;
/// redb's type byte of a leaf page.
const LEAF: u8 = 1;

/// The records found in an index file's pages, by table and key: each with every
/// distinct sealed record found for it.
#[derive(Debug, Default)]
pub struct Carved {
    pub tables: BTreeMap<String, BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>>>,
}

/// Every sealed record of `name_history` and of each `kv` table found in `file`, the
/// bytes of an index file.
pub fn carve(file: &[u8]) -> Carved {
    let pairs: Vec<(&[u8], &[u8])> = (0..file.len())
        .step_by(PAGE)
        .flat_map(|start| leaf_pairs(&file[start..]))
        .collect();
    // The `kv` tables there are: each namespace's usage record names it, and the table
    // tree's own leaves (when whole) hold the tables' names as keys.
    let mut tables: BTreeSet<String> =
        BTreeSet::from([NAME_HISTORY.to_owned(), PUBLICATIONS.to_owned()]);
    for (key, value) in &pairs {
        let Ok(text) = std::str::from_utf8(key) else {
            continue;
        };
        if text.starts_with(KV_PREFIX) {
            tables.insert(text.to_owned());
        } else if envelope::open(KV_USAGE, key, value).is_ok() {
            tables.insert(kv_table(text));
        }
    }
    let mut carved = Carved::default();
    for (key, value) in pairs {
        for table in &tables {
            if envelope::open(table, key, value).is_ok() {
                carved
                    .tables
                    .entry(table.clone())
                    .or_default()
                    .entry(key.to_vec())
                    .or_default()
                    .insert(value.to_vec());
            }
        }
    }
    carved
}

/// The key-value pairs of the leaf page at the start of `page` (which runs to the end of
/// the file: a page of a higher order spans several 4 KiB pages); none when its header
/// does not describe a leaf that fits.
fn leaf_pairs(page: &[u8]) -> Vec<(&[u8], &[u8])> {
    let u32_at = |at: usize| -> Option<usize> {
        let bytes = page.get(at..at + 4)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?) as usize)
    };
    if page.len() < 4 || page[0] != LEAF {
        return Vec::new();
    }
    let entries = u16::from_le_bytes([page[2], page[3]]) as usize;
    let header = 4 + 8 * entries;
    if entries == 0 || header > page.len() {
        return Vec::new();
    }
    let mut pairs = Vec::with_capacity(entries);
    let ends = |i: usize| Some((u32_at(4 + 4 * i)?, u32_at(4 + 4 * (entries + i))?));
    let Some((last_key_end, _)) = ends(entries - 1) else {
        return Vec::new();
    };
    let (mut key_start, mut value_start) = (header, last_key_end);
    for i in 0..entries {
        let Some((key_end, value_end)) = ends(i) else {
            return Vec::new();
        };
        let (Some(key), Some(value)) = (
            page.get(key_start..key_end),
            page.get(value_start..value_end),
        ) else {
            return Vec::new();
        };
        pairs.push((key, value));
        (key_start, value_start) = (key_end, value_end);
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A leaf page as redb lays one out.
    fn leaf(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut page = vec![LEAF, 0];
        page.extend_from_slice(&(pairs.len() as u16).to_le_bytes());
        let header = 4 + 8 * pairs.len();
        let mut end = header;
        for (key, _) in pairs {
            end += key.len();
            page.extend_from_slice(&(end as u32).to_le_bytes());
        }
        for (_, value) in pairs {
            end += value.len();
            page.extend_from_slice(&(end as u32).to_le_bytes());
        }
        for (key, _) in pairs {
            page.extend_from_slice(key);
        }
        for (_, value) in pairs {
            page.extend_from_slice(value);
        }
        page.resize(PAGE, 0);
        page
    }

    #[test]
    fn sealed_records_are_found_in_leaves_and_their_tables_told_by_the_seal() {
        let usage = envelope::seal(KV_USAGE, b"alpha", &7u64.to_le_bytes());
        let kv = envelope::seal("kv.alpha", b"k", b"value");
        let event = envelope::seal(NAME_HISTORY, b"math.add\0\0\0\0\0\0\0\0\x01", b"e");
        let mut file = leaf(&[(b"alpha", &usage)]);
        file.extend(leaf(&[
            (b"k", &kv),
            (b"math.add\0\0\0\0\0\0\0\0\x01", &event),
        ]));
        // A page that only looks like a leaf, and one whose offsets run off the file.
        file.extend(leaf(&[(b"k", b"not sealed")]));
        let mut broken = leaf(&[(b"k", &kv)]);
        broken[8] = 0xff;
        file.extend(broken);
        let carved = carve(&file);
        let found: Vec<(&str, &[u8])> = carved
            .tables
            .iter()
            .flat_map(|(t, keys)| keys.keys().map(move |k| (t.as_str(), k.as_slice())))
            .collect();
        assert_eq!(
            found,
            [
                ("kv.alpha", &b"k"[..]),
                ("name_history", b"math.add\0\0\0\0\0\0\0\0\x01")
            ]
        );
        assert_eq!(carved.tables["kv.alpha"][&b"k"[..]].len(), 1);
    }
}
