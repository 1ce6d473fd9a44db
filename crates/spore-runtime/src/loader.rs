//! Turning a module hash into something ready to instantiate, as cheaply as the caches
//! allow: in memory, then the codebase's compiled artifact, then Cranelift.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spore_core::{ExportName, Hash, LoadSource, Manifest, abi};
use wasmtime::{InstancePre, Linker, Module, ModuleExport};

use crate::child::CodeSettings;
use crate::compile::{self, Wait};
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
    /// Makes module `hash` ready to run, compiling it only when no cache has it. A
    /// compile is waited for no longer than `wait` allows.
    #[tracing::instrument(skip(self, wait), fields(module = %hash.short(12)))]
    pub(crate) fn load(
        &self,
        hash: &Hash,
        wait: Wait<'_>,
    ) -> Result<(Arc<LoadedModule>, LoadSource, Duration), LoadError> {
        let started = Instant::now();
        if let Some(loaded) = self.cached(hash) {
            return Ok((loaded, LoadSource::Memory, started.elapsed()));
        }
        let manifest = self.codebase.manifest(hash)?;
        // Re-hashing costs far less than loading even a cached artifact, and it keeps
        // the promise that a module whose stored bytes are damaged never runs.
        let bytes = self.codebase.module_bytes(hash)?;
        let (loaded, source) = self.make_ready(manifest, &bytes, wait)?;
        let elapsed = started.elapsed();
        tracing::debug!(?source, ?elapsed, "module loaded");
        Ok((loaded, source, elapsed))
    }

    /// Compiles module `hash` now and caches the artifact, unless one is cached already.
    pub fn precompile(&self, hash: &Hash) -> Result<LoadSource, LoadError> {
        self.load(hash, Wait::default())
            .map(|(_, source, _)| source)
    }

    /// Makes a module that need not be stored yet ready to run: compiled within the
    /// compile limits, checked against the engine's instance pool, its artifact stored.
    /// Publishing calls this before it stores the module, so that a module this engine
    /// refuses is never stored.
    pub fn compile_module(
        &self,
        manifest: &Manifest,
        bytes: &[u8],
    ) -> Result<LoadSource, LoadError> {
        if self.cached(&manifest.module).is_some() {
            return Ok(LoadSource::Memory);
        }
        self.make_ready(manifest.clone(), bytes, Wait::default())
            .map(|(_, source)| source)
    }

    fn make_ready(
        &self,
        manifest: Manifest,
        bytes: &[u8],
        wait: Wait<'_>,
    ) -> Result<(Arc<LoadedModule>, LoadSource), LoadError> {
        let hash = manifest.module;
        let (module, source) = match self.cached_artifact(&hash)? {
            Some(module) => (module, LoadSource::Artifact),
            None => {
                let request = || self.compile_request();
                let module = self.compiles.compile(hash, bytes, request, wait)?;
                (module, LoadSource::Compiled)
            }
        };
        let loaded = self.prepare(manifest, module)?;
        // Callers that shared a compile each prepared it; the first one kept serves all.
        let loaded = self
            .modules
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(hash)
            .or_insert_with(|| Arc::new(loaded))
            .clone();
        Ok((loaded, source))
    }

    fn compile_request(&self) -> Result<compile::Request, LoadError> {
        let started = self.started()?;
        Ok(compile::Request {
            engine: started.engine.clone(),
            codebase: self.codebase.clone(),
            fingerprint: started.fingerprint.clone(),
            compiler: self.config.compiler.clone(),
            limits: self.config.compile_limits,
            settings: CodeSettings {
                max_stack_bytes: self.config.max_stack_bytes,
                max_memory_bytes: self.config.max_memory_bytes,
            },
        })
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
        let started = self.started()?;
        let Some(artifact) = self.codebase.artifact(hash, &started.fingerprint)? else {
            return Ok(None);
        };
        // SAFETY: artifacts are only ever written by this node's own compiler (in this
        // process or a child it started, `compile.rs`), in its own codebase, under this
        // compiler's fingerprint, and are checksummed by the store; none is ever
        // accepted from a peer.
        match unsafe { Module::deserialize(&started.engine, &artifact) } {
            Ok(module) => Ok(Some(module)),
            Err(error) => {
                tracing::warn!(%hash, %error, "cached artifact unusable; recompiling");
                Ok(None)
            }
        }
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
        let mut linker = Linker::new(module.engine());
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
