//! Names and their append-only history, as in Unison: setting a name never forgets
//! what it pointed at before, and a rollback is just setting it to an older reference.

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use spore_core::{FunctionRef, Hash, Name, value};

use crate::{Codebase, StoreError, now_ms};

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
            return Err(StoreError::NameNotFound(name.clone()));
        }
        self.append_name_event(name, NameEvent::Removed)
    }

    /// Where `name` points now, if anywhere.
    pub fn name(&self, name: &Name) -> Result<Option<NameEntry>, StoreError> {
        Ok(self
            .names
            .get(name.as_str())?
            .map(|bytes| decode_entry(&bytes))
            .transpose()?
            .filter(|entry| entry.target().is_some()))
    }

    /// Every name that points somewhere, sorted.
    pub fn names(&self) -> Result<Vec<(Name, NameEntry)>, StoreError> {
        let mut out = Vec::new();
        for item in self.names.iter() {
            let (key, bytes) = item?;
            let entry = decode_entry(&bytes)?;
            if entry.target().is_some() {
                let name = std::str::from_utf8(&key)
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .ok_or_else(|| corrupt_names("a name key is not a valid name"))?;
                out.push((name, entry));
            }
        }
        Ok(out)
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
        let history: Vec<NameEntry> = self
            .name_history
            .scan_prefix(history_prefix(name))
            .map(|item| decode_entry(&item?.1))
            .collect::<Result<_, _>>()?;
        if history.is_empty() {
            return Err(StoreError::NameNotFound(name.clone()));
        }
        Ok(history)
    }

    fn append_name_event(&self, name: &Name, event: NameEvent) -> Result<NameEntry, StoreError> {
        let entry = (&self.names, &self.name_history)
            .transaction(|(names, history)| {
                let seq = match names.get(name.as_str())? {
                    Some(bytes) => {
                        decode_entry(&bytes)
                            .map_err(ConflictableTransactionError::Abort)?
                            .seq
                            + 1
                    }
                    None => 1,
                };
                let entry = NameEntry {
                    seq,
                    event: event.clone(),
                    at_ms: now_ms(),
                };
                let bytes = value::to_canonical(&entry).expect("a name entry always encodes");
                let mut key = history_prefix(name);
                key.extend_from_slice(&seq.to_be_bytes());
                history.insert(key, bytes.clone())?;
                names.insert(name.as_str(), bytes)?;
                Ok(entry)
            })
            .map_err(|error| match error {
                sled::transaction::TransactionError::Abort(e) => e,
                sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
            })?;
        self.flush()?;
        Ok(entry)
    }
}

/// History keys are the name, a zero byte (which no name contains), then the sequence
/// number big-endian, so a prefix scan yields one name's history in order.
fn history_prefix(name: &Name) -> Vec<u8> {
    let mut key = name.as_str().as_bytes().to_vec();
    key.push(0);
    key
}

fn decode_entry(bytes: &[u8]) -> Result<NameEntry, StoreError> {
    value::decode_as(bytes)
        .map_err(|e| corrupt_names(&format!("a name entry does not decode: {e}")))
}

fn corrupt_names(what: &str) -> StoreError {
    StoreError::CorruptNames(what.to_owned())
}
