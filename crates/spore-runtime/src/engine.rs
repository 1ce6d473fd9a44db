//! The process-wide wasmtime engines (Cranelift's, and Winch's for first calls) and
//! their epoch clocks.

use std::hash::{Hash as _, Hasher};
use std::time::Duration;

use spore_core::Tier;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Strategy,
};

use crate::{LoadError, RuntimeConfig, Tiering};

/// An engine, and the fingerprint of its compiler that keys its artifacts.
#[derive(Clone)]
pub(crate) struct Built {
    pub engine: Engine,
    pub fingerprint: Vec<u8>,
    pub tier: Tier,
}

/// Per slot, how much memory stays mapped between calls and is reset by writing
/// (only the pages a call touched, where the kernel can say which) instead of being
/// unmapped and faulted in again.
const KEEP_RESIDENT: usize = 2 << 20;

/// The wasmtime settings spore runs functions with. Public so that benchmarks can
/// compare spore against plain wasmtime configured identically.
pub fn wasmtime_config(config: &RuntimeConfig) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_core_instances(config.max_instances)
        .total_memories(config.max_instances)
        .total_tables(config.max_instances)
        .max_memories_per_module(1)
        .max_tables_per_module(1)
        .max_memory_size(config.max_memory_bytes as usize)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut wasm = code_config(config.max_stack_bytes, config.max_memory_bytes);
    wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    wasm
}

/// The settings the compiled code depends on (and so an artifact's compatibility): the
/// same in the process that runs modules and in a child that only compiles them, which
/// allocates no instance and so reserves no pool.
pub(crate) fn code_config(max_stack_bytes: usize, max_memory_bytes: u64) -> Config {
    let mut wasm = Config::new();
    wasm.epoch_interruption(true)
        .max_wasm_stack(max_stack_bytes)
        .cranelift_opt_level(OptLevel::Speed)
        .parallel_compilation(true)
        // Explicit bounds checks instead of guard regions. Every call grows memory (the
        // guest allocator's first allocation), and with guard regions wasmtime must
        // mprotect the slot back down on the next instantiation: two address-space
        // write locks and cross-CPU TLB shootdowns per call. Measured (benches/invoke.rs,
        // this 2-core VM): a warm call went from 15.4 us to 4.8 us and two threads from
        // 27k to 281k calls/s, while CPU-heavy guests (SHA-256, Mandelbrot) ran within
        // 2% of their guard-region speed.
        .signals_based_traps(false)
        .memory_reservation(max_memory_bytes)
        .memory_guard_size(0)
        // Determinism: pure functions are memoized and may run on any node, so the
        // same inputs must give the same bits everywhere. (Threads are not compiled
        // into this wasmtime at all.)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .wasm_relaxed_simd(true)
        .wasm_tail_call(true)
        .wasm_memory64(false)
        .wasm_multi_memory(false);
    wasm
}

/// The settings of the engine that runs Winch's baseline code: those of
/// [`code_config`], except what Winch cannot do. It needs signals-based traps (its
/// builder refuses the engine without them), though with no guard region its bounds
/// checks stay explicit. It compiles neither tail calls nor relaxed SIMD: a module that
/// uses them fails to compile here and waits for Cranelift. Winch canonicalizes NaNs
/// under the same setting as Cranelift (`enable_nan_canonicalization`, which
/// `cranelift_nan_canonicalization` sets for both), so both tiers give the same bits.
///
/// Instances are allocated on demand, not pooled: baseline code serves a module only
/// until Cranelift is done, and a second pool would reserve the address space of every
/// slot a second time. Public, as [`wasmtime_config`] is, for benchmarks.
pub fn baseline_wasmtime_config(config: &RuntimeConfig) -> Config {
    let mut wasm = code_config(config.max_stack_bytes, config.max_memory_bytes);
    wasm.strategy(Strategy::Winch)
        .signals_based_traps(true)
        .wasm_tail_call(false)
        .wasm_relaxed_simd(false);
    wasm
}

/// The engines that run modules: Cranelift's, and Winch's unless tiering is off.
/// Cranelift's pool reserves address space for every instance slot at once
/// (`max_instances` memories of `max_memory_bytes`), which is why they are built only
/// when a module is first compiled or run.
pub(crate) fn build(config: &RuntimeConfig) -> Result<(Built, Option<Built>), LoadError> {
    let optimized = built(&wasmtime_config(config), config, Tier::Optimized)?;
    let baseline = match config.tiering {
        Tiering::OptimizedOnly => None,
        Tiering::BaselineOnly => Some(built(
            &baseline_wasmtime_config(config),
            config,
            Tier::Baseline,
        )?),
        // Winch is not on every platform: without it, calls wait for Cranelift.
        Tiering::Tiered => match built(&baseline_wasmtime_config(config), config, Tier::Baseline) {
            Ok(baseline) => Some(baseline),
            Err(error) => {
                tracing::warn!(%error, "no Winch here: first calls wait for Cranelift");
                None
            }
        },
    };
    Ok((optimized, baseline))
}

fn built(wasm: &Config, config: &RuntimeConfig, tier: Tier) -> Result<Built, LoadError> {
    let engine = Engine::new(wasm).map_err(|e| {
        let reserve = u64::from(config.max_instances).saturating_mul(config.max_memory_bytes);
        LoadError::Engine {
            message: format!("{e:#}"),
            instances: config.max_instances,
            memory_bytes: config.max_memory_bytes,
            reserve_bytes: reserve,
        }
    })?;
    Ok(Built {
        fingerprint: fingerprint(&engine),
        engine,
        tier,
    })
}

/// Advances the engine's epoch every `tick`, for deadlines. The thread holds only a
/// weak reference, so it ends when the engine is dropped.
pub(crate) fn start_epoch_ticker(engine: &Engine, tick: Duration) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("spore-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(tick);
            }
        })
        .expect("spawn the epoch thread");
}

/// A stable fingerprint of the compiler: artifacts cached under another fingerprint
/// (another wasmtime version or other settings) are never loaded.
pub(crate) fn fingerprint(engine: &Engine) -> Vec<u8> {
    struct Blake3Hasher(blake3::Hasher);
    impl Hasher for Blake3Hasher {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            unreachable!("only the full digest is used")
        }
    }
    let mut hasher = Blake3Hasher(blake3::Hasher::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().as_bytes()[..16].to_vec()
}
