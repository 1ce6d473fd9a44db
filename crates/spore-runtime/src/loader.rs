//! Turning a module hash into something ready to instantiate, as cheaply as the caches
//! allow: in memory, then the codebase's compiled artifact, then a compiler. With
//! tiering, a module no cache has runs first on Winch's code while Cranelift compiles it
//! in the background; the first load after Cranelift is done switches to its code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spore_core::{ExportName, Hash, LoadSource, Manifest, Tier, abi};
use wasmtime::{InstancePre, Linker, Module, ModuleExport};

use crate::child::CodeSettings;
use crate::compile::{self, Job, Wait};
use crate::engine::Built;
use crate::invoke::CallState;
use crate::{Compiler, LoadError, Runtime, Tiering};

/// A module's code, before it is prepared to run.
struct Code {
    module: Module,
    tier: Tier,
    /// For baseline code: the Cranelift compile that replaces it.
    optimizing: Option<Arc<Job>>,
    source: LoadSource,
}

/// A module ready to run: its manifest, its code, and pre-resolved exports.
pub struct LoadedModule {
    pub manifest: Arc<Manifest>,
    /// Which compiler made its code.
    pub(crate) tier: Tier,
    /// For baseline code: the Cranelift compile whose code replaces it, until the first
    /// load that finds it done.
    optimizing: Mutex<Option<Arc<Job>>>,
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
            let loaded = self.optimized_when_ready(loaded);
            return Ok((loaded, LoadSource::Memory, started.elapsed()));
        }
        let manifest = self.codebase.manifest(hash)?;
        // Re-hashing costs far less than loading even a cached artifact, and it keeps
        // the promise that a module whose stored bytes are damaged never runs.
        let bytes = self.codebase.module_bytes(hash)?;
        let (loaded, source) = self.make_ready(manifest, &bytes, wait, self.config.tiering)?;
        let elapsed = started.elapsed();
        tracing::debug!(?source, tier = ?loaded.tier, ?elapsed, "module loaded");
        Ok((loaded, source, elapsed))
    }

    /// Compiles module `hash` now and caches the artifact, unless one is cached already.
    /// A compile ahead of calls makes optimized code, unless this runtime runs baseline
    /// code only.
    pub fn precompile(&self, hash: &Hash) -> Result<LoadSource, LoadError> {
        if self.cached(hash).is_some() {
            self.compiles.wait_stored(hash);
            return Ok(LoadSource::Memory);
        }
        let manifest = self.codebase.manifest(hash)?;
        let bytes = self.codebase.module_bytes(hash)?;
        self.compile_module(&manifest, &bytes)
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
        let source = match self.cached(&manifest.module) {
            Some(_) => LoadSource::Memory,
            None => {
                let tiering = self.ahead_of_calls();
                self.make_ready(manifest.clone(), bytes, Wait::default(), tiering)?
                    .1
            }
        };
        // A compile tells its waiters before it stores the artifact (`compile.rs`), and
        // this promises it stored: a publish from a CLI process that exits next left no
        // artifact, and the next process compiled the module again.
        self.compiles.wait_stored(&manifest.module);
        Ok(source)
    }

    /// The tiering of compiles nobody waits on: Cranelift's code, which later calls
    /// will want, unless only Winch's is run.
    fn ahead_of_calls(&self) -> Tiering {
        match self.config.tiering {
            Tiering::BaselineOnly => Tiering::BaselineOnly,
            Tiering::Tiered | Tiering::OptimizedOnly => Tiering::OptimizedOnly,
        }
    }

    /// The tier a loaded module runs on, if it is loaded: for tests and status pages.
    pub fn loaded_tier(&self, hash: &Hash) -> Option<Tier> {
        self.cached(hash).map(|loaded| loaded.tier)
    }

    /// How many compiles are running, or storing their artifact (which they do after
    /// their module serves calls).
    pub fn compiles_in_flight(&self) -> usize {
        self.compiles.in_flight()
    }

    fn make_ready(
        &self,
        manifest: Manifest,
        bytes: &[u8],
        wait: Wait<'_>,
        tiering: Tiering,
    ) -> Result<(Arc<LoadedModule>, LoadSource), LoadError> {
        let hash = manifest.module;
        let manifest = Arc::new(manifest);
        let engines = self.started()?;
        let optimized = &engines.optimized;
        let code = match (tiering, &engines.baseline) {
            (Tiering::BaselineOnly, Some(baseline)) => self.code(hash, bytes, baseline, wait)?,
            (Tiering::Tiered, Some(baseline)) => {
                self.tiered(hash, bytes, baseline, optimized, wait)?
            }
            _ => self.code(hash, bytes, optimized, wait)?,
        };
        let source = code.source;
        let loaded = self.prepare(manifest, code.module, code.tier, code.optimizing)?;
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

    /// The code of module `hash` from `built`'s compiler: its cached artifact, or a
    /// compile waited for as `wait` allows.
    fn code(
        &self,
        hash: Hash,
        bytes: &[u8],
        built: &Built,
        wait: Wait<'_>,
    ) -> Result<Code, LoadError> {
        let code = |module, source| Code {
            module,
            tier: built.tier,
            optimizing: None,
            source,
        };
        if let Some(module) = self.cached_artifact(&hash, built)? {
            return Ok(code(module, LoadSource::Artifact));
        }
        let request = || Ok(self.compile_request(built));
        let module = self
            .compiles
            .compile(hash, built.tier, bytes, request, wait)?;
        Ok(code(module, LoadSource::Compiled))
    }

    /// The code of module `hash` with tiering: Cranelift's if its artifact is cached;
    /// else Winch's, with Cranelift started in the background; and if Winch cannot
    /// compile the module, Cranelift's, waited for.
    fn tiered(
        &self,
        hash: Hash,
        bytes: &[u8],
        baseline: &Built,
        optimized: &Built,
        wait: Wait<'_>,
    ) -> Result<Code, LoadError> {
        if let Some(module) = self.cached_artifact(&hash, optimized)? {
            return Ok(Code {
                module,
                tier: Tier::Optimized,
                optimizing: None,
                source: LoadSource::Artifact,
            });
        }
        match self.code(hash, bytes, baseline, wait) {
            Ok(code) => Ok(Code {
                optimizing: self.optimize_in_background(hash, bytes, optimized),
                ..code
            }),
            Err(error @ (LoadError::Timeout { .. } | LoadError::Cancelled { .. })) => Err(error),
            Err(error) => {
                tracing::info!(module = %hash.short(12), %error, "Winch cannot compile this module; waiting for Cranelift");
                self.code(hash, bytes, optimized, wait)
            }
        }
    }

    /// Starts Cranelift on a module that runs on baseline code for now.
    fn optimize_in_background(&self, hash: Hash, bytes: &[u8], built: &Built) -> Option<Arc<Job>> {
        let request = || Ok(self.compile_request(built));
        match self.compiles.start(hash, Tier::Optimized, bytes, request) {
            Ok(job) => Some(job),
            Err(error) => {
                tracing::warn!(module = %hash.short(12), %error, "Cranelift will not compile this module; it runs on Winch's code");
                None
            }
        }
    }

    /// `loaded`, or the module's optimized code if its background compile is done; then
    /// the optimized code replaces it in memory for every later call.
    fn optimized_when_ready(&self, loaded: Arc<LoadedModule>) -> Arc<LoadedModule> {
        let hash = loaded.manifest.module;
        let outcome = {
            let mut optimizing = loaded.optimizing.lock().unwrap_or_else(|e| e.into_inner());
            let outcome = optimizing.as_ref().and_then(|job| job.outcome(hash));
            if outcome.is_some() {
                // Only this load switches; the rest find the new code in memory.
                *optimizing = None;
            }
            outcome
        };
        let Some(outcome) = outcome else {
            return loaded;
        };
        let prepared = outcome.and_then(|module| {
            self.prepare(loaded.manifest.clone(), module, Tier::Optimized, None)
        });
        match prepared {
            Ok(optimized) => {
                let optimized = Arc::new(optimized);
                let mut modules = self.modules.write().unwrap_or_else(|e| e.into_inner());
                if let Some(entry) = modules.get_mut(&hash)
                    && Arc::ptr_eq(entry, &loaded)
                {
                    *entry = optimized.clone();
                }
                tracing::info!(module = %hash.short(12), "switched to Cranelift's code");
                optimized
            }
            Err(error) => {
                tracing::warn!(module = %hash.short(12), %error, "Cranelift gave no code; the module stays on Winch's code in this process");
                loaded
            }
        }
    }

    fn compile_request(&self, built: &Built) -> compile::Request {
        compile::Request {
            built: built.clone(),
            codebase: self.codebase.clone(),
            // Winch's compile is what a first call waits for; a child process would add
            // its start to it (see `Compiler`).
            compiler: match built.tier {
                Tier::Optimized => self.config.compiler.clone(),
                Tier::Baseline => Compiler::InProcess,
            },
            limits: self.config.compile_limits,
            settings: CodeSettings {
                max_stack_bytes: self.config.max_stack_bytes,
                max_memory_bytes: self.config.max_memory_bytes,
            },
        }
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

    fn cached_artifact(&self, hash: &Hash, built: &Built) -> Result<Option<Module>, LoadError> {
        let Some(artifact) = self.codebase.artifact(hash, &built.fingerprint)? else {
            return Ok(None);
        };
        // SAFETY: artifacts are only ever written by this node's own compiler (in this
        // process or a child it started, `compile.rs`), in its own codebase, under this
        // compiler's fingerprint, and are checksummed by the store; none is ever
        // accepted from a peer.
        match unsafe { Module::deserialize(&built.engine, &artifact) } {
            Ok(module) => Ok(Some(module)),
            Err(error) => {
                tracing::warn!(%hash, %error, "cached artifact unusable; recompiling");
                Ok(None)
            }
        }
    }

    fn prepare(
        &self,
        manifest: Arc<Manifest>,
        module: Module,
        tier: Tier,
        optimizing: Option<Arc<Job>>,
    ) -> Result<LoadedModule, LoadError> {
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
            manifest,
            tier,
            optimizing: Mutex::new(optimizing),
            pre,
            memory,
            alloc,
            panic_message,
            functions,
        })
    }
}
