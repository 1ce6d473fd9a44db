//! Runs spore functions: wasmtime engines built when code first runs, each module
//! compiled once per tier (Winch's baseline code for its first calls, then Cranelift's
//! optimized code, compiled in the background in a child process that can be stopped;
//! both cached in memory and as native artifacts in the codebase), a fresh instance for
//! every call, and hard per-call limits on time, memory and stack.
//!
//! The runtime speaks the guest ABI of `spec/abi.md` and reports every way a call can
//! end as a typed error naming the function. It must not know where modules come from
//! beyond the local codebase (no network), nor how people name functions.

mod ability;
mod child;
mod compile;
mod config;
mod dispatch;
mod engine;
mod error;
mod invoke;
mod loader;

pub use ability::{
    AbilityContext, AbilityError, Bindings, LOG_BYTES_PER_CALL, LogAllowance, LogBudget, Provider,
    field, text_field,
};
pub use child::serve_compile;
pub use config::{
    CompileLimits, Compiler, DEFAULT_COMPILE_LIMITS, DEFAULT_LIMITS, Limits, MAX_MEMORY_BYTES,
    RuntimeConfig, Tiering, WASM_PAGE_BYTES,
};
pub use engine::{baseline_wasmtime_config, wasmtime_config};
pub use error::{CompileLimit, InvokeError, LoadError, TrapDetail, export_kind};
pub use invoke::{CallEnv, Invocation};
pub use loader::LoadedModule;
pub use spore_core::ErrorKind;
pub use spore_core::{CallStats, LoadSource, Tier};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use spore_core::Hash;
use spore_store::Codebase;

/// The function runner of one process. Share it behind an `Arc`; calls run concurrently.
pub struct Runtime {
    /// Built on first use: its instance pool reserves address space for every slot, which
    /// commands that run no code (listing, inspecting, verifying) must not pay for.
    engine: OnceLock<Started>,
    starting: Mutex<()>,
    codebase: Codebase,
    config: RuntimeConfig,
    modules: RwLock<HashMap<Hash, Arc<LoadedModule>>>,
    compiles: Arc<compile::Compiles>,
}

/// The engines, once built. Each one's fingerprint identifies its compiler build and
/// settings, and is part of the cache key of every artifact it compiles.
struct Started {
    optimized: engine::Built,
    /// Absent when tiering is off.
    baseline: Option<engine::Built>,
}

impl Runtime {
    /// A runtime over `codebase`. Nothing is reserved until a module is compiled or run.
    pub fn new(codebase: Codebase, config: RuntimeConfig) -> Result<Runtime, LoadError> {
        Ok(Runtime {
            engine: OnceLock::new(),
            starting: Mutex::new(()),
            codebase,
            config,
            modules: RwLock::new(HashMap::new()),
            compiles: Arc::default(),
        })
    }

    /// The engine, built now if it is not yet.
    fn started(&self) -> Result<&Started, LoadError> {
        if let Some(started) = self.engine.get() {
            return Ok(started);
        }
        let _one = self.starting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(started) = self.engine.get() {
            return Ok(started);
        }
        let (optimized, baseline) = engine::build(&self.config)?;
        for built in std::iter::once(&optimized).chain(&baseline) {
            engine::start_epoch_ticker(&built.engine, self.config.epoch_tick);
        }
        tracing::debug!(
            instances = self.config.max_instances,
            memory = self.config.max_memory_bytes,
            tiering = ?self.config.tiering,
            "engines started"
        );
        Ok(self.engine.get_or_init(|| Started {
            optimized,
            baseline,
        }))
    }

    /// Whether the engine (and its instance pool) exists yet.
    pub fn is_started(&self) -> bool {
        self.engine.get().is_some()
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    pub fn codebase(&self) -> &Codebase {
        &self.codebase
    }
}
