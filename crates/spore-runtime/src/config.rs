use std::ffi::OsString;
use std::path::PathBuf;
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
    /// Where modules are compiled.
    pub compiler: Compiler,
    /// What compiling one module may cost.
    pub compile_limits: CompileLimits,
    /// Which compilers make the code of a module this node has not compiled before.
    pub tiering: Tiering,
}

/// Which compilers make a module's code, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tiering {
    /// A module's first calls run on Winch's baseline code (compiled 15 to 26 times
    /// faster than Cranelift, docs/performance.md) while Cranelift compiles it in the
    /// background; calls that start once Cranelift is done run its optimized code.
    #[default]
    Tiered,
    /// Cranelift only: the first call waits for it.
    OptimizedOnly,
    /// Winch only, never optimized. For comparing the tiers in tests and benchmarks.
    BaselineOnly,
}

/// Where Cranelift runs (Winch, quick and linear in the module's size, always runs in
/// this process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compiler {
    /// In this process. A compile here cannot be stopped: its time and memory limits are
    /// not enforced (a caller still stops waiting at its deadline). For tests, and for
    /// embedders that trust the modules they run.
    InProcess,
    /// In a child process: `program` run with `args`, which must answer as
    /// [`crate::serve_compile`] does (read a request on stdin, write the compiled
    /// artifact on stdout). It runs under an address-space limit and is killed at the
    /// time limit.
    Program {
        program: PathBuf,
        args: Vec<OsString>,
    },
}

/// What compiling one module may cost before it is stopped and the module refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileLimits {
    /// Wall-clock time, counted from when the compile starts (not from when it waits
    /// for another to finish).
    pub time: Duration,
    /// The compiler's address space (`RLIMIT_AS`): everything the process maps, its code
    /// and thread stacks included, not only what Cranelift allocates.
    pub memory_bytes: u64,
}

/// The compile limits of a runtime that sets none (and the defaults of `config.toml`).
/// Measured on a busy 2-core VM: the largest test program (376 KB) compiles in a child in
/// about 0.6 s within 256 MiB of address space (the child's own code and threads take
/// over 128 MiB of it), so a 16 MiB module may need tens of seconds and a few hundred
/// MiB; a 58 KB module built to be slow took 33 s and 1.25 GB.
pub const DEFAULT_COMPILE_LIMITS: CompileLimits = CompileLimits {
    time: Duration::from_secs(60),
    memory_bytes: 2 << 30,
};

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            default_limits: Limits::default(),
            max_stack_bytes: 512 << 10,
            max_memory_bytes: MAX_MEMORY_BYTES,
            max_instances: 1000,
            epoch_tick: Duration::from_millis(5),
            compiler: Compiler::InProcess,
            compile_limits: DEFAULT_COMPILE_LIMITS,
            tiering: Tiering::default(),
        }
    }
}
