//! Key-value spaces for the `kv` ability: one sled tree per namespace, beside the code.
//!
//! Keeping function data in the codebase's database gives one lock and one flush
//! policy per home; the spaces are separate trees, so code and data never mix keys.

use crate::{Codebase, StoreError};

/// One namespace of key-value data. Values are opaque bytes to the store.
#[derive(Clone)]
pub struct KvSpace {
    tree: sled::Tree,
}

impl Codebase {
    /// The key-value space called `namespace`, created on first use.
    pub fn kv_space(&self, namespace: &str) -> Result<KvSpace, StoreError> {
        Ok(KvSpace {
            tree: self.db.open_tree(format!("kv/{namespace}"))?,
        })
    }
}

impl KvSpace {
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(key)?.map(|v| v.to_vec()))
    }

    pub fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.tree.insert(key, value)?;
        Ok(())
    }

    /// Removes `key`; returns whether it existed.
    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.tree.remove(key)?.is_some())
    }

    /// Up to `limit` keys starting with `prefix`, in byte order.
    pub fn list(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        self.tree
            .scan_prefix(prefix)
            .keys()
            .take(limit)
            .map(|key| Ok(String::from_utf8_lossy(&key?).into_owned()))
            .collect()
    }

    /// Sets `key` to `new` (None: delete) if its current value is `expected` (None:
    /// absent). Returns whether the swap happened.
    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        Ok(self.tree.compare_and_swap(key, expected, new)?.is_ok())
    }
}
