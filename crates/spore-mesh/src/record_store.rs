//! Kademlia's record store for spore: libp2p's memory store, with the value records it
//! keeps for others (chains of mesh names, `crate::names`) bounded in total bytes as
//! well as in number, so that members cannot make a node hold more memory than
//! [`MAX_NAME_BYTES`], however many chains they sign.

use std::borrow::Cow;

use libp2p::PeerId;
use libp2p::kad::store::{Error, MemoryStore, RecordStore, Result};
use libp2p::kad::{ProviderRecord, Record, RecordKey};

/// The most bytes of chains a node keeps in its share of the DHT. A chain of a few
/// versions is a few KiB: tens of thousands of names fit.
pub(crate) const MAX_NAME_BYTES: usize = 64 << 20;

pub struct SporeStore {
    inner: MemoryStore,
    /// Bytes of the values of the records held.
    value_bytes: usize,
}

impl SporeStore {
    pub fn new(inner: MemoryStore) -> SporeStore {
        SporeStore {
            inner,
            value_bytes: 0,
        }
    }
}

impl RecordStore for SporeStore {
    type RecordsIter<'a> = <MemoryStore as RecordStore>::RecordsIter<'a>;
    type ProvidedIter<'a> = <MemoryStore as RecordStore>::ProvidedIter<'a>;

    fn get(&self, k: &RecordKey) -> Option<Cow<'_, Record>> {
        self.inner.get(k)
    }

    fn put(&mut self, r: Record) -> Result<()> {
        let replaced = self.inner.get(&r.key).map_or(0, |old| old.value.len());
        let after = self.value_bytes - replaced + r.value.len();
        if after > MAX_NAME_BYTES {
            return Err(Error::MaxRecords);
        }
        self.inner.put(r)?;
        self.value_bytes = after;
        Ok(())
    }

    fn remove(&mut self, k: &RecordKey) {
        if let Some(old) = self.inner.get(k) {
            self.value_bytes -= old.value.len();
        }
        self.inner.remove(k);
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        self.inner.records()
    }

    fn add_provider(&mut self, record: ProviderRecord) -> Result<()> {
        self.inner.add_provider(record)
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        self.inner.providers(key)
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.inner.provided()
    }

    fn remove_provider(&mut self, k: &RecordKey, p: &PeerId) {
        self.inner.remove_provider(k, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_refuses_records_past_its_bytes_and_counts_replacements_once() {
        let peer = PeerId::random();
        let mut store = SporeStore::new(MemoryStore::with_config(
            peer,
            libp2p::kad::store::MemoryStoreConfig {
                max_records: 1 << 20,
                max_value_bytes: MAX_NAME_BYTES,
                ..Default::default()
            },
        ));
        let record =
            |n: u32, len: usize| Record::new(RecordKey::new(&n.to_be_bytes()), vec![0; len]);
        let quarter = MAX_NAME_BYTES / 4;
        for n in 0..4 {
            store.put(record(n, quarter)).unwrap();
        }
        assert!(store.put(record(9, 1)).is_err(), "full");
        store.put(record(0, quarter)).unwrap();
        store.put(record(0, quarter - 10)).unwrap();
        store.put(record(9, 10)).unwrap();
        assert!(store.put(record(10, 1)).is_err());
        store.remove(&RecordKey::new(&1u32.to_be_bytes()));
        store.put(record(10, quarter)).unwrap();
    }
}
