use std::time::{Duration, Instant};

use spore_core::{Args, CallRequest, FunctionRef, TraceId};

/// Limits on one call. Every call has all three; none is optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time from the start of instantiation to the result.
    pub deadline: Duration,
    /// The most linear memory the instance may have, in bytes.
    pub memory_bytes: u64,
}

/// The limits of a call that asks for none (and the defaults of `config.toml`).
pub const DEFAULT_LIMITS: Limits = Limits {
    deadline: Duration::from_secs(10),
    memory_bytes: 64 << 20,
};

/// The most linear memory any call may have: it sizes the pooling allocator's slots, and
/// configuration and command line are checked against it. (A 32-bit memory could grow to
/// 4 GiB; spore keeps the address space it reserves per instance to a quarter of that.)
pub const MAX_MEMORY_BYTES: u64 = 1 << 30;

/// The size of a WebAssembly page: the unit memories grow by.
pub const WASM_PAGE_BYTES: u64 = 64 << 10;

impl Default for Limits {
    fn default() -> Self {
        DEFAULT_LIMITS
    }
}

impl Limits {
    /// A call of `function` with `args` under these limits, its deadline counted from now.
    pub fn request(&self, function: FunctionRef, args: Args) -> CallRequest {
        CallRequest::new(
            function,
            args,
            Instant::now() + self.deadline,
            self.memory_bytes,
            TraceId::default(),
        )
    }
}

/// Settings of the runtime as a whole, fixed for the life of the process.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Limits for calls that do not set their own.
    pub default_limits: Limits,
    /// The Wasm stack limit, in bytes (an engine-wide setting in wasmtime).
    pub max_stack_bytes: usize,
    /// The most memory any call may ask for; sizes the pooling allocator's slots.
    pub max_memory_bytes: u64,
    /// How many instances may be alive at once (the pooling allocator's capacity).
    pub max_instances: u32,
    /// How often deadlines are checked. A deadline fires within one tick after it passes.
    pub epoch_tick: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            default_limits: Limits::default(),
            max_stack_bytes: 512 << 10,
            max_memory_bytes: MAX_MEMORY_BYTES,
            max_instances: 1000,
            epoch_tick: Duration::from_millis(5),
        }
    }
}
