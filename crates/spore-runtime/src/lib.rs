//! Runs spore functions: one wasmtime engine per process, built when code first runs,
//! each module compiled once (in a child process that can be stopped, and cached in
//! memory and as a native artifact in the codebase), a fresh instance for every call,
//! and hard per-call limits on time, memory and stack.
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
    RuntimeConfig, WASM_PAGE_BYTES,
};
pub use engine::wasmtime_config;
pub use error::{CompileLimit, InvokeError, LoadError, TrapDetail, export_kind};
pub use invoke::{CallEnv, Invocation};
pub use loader::LoadedModule;
pub use spore_core::ErrorKind;
pub use spore_core::{CallStats, LoadSource};

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

/// The engine, once built.
struct Started {
    engine: wasmtime::Engine,
    /// Identifies this compiler build and settings; part of every artifact's cache key.
    fingerprint: Vec<u8>,
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
        let engine = engine::build(&self.config)?;
        engine::start_epoch_ticker(&engine, self.config.epoch_tick);
        tracing::debug!(
            instances = self.config.max_instances,
            memory = self.config.max_memory_bytes,
            "engine started"
        );
        Ok(self.engine.get_or_init(|| Started {
            fingerprint: engine::fingerprint(&engine),
            engine,
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
