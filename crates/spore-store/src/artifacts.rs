//! The compiled-artifact cache: native code this node compiled, keyed by the module
//! hash and the compiler's compatibility fingerprint.
//!
//! Artifacts are machine code, so only this node's own compiler may write them; they
//! are never taken from a peer. Each is stored behind a checksum so that a damaged
//! entry is dropped and recompiled instead of being mapped into memory.

use spore_core::Hash;

use crate::{Codebase, StoreError};

impl Codebase {
    /// The artifact compiled from module `hash` by a compiler with fingerprint
    /// `compiler`, if one is cached and intact.
    pub fn artifact(&self, hash: &Hash, compiler: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = artifact_key(hash, compiler);
        let Some(stored) = self.artifacts.get(&key)? else {
            return Ok(None);
        };
        match stored.split_at_checked(32) {
            Some((sum, artifact)) if blake3::hash(artifact).as_bytes() == sum => {
                Ok(Some(artifact.to_vec()))
            }
            _ => {
                tracing::warn!(%hash, "dropping a damaged compiled artifact; it will be recompiled");
                self.artifacts.remove(&key)?;
                Ok(None)
            }
        }
    }

    pub fn put_artifact(
        &self,
        hash: &Hash,
        compiler: &[u8],
        artifact: &[u8],
    ) -> Result<(), StoreError> {
        let mut stored = Vec::with_capacity(32 + artifact.len());
        stored.extend_from_slice(blake3::hash(artifact).as_bytes());
        stored.extend_from_slice(artifact);
        self.artifacts
            .insert(artifact_key(hash, compiler), stored)?;
        Ok(())
    }

    /// Drops every cached artifact (they are all derivable from the modules).
    pub fn clear_artifacts(&self) -> Result<(), StoreError> {
        self.artifacts.clear()?;
        Ok(())
    }
}

fn artifact_key(hash: &Hash, compiler: &[u8]) -> Vec<u8> {
    let mut key = hash.as_bytes().to_vec();
    key.extend_from_slice(compiler);
    key
}
