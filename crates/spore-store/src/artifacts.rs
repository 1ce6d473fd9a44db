//! The compiled-artifact cache: native code this node compiled, one file per module and
//! compiler (`codebase/artifacts/MODULE.COMPILER`, `spec/home.md`).
//!
//! Artifacts are machine code, so only this node's own compiler may write them; they
//! are never taken from a peer. Each file starts with a checksum over the module hash,
//! the compiler's fingerprint and the code, so that a damaged file, or one under another
//! module's name, is dropped and recompiled instead of being mapped into memory.

use redb::Durability;
use spore_core::Hash;

use crate::index::META;
use crate::layout::{self, ARTIFACTS};
use crate::{Codebase, StoreError, envelope};

/// The BLAKE3 key-derivation context of an artifact's checksum.
pub const CONTEXT: &str = "spore home artifact v1";
/// `meta` key of the fingerprint of the compiler that wrote the latest artifact: `gc`
/// keeps only that compiler's artifacts.
const COMPILER_KEY: &[u8] = b"compiler";

impl Codebase {
    /// The artifact compiled from module `hash` by a compiler with fingerprint
    /// `compiler`, if one is cached and intact.
    pub fn artifact(&self, hash: &Hash, compiler: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.artifact_path(hash, compiler);
        let stored = match std::fs::read(&path) {
            Ok(stored) => stored,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(StoreError::io(path)(error)),
        };
        match stored.split_at_checked(32) {
            Some((sum, artifact)) if checksum(hash, &compiler_id(compiler), artifact) == sum => {
                Ok(Some(artifact.to_vec()))
            }
            _ => {
                tracing::warn!(%hash, "dropping a damaged compiled artifact; it will be recompiled");
                let _ = std::fs::remove_file(&path);
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
        self.put_interim_artifact(hash, compiler, artifact)?;
        self.remember_compiler(compiler)
    }

    /// Stores an artifact of a compiler whose code is replaced later by another's (a
    /// quick baseline compiler's), checked like any other, without making its compiler
    /// the current one: `gc` keeps only the current compiler's artifacts, so it drops
    /// this one.
    pub fn put_interim_artifact(
        &self,
        hash: &Hash,
        compiler: &[u8],
        artifact: &[u8],
    ) -> Result<(), StoreError> {
        let mut stored = Vec::with_capacity(32 + artifact.len());
        stored.extend_from_slice(&checksum(hash, &compiler_id(compiler), artifact));
        stored.extend_from_slice(artifact);
        self.layout()
            .write_atomically(&self.artifact_path(hash, compiler), &stored)
    }

    /// Drops every cached artifact (they are all derivable from the modules).
    pub fn clear_artifacts(&self) -> Result<(), StoreError> {
        for (_, path) in layout::files(&self.layout().dir(ARTIFACTS))? {
            std::fs::remove_file(&path).map_err(StoreError::io(path))?;
        }
        Ok(())
    }

    fn artifact_path(&self, hash: &Hash, compiler: &[u8]) -> std::path::PathBuf {
        self.layout()
            .dir(ARTIFACTS)
            .join(format!("{}.{}", hash.to_hex(), compiler_id(compiler)))
    }

    /// Checks every artifact file, dropping those that are damaged and (with `modules`)
    /// those of no module in it, or (with `compiler`) written by another compiler. Returns
    /// how many were dropped for damage and for the rest.
    pub(crate) fn sweep_artifacts(
        &self,
        modules: Option<&std::collections::BTreeSet<Hash>>,
        compiler: Option<&str>,
    ) -> Result<(usize, usize), StoreError> {
        let (mut damaged, mut unused) = (0, 0);
        for (name, path) in layout::files(&self.layout().dir(ARTIFACTS))? {
            let parsed = name
                .split_once('.')
                .and_then(|(module, id)| Some((module.parse::<Hash>().ok()?, id)));
            let Some((module, id)) = parsed else {
                continue;
            };
            if modules.is_some_and(|m| !m.contains(&module)) || compiler.is_some_and(|c| c != id) {
                std::fs::remove_file(&path).map_err(StoreError::io(&path))?;
                unused += 1;
                continue;
            }
            let stored = std::fs::read(&path).map_err(StoreError::io(&path))?;
            let intact = stored
                .split_at_checked(32)
                .is_some_and(|(sum, code)| checksum(&module, id, code) == sum);
            if !intact {
                tracing::warn!(%module, "dropping a damaged compiled artifact; it will be recompiled");
                std::fs::remove_file(&path).map_err(StoreError::io(&path))?;
                damaged += 1;
            }
        }
        Ok((damaged, unused))
    }

    pub(crate) fn remove_artifacts_of(&self, hash: &Hash) -> Result<usize, StoreError> {
        let prefix = format!("{}.", hash.to_hex());
        let mut removed = 0;
        for (name, path) in layout::files(&self.layout().dir(ARTIFACTS))? {
            if name.starts_with(&prefix) {
                std::fs::remove_file(&path).map_err(StoreError::io(path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Records `compiler` as the one whose artifacts are current, unless it already is.
    fn remember_compiler(&self, compiler: &[u8]) -> Result<(), StoreError> {
        if self.current_compiler()?.as_deref() == Some(&compiler_id(compiler)) {
            return Ok(());
        }
        let index = self.index();
        let id = compiler_id(compiler);
        index.write(Durability::Immediate, |txn| {
            index
                .open_table(txn, META)?
                .insert(
                    COMPILER_KEY,
                    envelope::seal(META, COMPILER_KEY, id.as_bytes()).as_slice(),
                )
                .map_err(|e| index.err(e))?;
            Ok(())
        })
    }

    /// The id of the compiler that wrote the latest artifact, if known.
    pub(crate) fn current_compiler(&self) -> Result<Option<String>, StoreError> {
        let index = self.index();
        let stored = index.read(|txn| index.get(txn, META, COMPILER_KEY))?;
        Ok(stored
            .and_then(Result::ok)
            .and_then(|id| String::from_utf8(id).ok()))
    }
}

/// A compiler's fingerprint as it appears in artifact file names: 32 hex digits of its
/// BLAKE3 hash.
pub fn compiler_id(compiler: &[u8]) -> String {
    blake3::hash(compiler).to_hex()[..32].to_owned()
}

/// The checksum an artifact file starts with: BLAKE3 (key derived from [`CONTEXT`]) of
/// the module hash, the compiler id (32 ASCII hex digits) and the code.
pub fn checksum(hash: &Hash, compiler_id: &str, artifact: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(CONTEXT);
    hasher.update(hash.as_bytes());
    hasher.update(compiler_id.as_bytes());
    hasher.update(artifact);
    *hasher.finalize().as_bytes()
}
