//! Runs spore functions: one wasmtime engine per process, each module compiled once
//! (cached in memory and as a native artifact in the codebase), a fresh instance for
//! every call, and hard per-call limits on time, memory and stack.
//!
//! The runtime speaks the guest ABI of `spec/abi.md` and reports every way a call can
//! end as a typed error naming the function. It must not know where modules come from
//! beyond the local codebase (no network), nor how people name functions.

mod ability;
mod config;
mod dispatch;
mod engine;
mod error;
mod invoke;
mod loader;

pub use ability::{
    AbilityContext, AbilityError, Bindings, LOG_BYTES_PER_CALL, LogAllowance, Provider, field,
    text_field,
};
pub use config::{DEFAULT_LIMITS, Limits, MAX_MEMORY_BYTES, RuntimeConfig, WASM_PAGE_BYTES};
pub use engine::wasmtime_config;
pub use error::{InvokeError, LoadError, TrapDetail, export_kind};
pub use invoke::{CallEnv, Invocation};
pub use loader::LoadedModule;
pub use spore_core::ErrorKind;
pub use spore_core::{CallStats, LoadSource};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use spore_core::Hash;
use spore_store::Codebase;

/// The function runner of one process. Share it behind an `Arc`; calls run concurrently.
pub struct Runtime {
    engine: wasmtime::Engine,
    codebase: Codebase,
    config: RuntimeConfig,
    /// Identifies this compiler build and settings; part of every artifact's cache key.
    compiler_fingerprint: Vec<u8>,
    modules: RwLock<HashMap<Hash, Arc<LoadedModule>>>,
    /// Serializes cold loads so that one module is never compiled twice at once.
    loading: Mutex<()>,
}

impl Runtime {
    pub fn new(codebase: Codebase, config: RuntimeConfig) -> Result<Runtime, LoadError> {
        let engine = engine::build(&config)?;
        engine::start_epoch_ticker(&engine, config.epoch_tick);
        Ok(Runtime {
            compiler_fingerprint: engine::fingerprint(&engine),
            engine,
            codebase,
            config,
            modules: RwLock::new(HashMap::new()),
            loading: Mutex::new(()),
        })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    pub fn codebase(&self) -> &Codebase {
        &self.codebase
    }
}
