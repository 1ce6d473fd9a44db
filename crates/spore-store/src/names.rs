//! Names and their append-only history, as in Unison: setting a name never forgets
//! what it pointed at before, and a rollback is just setting it to an older reference.
//!
//! The `names` table holds each name's latest event, which is also the last event of its
//! history (both are written in one transaction): a damaged `names` record is derived
//! again from the history.

use redb::{Durability, ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use spore_core::{FunctionRef, Hash, Name, value};

use crate::error::Damaged;
use crate::index::{NAME_HISTORY, NAMES};
use crate::{Codebase, StoreError, envelope, now_ms};

/// One step in a name's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameEntry {
    /// Position in the name's history, from 1.
    pub seq: u64,
    pub event: NameEvent,
    /// When it happened, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameEvent {
    Set(FunctionRef),
    Removed,
}

impl NameEntry {
    pub fn target(&self) -> Option<&FunctionRef> {
        match &self.event {
            NameEvent::Set(target) => Some(target),
            NameEvent::Removed => None,
        }
    }
}

impl Codebase {
    /// Points `name` at `target`, appending to its history.
    pub fn set_name(&self, name: &Name, target: &FunctionRef) -> Result<NameEntry, StoreError> {
        self.append_name_event(name, NameEvent::Set(target.clone()))
    }

    /// Removes `name`; its history stays.
    pub fn remove_name(&self, name: &Name) -> Result<NameEntry, StoreError> {
        if self.name(name)?.is_none() {
            return Err(StoreError::name_not_found(name));
        }
        self.append_name_event(name, NameEvent::Removed)
    }

    /// Where `name` points now, if anywhere.
    pub fn name(&self, name: &Name) -> Result<Option<NameEntry>, StoreError> {
        let index = self.index();
        let entry = index.read(|txn| self.current(txn, name))?;
        Ok(entry.filter(|entry| entry.target().is_some()))
    }

    /// The latest event of `name`, from the `names` table or, when that record is
    /// damaged, from the history.
    fn current(&self, txn: &ReadTransaction, name: &Name) -> Result<Option<NameEntry>, StoreError> {
        let key = name.as_str().as_bytes();
        let why = match self.index().get(txn, NAMES, key)? {
            None => None,
            Some(Ok(bytes)) => match decode_entry(&bytes) {
                Ok(entry) => return Ok(Some(entry)),
                Err(why) => Some(why),
            },
            Some(Err(why)) => Some(why.to_owned()),
        };
        // Both tables are written in one transaction: a name with a history has a record,
        // unless the record was lost.
        match (self.history_in(txn, name)?.pop(), why) {
            (None, None) => Ok(None),
            (Some(Ok(entry)), why) => {
                let why = why.as_deref().unwrap_or("its record is missing");
                tracing::warn!(%name, why, "taking a name's latest event from its history");
                Ok(Some(entry))
            }
            (_, why) => Err(StoreError::corrupt(
                Damaged::Name(name.clone()),
                why.unwrap_or_else(|| "its record is missing and its history is damaged".into()),
            )),
        }
    }

    /// Every name that points somewhere, sorted.
    pub fn names(&self) -> Result<Vec<(Name, NameEntry)>, StoreError> {
        let index = self.index();
        index.read(|txn| {
            let Some(table) = index.read_table(txn, NAMES)? else {
                return Ok(Vec::new());
            };
            let mut keys = Vec::new();
            for item in table.iter().map_err(|e| index.err(e))? {
                let (key, _) = item.map_err(|e| index.err(e))?;
                keys.push(key.value().to_vec());
            }
            let mut out = Vec::new();
            for key in keys {
                let name = parse_name(NAMES, &key)?;
                if let Some(entry) = self.current(txn, &name)?
                    && entry.target().is_some()
                {
                    out.push((name, entry));
                }
            }
            Ok(out)
        })
    }

    /// The names that point into module `hash` now.
    pub fn names_for_module(&self, hash: &Hash) -> Result<Vec<(Name, FunctionRef)>, StoreError> {
        Ok(self
            .names()?
            .into_iter()
            .filter_map(|(name, entry)| {
                let target = entry.target()?.clone();
                (target.module == *hash).then_some((name, target))
            })
            .collect())
    }

    /// The whole history of `name`, oldest first.
    pub fn name_history(&self, name: &Name) -> Result<Vec<NameEntry>, StoreError> {
        let index = self.index();
        let (history, current) =
            index.read(|txn| Ok((self.history_in(txn, name)?, self.current(txn, name)?)))?;
        if history.is_empty() {
            return Err(StoreError::name_not_found(name));
        }
        let history: Vec<NameEntry> = history.into_iter().collect::<Result<_, _>>()?;
        // Events are numbered 1, 2, ... and the name's record is the last: a history that
        // is not whole (a page of it unreadable) is damage, not a shorter history.
        let expected = current.map_or(0, |entry| entry.seq);
        let numbered = history.iter().zip(1..).all(|(entry, n)| entry.seq == n);
        if !numbered || history.len() as u64 != expected {
            let missing = (1..=expected.max(history.len() as u64))
                .find(|n| history.get(*n as usize - 1).is_none_or(|e| e.seq != *n))
                .unwrap_or(1);
            return Err(StoreError::corrupt(
                Damaged::NameHistory {
                    name: name.clone(),
                    seq: missing,
                },
                format!(
                    "the history holds {} events where the name's record counts {expected}",
                    history.len()
                ),
            ));
        }
        Ok(history)
    }

    /// `name`'s history in order, each event decoded or the damage that stops it.
    pub(crate) fn history_in(
        &self,
        txn: &ReadTransaction,
        name: &Name,
    ) -> Result<Vec<Result<NameEntry, StoreError>>, StoreError> {
        let index = self.index();
        let Some(table) = index.read_table(txn, NAME_HISTORY)? else {
            return Ok(Vec::new());
        };
        let prefix = history_prefix(name);
        let mut out = Vec::new();
        for item in table
            .range::<&[u8]>(prefix.as_slice()..)
            .map_err(|e| index.err(e))?
        {
            let (key, record) = item.map_err(|e| index.err(e))?;
            let key = key.value();
            if !key.starts_with(&prefix) {
                break;
            }
            let seq = history_seq(&prefix, key);
            let damaged = |why: String| {
                StoreError::corrupt(
                    Damaged::NameHistory {
                        name: name.clone(),
                        seq,
                    },
                    why,
                )
            };
            out.push(
                envelope::open(NAME_HISTORY, key, record.value())
                    .map_err(|why| damaged(why.into()))
                    .and_then(|bytes| decode_entry(bytes).map_err(damaged)),
            );
        }
        Ok(out)
    }

    fn append_name_event(&self, name: &Name, event: NameEvent) -> Result<NameEntry, StoreError> {
        let index = self.index();
        let entry = index.write(Durability::Immediate, |txn| {
            self.append_name_event_in(txn, name, event)
        })?;
        self.names_changed();
        Ok(entry)
    }

    /// Appends `event` to `name`'s history and makes it the name's current event, in `txn`.
    pub(crate) fn append_name_event_in(
        &self,
        txn: &WriteTransaction,
        name: &Name,
        event: NameEvent,
    ) -> Result<NameEntry, StoreError> {
        let index = self.index();
        let prefix = history_prefix(name);
        let mut history = index.open_table(txn, NAME_HISTORY)?;
        // The history's keys number its events; the last one says where this one goes.
        let last = history
            .range::<&[u8]>(prefix.as_slice()..)
            .map_err(|e| index.err(e))?
            .map_while(|item| {
                item.ok()
                    .map(|(key, _)| key.value().to_vec())
                    .filter(|key| key.starts_with(&prefix))
            })
            .last();
        let seq = last.map_or(0, |key| history_seq(&prefix, &key)) + 1;
        let entry = NameEntry {
            seq,
            event,
            at_ms: now_ms(),
        };
        let bytes = value::to_canonical(&entry).map_err(|e| {
            StoreError::corrupt(
                Damaged::Name(name.clone()),
                format!("its new event does not encode: {e}"),
            )
        })?;
        let mut key = prefix;
        key.extend_from_slice(&seq.to_be_bytes());
        history
            .insert(
                key.as_slice(),
                envelope::seal(NAME_HISTORY, &key, &bytes).as_slice(),
            )
            .map_err(|e| index.err(e))?;
        let name_key = name.as_str().as_bytes();
        index
            .open_table(txn, NAMES)?
            .insert(name_key, envelope::seal(NAMES, name_key, &bytes).as_slice())
            .map_err(|e| index.err(e))?;
        Ok(entry)
    }
}

/// History keys are the name, a zero byte (which no name contains), then the sequence
/// number big-endian, so a prefix scan yields one name's history in order.
pub(crate) fn history_prefix(name: &Name) -> Vec<u8> {
    let mut key = name.as_str().as_bytes().to_vec();
    key.push(0);
    key
}

/// The sequence number at the end of a history key (0 when the key is malformed).
pub(crate) fn history_seq(prefix: &[u8], key: &[u8]) -> u64 {
    key.get(prefix.len()..)
        .and_then(|tail| <[u8; 8]>::try_from(tail).ok())
        .map_or(0, u64::from_be_bytes)
}

pub(crate) fn decode_entry(bytes: &[u8]) -> Result<NameEntry, String> {
    value::decode_as(bytes).map_err(|e| format!("a name entry does not decode: {e}"))
}

pub(crate) fn parse_name(table: &str, key: &[u8]) -> Result<Name, StoreError> {
    std::str::from_utf8(key)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| {
            StoreError::corrupt(
                Damaged::Record {
                    table: table.into(),
                    key: String::from_utf8_lossy(key).escape_debug().to_string(),
                },
                "its key is not a valid name",
            )
        })
}
