//! Memoized results of pure functions, keyed by a hash of the function reference and
//! the canonical arguments. A cache: losing it costs only recomputation.

use spore_core::Hash;

use crate::{Codebase, StoreError};

impl Codebase {
    pub fn memo_get(&self, key: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.memo.get(key.as_bytes())?.map(|v| v.to_vec()))
    }

    pub fn memo_put(&self, key: &Hash, entry: &[u8]) -> Result<(), StoreError> {
        self.memo.insert(key.as_bytes(), entry)?;
        Ok(())
    }

    /// Forgets every memoized result; returns how many there were.
    pub fn memo_clear(&self) -> Result<usize, StoreError> {
        let count = self.memo.len();
        self.memo.clear()?;
        Ok(count)
    }
}
