//! Memoized results of pure functions, keyed by a hash of the function reference and
//! the canonical arguments. A cache: losing it costs only recomputation. So its writes
//! are not forced to disk (they become durable with the next write that is), a damaged
//! entry is dropped with a log line, and its size is capped: beyond
//! [`crate::OpenOptions::memo_max_bytes`] the oldest entries go first.

use std::collections::HashMap;
use std::sync::Arc;

use redb::{Durability, ReadableTable, ReadableTableMetadata, WriteTransaction};
use spore_core::Hash;

use crate::index::{MEMO, MEMO_ORDER, META};
use crate::{Codebase, StoreError, envelope};

/// `meta` key of the memo's total size (bytes of entries).
const BYTES_KEY: &[u8] = b"memo_bytes";
/// A memo record: insertion number, module hash, entry.
const RECORD_HEAD: usize = 8 + 32;

/// The entries read or written most recently, in memory: a hot pure route is answered
/// from here without a read transaction (which cost about a tenth of a routed request),
/// and without leaving the thread that took the request (`Codebase::memo_get_hot`).
/// Bounded by count and bytes; emptied when full, cleared with the memo, and an entry
/// leaves it when its record does.
#[derive(Default)]
pub(crate) struct HotMemo {
    entries: HashMap<Hash, Arc<[u8]>>,
    bytes: usize,
}

impl HotMemo {
    const MAX_ENTRIES: usize = 4096;
    const MAX_BYTES: usize = 4 << 20;

    fn insert(&mut self, key: Hash, entry: Arc<[u8]>) {
        if self.entries.len() >= Self::MAX_ENTRIES || self.bytes + entry.len() > Self::MAX_BYTES {
            self.clear();
        }
        self.bytes += entry.len();
        if let Some(old) = self.entries.insert(key, entry) {
            self.bytes -= old.len();
        }
    }

    fn remove(&mut self, key: &Hash) {
        if let Some(old) = self.entries.remove(key) {
            self.bytes -= old.len();
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

impl Codebase {
    pub fn memo_get(&self, key: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(entry) = self.memo_get_hot(key) {
            return Ok(Some(entry.to_vec()));
        }
        let index = self.index();
        match index.read(|txn| index.get(txn, MEMO, key.as_bytes()))? {
            None => Ok(None),
            Some(Ok(record)) if record.len() >= RECORD_HEAD => {
                let entry: Arc<[u8]> = record[RECORD_HEAD..].into();
                self.hot_memo().insert(*key, entry.clone());
                Ok(Some(entry.to_vec()))
            }
            Some(_) => {
                tracing::warn!(%key, "a memoized result is damaged; running the function instead");
                Ok(None)
            }
        }
    }

    /// The entry under `key` if it is held in memory, without reading the index: for a
    /// caller that must not block (an async task).
    pub fn memo_get_hot(&self, key: &Hash) -> Option<Arc<[u8]>> {
        self.hot_memo().entries.get(key).cloned()
    }

    fn hot_memo(&self) -> std::sync::MutexGuard<'_, HotMemo> {
        self.inner
            .hot_memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers `entry`, the result of a call into module `module`, evicting the oldest
    /// entries beyond the cap. An entry larger than the whole cap is not kept.
    pub fn memo_put(&self, key: &Hash, module: &Hash, entry: &[u8]) -> Result<(), StoreError> {
        let max = self.inner.memo_max_bytes;
        if entry.len() as u64 > max {
            return Ok(());
        }
        let index = self.index();
        let mut evicted = Vec::new();
        index.write(Durability::None, |txn| {
            evicted.clear();
            let mut bytes = self.memo_bytes_in(txn)?;
            bytes -= self.memo_forget_in(txn, key)?.min(bytes);
            let mut order = index.open_table(txn, MEMO_ORDER)?;
            let seq = order
                .last()
                .map_err(|e| index.err(e))?
                .and_then(|(k, _)| <[u8; 8]>::try_from(k.value()).ok())
                .map_or(0, |k| u64::from_be_bytes(k) + 1);
            let seq_key = seq.to_be_bytes();
            order
                .insert(
                    seq_key.as_slice(),
                    envelope::seal(MEMO_ORDER, &seq_key, key.as_bytes()).as_slice(),
                )
                .map_err(|e| index.err(e))?;
            drop(order);
            let mut record = Vec::with_capacity(RECORD_HEAD + entry.len());
            record.extend_from_slice(&seq_key);
            record.extend_from_slice(module.as_bytes());
            record.extend_from_slice(entry);
            index
                .open_table(txn, MEMO)?
                .insert(
                    key.as_bytes().as_slice(),
                    envelope::seal(MEMO, key.as_bytes(), &record).as_slice(),
                )
                .map_err(|e| index.err(e))?;
            bytes += entry.len() as u64;
            while bytes > max {
                let Some(oldest) = self.memo_oldest_in(txn)? else {
                    break;
                };
                bytes -= self.memo_forget_in(txn, &oldest)?.min(bytes);
                evicted.push(oldest);
            }
            self.set_memo_bytes(txn, bytes)
        })?;
        let mut hot = self.hot_memo();
        for key in &evicted {
            hot.remove(key);
        }
        hot.insert(*key, entry.into());
        Ok(())
    }

    /// Forgets every memoized result; returns how many there were.
    pub fn memo_clear(&self) -> Result<usize, StoreError> {
        let index = self.index();
        index
            .write(Durability::Immediate, |txn| {
                let count = index
                    .open_table(txn, MEMO)?
                    .len()
                    .map_err(|e| index.err(e))?;
                for table in [MEMO, MEMO_ORDER] {
                    txn.delete_table(crate::index::table(table))
                        .map_err(|e| index.err(e))?;
                }
                self.set_memo_bytes(txn, 0)?;
                Ok(count as usize)
            })
            .inspect(|_| self.hot_memo().clear())
    }

    /// Drops the memo entries of modules not in `keep`; returns how many.
    pub(crate) fn memo_retain_modules(
        &self,
        keep: &std::collections::BTreeSet<Hash>,
    ) -> Result<usize, StoreError> {
        let index = self.index();
        index
            .write(Durability::Immediate, |txn| {
                let mut doomed = Vec::new();
                {
                    let table = index.open_table(txn, MEMO)?;
                    for item in table.iter().map_err(|e| index.err(e))? {
                        let (key, record) = item.map_err(|e| index.err(e))?;
                        let key = key.value();
                        let module = envelope::open(MEMO, key, record.value())
                            .ok()
                            .and_then(|r| r.get(8..RECORD_HEAD))
                            .and_then(Hash::from_slice);
                        if !module.is_some_and(|m| keep.contains(&m)) {
                            doomed.push(key.to_vec());
                        }
                    }
                }
                let mut bytes = self.memo_bytes_in(txn)?;
                for key in &doomed {
                    let freed = match Hash::from_slice(key) {
                        Some(hash) => self.memo_forget_in(txn, &hash)?,
                        None => {
                            index
                                .open_table(txn, MEMO)?
                                .remove(key.as_slice())
                                .map_err(|e| index.err(e))?;
                            0
                        }
                    };
                    bytes -= freed.min(bytes);
                }
                self.set_memo_bytes(txn, bytes)?;
                Ok(doomed.len())
            })
            .inspect(|_| self.hot_memo().clear())
    }

    /// Removes the entry under `key` and its place in the eviction order; returns the
    /// bytes it took.
    fn memo_forget_in(&self, txn: &WriteTransaction, key: &Hash) -> Result<u64, StoreError> {
        let index = self.index();
        let removed = index
            .open_table(txn, MEMO)?
            .remove(key.as_bytes().as_slice())
            .map_err(|e| index.err(e))?
            .map(|record| record.value().to_vec());
        let Some(record) = removed else {
            return Ok(0);
        };
        let size = envelope::value_len(&record).saturating_sub(RECORD_HEAD as u64);
        if let Ok(value) = envelope::open(MEMO, key.as_bytes(), &record)
            && let Some(seq) = value.get(..8)
        {
            index
                .open_table(txn, MEMO_ORDER)?
                .remove(seq)
                .map_err(|e| index.err(e))?;
        }
        Ok(size)
    }

    /// The key of the oldest entry, dropping order records that lead nowhere.
    fn memo_oldest_in(&self, txn: &WriteTransaction) -> Result<Option<Hash>, StoreError> {
        let index = self.index();
        let mut order = index.open_table(txn, MEMO_ORDER)?;
        loop {
            let Some((seq, record)) = order.pop_first().map_err(|e| index.err(e))? else {
                return Ok(None);
            };
            let key = envelope::open(MEMO_ORDER, seq.value(), record.value())
                .ok()
                .and_then(Hash::from_slice);
            if let Some(key) = key {
                return Ok(Some(key));
            }
        }
    }

    fn memo_bytes_in(&self, txn: &WriteTransaction) -> Result<u64, StoreError> {
        let index = self.index();
        let recorded = index
            .open_table(txn, META)?
            .get(BYTES_KEY)
            .map_err(|e| index.err(e))?
            .and_then(|record| {
                envelope::open(META, BYTES_KEY, record.value())
                    .ok()
                    .and_then(|v| <[u8; 8]>::try_from(v).ok())
                    .map(u64::from_le_bytes)
            });
        if let Some(bytes) = recorded {
            return Ok(bytes);
        }
        // Missing (a new index) or damaged: count again.
        let mut total = 0;
        for item in index
            .open_table(txn, MEMO)?
            .iter()
            .map_err(|e| index.err(e))?
        {
            let (_, record) = item.map_err(|e| index.err(e))?;
            total += envelope::value_len(record.value()).saturating_sub(RECORD_HEAD as u64);
        }
        Ok(total)
    }

    fn set_memo_bytes(&self, txn: &WriteTransaction, bytes: u64) -> Result<(), StoreError> {
        let index = self.index();
        index
            .open_table(txn, META)?
            .insert(
                BYTES_KEY,
                envelope::seal(META, BYTES_KEY, &bytes.to_le_bytes()).as_slice(),
            )
            .map_err(|e| index.err(e))?;
        Ok(())
    }
}
