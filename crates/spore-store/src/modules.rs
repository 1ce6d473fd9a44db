//! Modules and their manifests, addressed by hash.

use spore_core::{Hash, HashPrefix, Manifest};

use crate::{Codebase, StoreError};

/// The most candidates an ambiguous prefix lists.
const MAX_CANDIDATES: usize = 16;

impl Codebase {
    /// Stores a module and its manifest together. Storing bytes that are already
    /// present is a no-op; a present but corrupt copy is replaced. Returns whether
    /// anything was written.
    pub fn put_module(&self, bytes: &[u8], manifest: &Manifest) -> Result<bool, StoreError> {
        let hash = Hash::of(bytes);
        assert_eq!(hash, manifest.module, "manifest belongs to other bytes");
        if self.blob_is_intact(&hash)? && self.manifests.contains_key(hash.as_bytes())? {
            return Ok(false);
        }
        // The manifest is written last: a module counts as present once it has one.
        self.blobs.insert(hash.as_bytes(), bytes)?;
        self.manifests
            .insert(hash.as_bytes(), manifest.to_bytes())?;
        self.flush()?;
        Ok(true)
    }

    /// The module's bytes, re-hashed on the way out.
    pub fn module_bytes(&self, hash: &Hash) -> Result<Vec<u8>, StoreError> {
        let bytes = self
            .blobs
            .get(hash.as_bytes())?
            .ok_or(StoreError::ModuleNotFound(*hash))?;
        if Hash::of(&bytes) != *hash {
            tracing::error!(%hash, "stored module bytes do not match their hash");
            return Err(StoreError::Corrupt {
                hash: *hash,
                what: "module bytes do not match their hash".into(),
            });
        }
        Ok(bytes.to_vec())
    }

    pub fn has_module(&self, hash: &Hash) -> Result<bool, StoreError> {
        Ok(self.manifests.contains_key(hash.as_bytes())?)
    }

    pub fn manifest(&self, hash: &Hash) -> Result<Manifest, StoreError> {
        let bytes = self
            .manifests
            .get(hash.as_bytes())?
            .ok_or(StoreError::ModuleNotFound(*hash))?;
        self.decode_manifest(hash, &bytes)
    }

    /// Every module's manifest, in hash order.
    pub fn manifests(&self) -> Result<Vec<Manifest>, StoreError> {
        self.manifests
            .iter()
            .map(|entry| {
                let (key, bytes) = entry?;
                let hash = Hash::from_slice(&key).ok_or_else(|| StoreError::Corrupt {
                    hash: Hash::of(&key),
                    what: format!("a manifest is stored under a {}-byte key", key.len()),
                })?;
                self.decode_manifest(&hash, &bytes)
            })
            .collect()
    }

    /// A stored manifest. One that does not decode (written in an older format, or
    /// damaged) is derived again from the module, which is the source of truth, and
    /// stored in its place.
    fn decode_manifest(&self, hash: &Hash, bytes: &[u8]) -> Result<Manifest, StoreError> {
        match Manifest::from_bytes(bytes) {
            Ok(manifest) if manifest.module == *hash => return Ok(manifest),
            Ok(manifest) => tracing::warn!(
                %hash,
                describes = %manifest.module,
                "a stored manifest describes another module; deriving it again"
            ),
            Err(error) => tracing::info!(%hash, %error, "deriving a stored manifest again"),
        }
        let module = self.module_bytes(hash)?;
        let manifest = Manifest::derive(&module).map_err(|e| StoreError::Corrupt {
            hash: *hash,
            what: format!("the stored module is no longer a valid spore module: {e}"),
        })?;
        self.manifests
            .insert(hash.as_bytes(), manifest.to_bytes())?;
        Ok(manifest)
    }

    /// The one module whose hash starts with `prefix`.
    pub fn resolve_prefix(&self, prefix: &HashPrefix) -> Result<Hash, StoreError> {
        if let Some(full) = prefix.as_full() {
            return if self.has_module(&full)? {
                Ok(full)
            } else {
                Err(StoreError::ModuleNotFound(full))
            };
        }
        let mut candidates = Vec::new();
        for entry in self.manifests.scan_prefix(prefix.leading_bytes()) {
            let (key, _) = entry?;
            let Some(hash) = Hash::from_slice(&key) else {
                continue;
            };
            if prefix.matches(&hash) {
                candidates.push(hash);
                if candidates.len() > MAX_CANDIDATES {
                    break;
                }
            }
        }
        match candidates.as_slice() {
            [] => Err(StoreError::PrefixNotFound(prefix.clone())),
            [one] => Ok(*one),
            _ => Err(StoreError::AmbiguousPrefix {
                prefix: prefix.clone(),
                candidates,
            }),
        }
    }

    fn blob_is_intact(&self, hash: &Hash) -> Result<bool, StoreError> {
        Ok(self
            .blobs
            .get(hash.as_bytes())?
            .is_some_and(|bytes| Hash::of(&bytes) == *hash))
    }
}
