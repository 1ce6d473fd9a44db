//! Turning a module hash into something ready to instantiate, as cheaply as the caches
//! allow: in memory, then the codebase's compiled artifact, then Cranelift.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spore_core::{ExportName, Hash, LoadSource, Manifest, abi};
use wasmtime::{InstancePre, Linker, Module, ModuleExport};

use crate::invoke::CallState;
use crate::{LoadError, Runtime};

/// A module ready to run: its manifest, its code, and pre-resolved exports.
pub struct LoadedModule {
    pub manifest: Arc<Manifest>,
    pub(crate) pre: InstancePre<CallState>,
    pub(crate) memory: ModuleExport,
    pub(crate) alloc: ModuleExport,
    pub(crate) panic_message: Option<ModuleExport>,
    pub(crate) functions: HashMap<ExportName, ModuleExport>,
}

impl Runtime {
    /// Makes module `hash` ready to run, compiling it only when no cache has it.
    #[tracing::instrument(skip(self), fields(module = %hash.short(12)))]
    pub fn load(
        &self,
        hash: &Hash,
    ) -> Result<(Arc<LoadedModule>, LoadSource, Duration), LoadError> {
        let started = Instant::now();
        if let Some(loaded) = self.cached(hash) {
            return Ok((loaded, LoadSource::Memory, started.elapsed()));
        }
        let _one_at_a_time = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(loaded) = self.cached(hash) {
            return Ok((loaded, LoadSource::Memory, started.elapsed()));
        }
        let manifest = self.codebase.manifest(hash)?;
        // Re-hashing costs far less than loading even a cached artifact, and it keeps
        // the promise that a module whose stored bytes are damaged never runs.
        let bytes = self.codebase.module_bytes(hash)?;
        let (module, source) = match self.cached_artifact(hash)? {
            Some(module) => (module, LoadSource::Artifact),
            None => (self.compile(hash, &bytes)?, LoadSource::Compiled),
        };
        let loaded = Arc::new(self.prepare(manifest, module)?);
        self.modules
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(*hash, loaded.clone());
        let elapsed = started.elapsed();
        tracing::debug!(?source, ?elapsed, "module loaded");
        Ok((loaded, source, elapsed))
    }

    /// Compiles module `hash` now and caches the artifact, unless one is cached already.
    /// Publishing calls this so that the first invoke does not pay for Cranelift.
    pub fn precompile(&self, hash: &Hash) -> Result<LoadSource, LoadError> {
        self.load(hash).map(|(_, source, _)| source)
    }

    /// The manifest of module `hash`, without loading the module: from memory when it is
    /// loaded, else from the codebase.
    pub fn manifest(&self, hash: &Hash) -> Result<Arc<Manifest>, LoadError> {
        match self.cached(hash) {
            Some(loaded) => Ok(loaded.manifest.clone()),
            None => Ok(Arc::new(self.codebase.manifest(hash)?)),
        }
    }

    /// The manifest of module `hash` if it is loaded in memory, so that calling it needs
    /// neither the codebase nor the compiler.
    pub fn loaded_manifest(&self, hash: &Hash) -> Option<Arc<Manifest>> {
        self.cached(hash).map(|loaded| loaded.manifest.clone())
    }

    /// Forgets modules loaded in memory (the codebase's artifacts stay).
    pub fn evict_all(&self) {
        self.modules
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn cached(&self, hash: &Hash) -> Option<Arc<LoadedModule>> {
        self.modules
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .cloned()
    }

    fn cached_artifact(&self, hash: &Hash) -> Result<Option<Module>, LoadError> {
        let Some(artifact) = self.codebase.artifact(hash, &self.compiler_fingerprint)? else {
            return Ok(None);
        };
        // SAFETY: artifacts are only ever written by `compile` below, in this node's own
        // codebase, under this compiler's fingerprint, and are checksummed by the store;
        // none is ever accepted from a peer.
        match unsafe { Module::deserialize(&self.engine, &artifact) } {
            Ok(module) => Ok(Some(module)),
            Err(error) => {
                tracing::warn!(%hash, %error, "cached artifact unusable; recompiling");
                Ok(None)
            }
        }
    }

    #[tracing::instrument(skip(self, bytes), fields(module = %hash.short(12)))]
    fn compile(&self, hash: &Hash, bytes: &[u8]) -> Result<Module, LoadError> {
        let started = Instant::now();
        let module = Module::new(&self.engine, bytes).map_err(|e| LoadError::Compile {
            module: *hash,
            message: format!("{e:#}"),
        })?;
        tracing::info!(elapsed = ?started.elapsed(), bytes = bytes.len(), "compiled");
        match module.serialize() {
            Ok(artifact) => {
                self.codebase
                    .put_artifact(hash, &self.compiler_fingerprint, &artifact)?
            }
            // The module still runs; only the next process pays for compiling again.
            Err(error) => tracing::warn!(%error, "could not serialize the compiled module"),
        }
        Ok(module)
    }

    fn prepare(&self, manifest: Manifest, module: Module) -> Result<LoadedModule, LoadError> {
        let export = |name: &str| {
            module
                .get_export_index(name)
                .ok_or_else(|| LoadError::Compile {
                    module: manifest.module,
                    message: format!("export `{name}` listed in the manifest is missing"),
                })
        };
        let functions = manifest
            .function_names()
            .map(|name| Ok((name.clone(), export(name.as_str())?)))
            .collect::<Result<_, LoadError>>()?;
        let memory = export(abi::MEMORY)?;
        let alloc = export(abi::ALLOC)?;
        let panic_message = module.get_export_index(abi::PANIC_MESSAGE);
        let link_error = |e: wasmtime::Error| LoadError::Compile {
            module: manifest.module,
            message: format!("{e:#}"),
        };
        let mut linker = Linker::new(&self.engine);
        crate::dispatch::define_imports(&mut linker, &manifest).map_err(link_error)?;
        let pre = linker.instantiate_pre(&module).map_err(link_error)?;
        Ok(LoadedModule {
            manifest: Arc::new(manifest),
            pre,
            memory,
            alloc,
            panic_message,
            functions,
        })
    }
}
