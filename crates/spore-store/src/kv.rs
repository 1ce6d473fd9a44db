//! Key-value spaces for the `kv` ability: one index table per namespace, beside the
//! code, each with a byte quota.
//!
//! A write returns once it is on disk. Writes arriving together share one commit (one
//! fsync): the first writer to find no commit under way takes every write queued so far
//! into one transaction, commits it, and hands each writer its own outcome; the others
//! wait for theirs. Each write in a batch succeeds or fails alone (a quota, a
//! compare-and-swap that does not match); only a failed commit fails them all.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

use redb::{Durability, ReadableTable, WriteTransaction};

use crate::error::Damaged;
use crate::index::{KV_USAGE, kv_table};
use crate::{Codebase, StoreError, envelope};

/// One namespace of key-value data. Values are opaque bytes to the store.
#[derive(Clone)]
pub struct KvSpace {
    codebase: Codebase,
    namespace: String,
    table: String,
    /// The most bytes (keys plus values) the namespace may hold.
    quota: Option<u64>,
}

impl Codebase {
    /// The key-value space called `namespace` (created on its first write), without a
    /// quota.
    pub fn kv_space(&self, namespace: &str) -> Result<KvSpace, StoreError> {
        Ok(KvSpace {
            codebase: self.clone(),
            namespace: namespace.to_owned(),
            table: kv_table(namespace),
            quota: None,
        })
    }
}

impl KvSpace {
    /// The same space, refusing a write that would make it hold more than `bytes` (keys
    /// plus values). A write that shrinks the space is always allowed.
    pub fn with_quota(mut self, bytes: u64) -> KvSpace {
        self.quota = Some(bytes);
        self
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let index = self.codebase.index();
        match index.read(|txn| index.get(txn, &self.table, key.as_bytes()))? {
            None => Ok(None),
            Some(Ok(value)) => Ok(Some(value)),
            Some(Err(why)) => Err(self.damaged(key, why)),
        }
    }

    pub fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.submit(key, Change::Put(value.to_vec())).map(|_| ())
    }

    /// Removes `key`; returns whether it existed.
    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.submit(key, Change::Delete)
    }

    /// Sets `key` to `new` (None: delete) if its current value is `expected` (None:
    /// absent). Returns whether the swap happened.
    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        self.submit(
            key,
            Change::Swap {
                expected: expected.map(<[u8]>::to_vec),
                new: new.map(<[u8]>::to_vec),
            },
        )
    }

    /// Up to `limit` keys starting with `prefix`, in byte order. A damaged record among
    /// them fails the listing, naming it.
    pub fn list(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let index = self.codebase.index();
        index.read(|txn| {
            let mut keys = Vec::new();
            let Some(table) = index.read_table(txn, &self.table)? else {
                return Ok(keys);
            };
            for item in table
                .range::<&[u8]>(prefix.as_bytes()..)
                .map_err(|e| index.err(e))?
            {
                if keys.len() >= limit {
                    break;
                }
                let (key, record) = item.map_err(|e| index.err(e))?;
                let key = key.value();
                if !key.starts_with(prefix.as_bytes()) {
                    break;
                }
                let text = String::from_utf8_lossy(key).into_owned();
                envelope::open(&self.table, key, record.value())
                    .map_err(|why| self.damaged(&text, why))?;
                keys.push(text);
            }
            Ok(keys)
        })
    }

    /// The bytes (keys plus values) the namespace holds.
    pub fn usage(&self) -> Result<u64, StoreError> {
        let index = self.codebase.index();
        index.read(|txn| {
            let Some(table) = index.read_table(txn, &self.table)? else {
                return Ok(0);
            };
            let mut total = 0;
            for item in table.iter().map_err(|e| index.err(e))? {
                let (key, record) = item.map_err(|e| index.err(e))?;
                total += key.value().len() as u64 + envelope::value_len(record.value());
            }
            Ok(total)
        })
    }

    fn damaged(&self, key: &str, why: &str) -> StoreError {
        StoreError::corrupt(
            Damaged::Kv {
                namespace: self.namespace.clone(),
                key: key.to_owned(),
            },
            why,
        )
    }

    fn submit(&self, key: &str, change: Change) -> Result<bool, StoreError> {
        let write = Write {
            space: self.clone(),
            key: key.to_owned(),
            change,
        };
        self.codebase.inner.kv.submit(&self.codebase, write)
    }
}

enum Change {
    Put(Vec<u8>),
    Delete,
    Swap {
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    },
}

struct Write {
    space: KvSpace,
    key: String,
    change: Change,
}

/// The queue of `kv` writes waiting for a commit (see the module's documentation).
#[derive(Default)]
pub(crate) struct Writer {
    queue: Mutex<Queue>,
    done: Condvar,
}

#[derive(Default)]
struct Queue {
    next_ticket: u64,
    waiting: Vec<(u64, Write)>,
    outcomes: HashMap<u64, Result<bool, StoreError>>,
    committing: bool,
}

impl Writer {
    fn submit(&self, codebase: &Codebase, write: Write) -> Result<bool, StoreError> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.waiting.push((ticket, write));
        loop {
            if let Some(outcome) = queue.outcomes.remove(&ticket) {
                return outcome;
            }
            if queue.committing {
                queue = self.done.wait(queue).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            queue.committing = true;
            let batch = std::mem::take(&mut queue.waiting);
            drop(queue);
            let outcomes = codebase.commit_kv(batch);
            queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.committing = false;
            queue.outcomes.extend(outcomes);
            self.done.notify_all();
        }
    }
}

impl Codebase {
    /// Applies `batch` in one transaction and commits it durably; each write's outcome.
    fn commit_kv(&self, batch: Vec<(u64, Write)>) -> Vec<(u64, Result<bool, StoreError>)> {
        let tickets: Vec<u64> = batch.iter().map(|(ticket, _)| *ticket).collect();
        let index = self.index();
        let committed = index.write(Durability::Immediate, |txn| {
            let mut usage = HashMap::new();
            batch
                .iter()
                .map(|(ticket, write)| Ok((*ticket, self.apply_kv(txn, &mut usage, write)?)))
                .collect::<Result<Vec<_>, StoreError>>()
                .and_then(|outcomes| {
                    let mut table = index.open_table(txn, KV_USAGE)?;
                    for (namespace, bytes) in usage {
                        let key = namespace.as_bytes();
                        let record = envelope::seal(KV_USAGE, key, &u64::to_le_bytes(bytes));
                        table
                            .insert(key, record.as_slice())
                            .map_err(|e| index.err(e))?;
                    }
                    Ok(outcomes)
                })
        });
        match committed {
            Ok(outcomes) => outcomes,
            Err(error) => {
                let error = Arc::new(error);
                tickets
                    .into_iter()
                    .map(|ticket| (ticket, Err(StoreError::Shared(error.clone()))))
                    .collect()
            }
        }
    }

    /// Applies one write in `txn`. The outer error fails the whole batch (the index
    /// failed); the inner one only this write.
    fn apply_kv(
        &self,
        txn: &WriteTransaction,
        usage: &mut HashMap<String, u64>,
        write: &Write,
    ) -> Result<Result<bool, StoreError>, StoreError> {
        let index = self.index();
        let space = &write.space;
        let key = write.key.as_bytes();
        let used = match usage.get(&space.namespace) {
            Some(used) => *used,
            None => self.kv_usage_in(txn, space)?,
        };
        let mut table = index.open_table(txn, &space.table)?;
        let current = table
            .get(key)
            .map_err(|e| index.err(e))?
            .map(|record| record.value().to_vec());
        let new = match &write.change {
            Change::Put(value) => Some(value.as_slice()),
            Change::Delete => None,
            Change::Swap { expected, new } => {
                let now = match &current {
                    None => None,
                    Some(record) => match envelope::open(&space.table, key, record) {
                        Ok(value) => Some(value),
                        Err(why) => return Ok(Err(space.damaged(&write.key, why))),
                    },
                };
                if now != expected.as_deref() {
                    return Ok(Ok(false));
                }
                new.as_deref()
            }
        };
        let size = |len: u64| key.len() as u64 + len;
        let old = current
            .as_deref()
            .map_or(0, |r| size(envelope::value_len(r)));
        let would = used - old.min(used) + new.map_or(0, |v| size(v.len() as u64));
        if let Some(quota) = space.quota
            && would > quota
            && would > used
        {
            return Ok(Err(StoreError::QuotaExceeded {
                namespace: space.namespace.clone(),
                would,
                quota,
            }));
        }
        match new {
            Some(value) => {
                let record = envelope::seal(&space.table, key, value);
                table
                    .insert(key, record.as_slice())
                    .map_err(|e| index.err(e))?;
            }
            None => {
                table.remove(key).map_err(|e| index.err(e))?;
            }
        }
        usage.insert(space.namespace.clone(), would);
        Ok(Ok(match write.change {
            Change::Delete => current.is_some(),
            _ => true,
        }))
    }

    /// The bytes namespace `space` holds, from its usage record or, when that is missing
    /// or damaged, counted again.
    fn kv_usage_in(&self, txn: &WriteTransaction, space: &KvSpace) -> Result<u64, StoreError> {
        let index = self.index();
        let key = space.namespace.as_bytes();
        let recorded = index
            .open_table(txn, KV_USAGE)?
            .get(key)
            .map_err(|e| index.err(e))?
            .map(|record| {
                envelope::open(KV_USAGE, key, record.value())
                    .ok()
                    .and_then(|v| <[u8; 8]>::try_from(v).ok())
                    .map(u64::from_le_bytes)
            });
        if let Some(Some(bytes)) = recorded {
            return Ok(bytes);
        }
        let table = index.open_table(txn, &space.table)?;
        let mut total = 0;
        for item in table.iter().map_err(|e| index.err(e))? {
            let (key, record) = item.map_err(|e| index.err(e))?;
            total += key.value().len() as u64 + envelope::value_len(record.value());
        }
        if recorded.is_some() {
            tracing::info!(namespace = %space.namespace, total, "a kv usage record was damaged; counted again");
        }
        Ok(total)
    }
}
