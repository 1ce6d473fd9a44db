//! The process-wide wasmtime engine and its epoch clock.

use std::hash::{Hash as _, Hasher};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::{LoadError, RuntimeConfig};

pub(crate) fn build(config: &RuntimeConfig) -> Result<Engine, LoadError> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_core_instances(config.max_instances)
        .total_memories(config.max_instances)
        .total_tables(config.max_instances)
        .max_memories_per_module(1)
        .max_tables_per_module(1)
        .max_memory_size(config.max_memory_bytes as usize);

    let mut wasm = Config::new();
    wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true)
        .max_wasm_stack(config.max_stack_bytes)
        .cranelift_opt_level(OptLevel::Speed)
        .parallel_compilation(true)
        // Threads are not compiled into this wasmtime at all.
        // Determinism: pure functions are memoized and may run on any node, so the
        // same inputs must give the same bits everywhere.
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .wasm_relaxed_simd(true)
        .wasm_tail_call(true)
        .wasm_memory64(false)
        .wasm_multi_memory(false);
    Engine::new(&wasm).map_err(|e| LoadError::Engine(format!("{e:#}")))
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
