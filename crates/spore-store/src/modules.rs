//! Modules (files named by their hash) and their manifests (index records), published
//! together with names in one step.

use std::sync::Arc;

use redb::{Durability, ReadableTable};
use spore_core::{FunctionRef, Hash, HashPrefix, Manifest, Name};

use crate::error::Damaged;
use crate::index::MANIFESTS;
use crate::names::NameEvent;
use crate::{Codebase, StoreError, envelope};

/// The most candidates an ambiguous prefix lists.
const MAX_CANDIDATES: usize = 16;

/// A module being published: the compiler can read it through the codebase (its bytes
/// and manifest), but it is listed nowhere and stored nowhere until
/// [`Codebase::publish`]. Dropping it forgets it.
pub struct Staged {
    codebase: Codebase,
    hash: Hash,
}

impl Drop for Staged {
    fn drop(&mut self) {
        self.codebase
            .inner
            .staged
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.hash);
    }
}

/// What removing a module did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub hash: Hash,
    /// Names that pointed into it and were removed with it (only with `force`).
    pub names: Vec<Name>,
}

impl Codebase {
    /// Makes `bytes` readable as module `manifest.module` by this process (for compiling
    /// it before it is published) without storing anything.
    pub fn stage(&self, bytes: &[u8], manifest: &Manifest) -> Staged {
        self.inner
            .staged
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                manifest.module,
                Arc::new((bytes.to_vec(), manifest.clone())),
            );
        Staged {
            codebase: self.clone(),
            hash: manifest.module,
        }
    }

    fn staged(&self, hash: &Hash) -> Option<Arc<crate::StagedModule>> {
        self.inner
            .staged
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .cloned()
    }

    /// Stores a module with its manifest and points `names` at it, all or nothing: the
    /// module file is written first (unless an intact copy is there), then one
    /// transaction writes the manifest, every name and their history. A module file
    /// without a manifest (the process died in between) is listed nowhere and collected
    /// by [`Codebase::gc`]. Returns whether the module is new to the codebase.
    #[tracing::instrument(skip_all, fields(module = %manifest.module.short(12), names = names.len()))]
    pub fn publish(
        &self,
        bytes: &[u8],
        manifest: &Manifest,
        names: &[(Name, FunctionRef)],
    ) -> Result<bool, StoreError> {
        let hash = Hash::of(bytes);
        if hash != manifest.module {
            return Err(StoreError::corrupt(
                Damaged::Module(manifest.module),
                format!("the manifest describes other bytes (these hash to {hash})"),
            ));
        }
        let file_written = self.write_module_file(&hash, bytes)?;
        let index = self.index();
        let record = envelope::seal(MANIFESTS, hash.as_bytes(), &manifest.to_bytes());
        let had_manifest = index.write(Durability::Immediate, |txn| {
            let mut manifests = index.open_table(txn, MANIFESTS)?;
            let had = manifests
                .insert(hash.as_bytes().as_slice(), record.as_slice())
                .map_err(|e| index.err(e))?
                .is_some();
            drop(manifests);
            for (name, target) in names {
                self.append_name_event_in(txn, name, NameEvent::Set(target.clone()))?;
            }
            Ok(had)
        })?;
        if !names.is_empty() {
            self.names_changed();
        }
        Ok(file_written || !had_manifest)
    }

    /// Stores a module and its manifest, naming nothing: [`Codebase::publish`] without
    /// names.
    pub fn put_module(&self, bytes: &[u8], manifest: &Manifest) -> Result<bool, StoreError> {
        self.publish(bytes, manifest, &[])
    }

    /// Writes the module file unless an intact one is there; returns whether it wrote.
    fn write_module_file(&self, hash: &Hash, bytes: &[u8]) -> Result<bool, StoreError> {
        let path = self.layout().module(hash);
        if let Ok(stored) = std::fs::read(&path)
            && Hash::of(&stored) == *hash
        {
            return Ok(false);
        }
        self.layout().write_atomically(&path, bytes)?;
        Ok(true)
    }

    /// The module's bytes, re-hashed on the way out.
    pub fn module_bytes(&self, hash: &Hash) -> Result<Vec<u8>, StoreError> {
        if let Some(staged) = self.staged(hash) {
            return Ok(staged.0.clone());
        }
        let path = self.layout().module(hash);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return if self.has_manifest(hash)? {
                    Err(StoreError::corrupt(
                        Damaged::Module(*hash),
                        "its file is missing",
                    ))
                } else {
                    Err(StoreError::ModuleNotFound(*hash))
                };
            }
            Err(error) => return Err(StoreError::io(path)(error)),
        };
        if Hash::of(&bytes) != *hash {
            tracing::error!(%hash, "stored module bytes do not match their hash");
            return Err(StoreError::corrupt(
                Damaged::Module(*hash),
                "its bytes do not match their hash",
            ));
        }
        Ok(bytes)
    }

    /// Whether the module is published here (staged modules are not).
    pub fn has_module(&self, hash: &Hash) -> Result<bool, StoreError> {
        self.has_manifest(hash)
    }

    fn has_manifest(&self, hash: &Hash) -> Result<bool, StoreError> {
        let index = self.index();
        index.read(|txn| {
            let Some(table) = index.read_table(txn, MANIFESTS)? else {
                return Ok(false);
            };
            Ok(table
                .get(hash.as_bytes().as_slice())
                .map_err(|e| index.err(e))?
                .is_some())
        })
    }

    pub fn manifest(&self, hash: &Hash) -> Result<Manifest, StoreError> {
        if let Some(staged) = self.staged(hash) {
            return Ok(staged.1.clone());
        }
        let index = self.index();
        let stored = index.read(|txn| index.get(txn, MANIFESTS, hash.as_bytes()))?;
        match stored {
            None => Err(StoreError::ModuleNotFound(*hash)),
            Some(record) => self.decode_manifest(hash, record),
        }
    }

    /// Every module's manifest, in hash order.
    pub fn manifests(&self) -> Result<Vec<Manifest>, StoreError> {
        let index = self.index();
        let records = index.read(|txn| {
            let Some(table) = index.read_table(txn, MANIFESTS)? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for item in table.iter().map_err(|e| index.err(e))? {
                let (key, record) = item.map_err(|e| index.err(e))?;
                let key = key.value();
                out.push((
                    key.to_vec(),
                    envelope::open(MANIFESTS, key, record.value()).map(<[u8]>::to_vec),
                ));
            }
            Ok(out)
        })?;
        records
            .into_iter()
            .map(|(key, record)| {
                let hash = Hash::from_slice(&key).ok_or_else(|| {
                    StoreError::corrupt(
                        Damaged::Record {
                            table: MANIFESTS.into(),
                            key: hex(&key),
                        },
                        format!("a manifest is stored under a {}-byte key", key.len()),
                    )
                })?;
                self.decode_manifest(&hash, record)
            })
            .collect()
    }

    /// A stored manifest. One that does not verify or decode (damaged, or written in an
    /// older format) is derived again from the module, which is the source of truth,
    /// and stored in its place.
    fn decode_manifest(
        &self,
        hash: &Hash,
        record: Result<Vec<u8>, &'static str>,
    ) -> Result<Manifest, StoreError> {
        match record.map(|bytes| Manifest::from_bytes(&bytes)) {
            Ok(Ok(manifest)) if manifest.module == *hash => return Ok(manifest),
            Ok(Ok(manifest)) => tracing::warn!(
                %hash,
                describes = %manifest.module,
                "a stored manifest describes another module; deriving it again"
            ),
            Ok(Err(error)) => tracing::info!(%hash, %error, "deriving a stored manifest again"),
            Err(why) => {
                tracing::warn!(%hash, why, "a stored manifest is damaged; deriving it again")
            }
        }
        let manifest = self.derive_manifest(hash)?;
        let index = self.index();
        let record = envelope::seal(MANIFESTS, hash.as_bytes(), &manifest.to_bytes());
        index.write(Durability::Immediate, |txn| {
            index
                .open_table(txn, MANIFESTS)?
                .insert(hash.as_bytes().as_slice(), record.as_slice())
                .map_err(|e| index.err(e))?;
            Ok(())
        })?;
        Ok(manifest)
    }

    pub(crate) fn derive_manifest(&self, hash: &Hash) -> Result<Manifest, StoreError> {
        let module = self.module_bytes(hash)?;
        Manifest::derive(&module).map_err(|e| {
            StoreError::corrupt(
                Damaged::Module(*hash),
                format!("the stored module is no longer a valid spore module: {e}"),
            )
        })
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
        let index = self.index();
        let start = prefix.leading_bytes();
        let candidates = index.read(|txn| {
            let mut candidates = Vec::new();
            let Some(table) = index.read_table(txn, MANIFESTS)? else {
                return Ok(candidates);
            };
            for item in table
                .range::<&[u8]>(start.as_slice()..)
                .map_err(|e| index.err(e))?
            {
                let (key, _) = item.map_err(|e| index.err(e))?;
                let key = key.value();
                if !key.starts_with(&start) {
                    break;
                }
                let Some(hash) = Hash::from_slice(key) else {
                    continue;
                };
                if prefix.matches(&hash) {
                    candidates.push(hash);
                    if candidates.len() > MAX_CANDIDATES {
                        break;
                    }
                }
            }
            Ok(candidates)
        })?;
        match candidates.as_slice() {
            [] => Err(StoreError::PrefixNotFound(prefix.clone())),
            [one] => Ok(*one),
            _ => Err(StoreError::AmbiguousPrefix {
                prefix: prefix.clone(),
                candidates,
            }),
        }
    }

    /// Removes module `hash`: its manifest, its file and its artifacts. Refused while
    /// names point into it, unless `force`, which removes those names too (their history
    /// keeps where they pointed).
    #[tracing::instrument(skip(self), fields(module = %hash.short(12)))]
    pub fn remove_module(&self, hash: &Hash, force: bool) -> Result<Removed, StoreError> {
        if !self.has_module(hash)? {
            return Err(StoreError::ModuleNotFound(*hash));
        }
        let named: Vec<Name> = self
            .names_for_module(hash)?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        if !named.is_empty() && !force {
            return Err(StoreError::ModuleInUse {
                hash: *hash,
                names: named.iter().map(|n| n.to_string()).collect(),
            });
        }
        let index = self.index();
        index.write(Durability::Immediate, |txn| {
            index
                .open_table(txn, MANIFESTS)?
                .remove(hash.as_bytes().as_slice())
                .map_err(|e| index.err(e))?;
            for name in &named {
                self.append_name_event_in(txn, name, NameEvent::Removed)?;
            }
            Ok(())
        })?;
        self.names_changed();
        // Once the manifest is gone the file is invisible; removing it (and the artifacts)
        // after the commit means a crash in between leaves only what gc collects.
        self.remove_module_file(hash)?;
        self.remove_artifacts_of(hash)?;
        tracing::info!(names = named.len(), "module removed");
        Ok(Removed {
            hash: *hash,
            names: named,
        })
    }

    pub(crate) fn remove_module_file(&self, hash: &Hash) -> Result<(), StoreError> {
        let path = self.layout().module(hash);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(StoreError::io(path)(error)),
        }
        let dir = self.layout().dir(crate::layout::MODULES);
        crate::layout::sync_dir(&dir).map_err(StoreError::io(dir))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
