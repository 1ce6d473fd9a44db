//! Local invocation, side by side with its baselines in one run:
//!
//! - `warm_add`: a warm call of `arith:add` through spore, through plain wasmtime doing
//!   the same work (Module, Linker, InstancePre, pooling allocator, instantiate, write
//!   the CBOR arguments, call, read the result), and as a native Rust call;
//! - `throughput_add`: spore calls from one and from two threads;
//! - `first_invoke_markdown`: the first call after a process restart (a new engine on
//!   the same codebase) with the compiled-artifact cache, and without it.
//!
//! Targets (docs/performance.md): warm spore <= 1.5x plain wasmtime; restart with the
//! cache >= 20x faster than recompiling.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ciborium::Value;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use spore_core::{Args, FunctionRef, Manifest, abi};
use spore_runtime::{CallEnv, Limits, Runtime, RuntimeConfig};
use spore_store::Codebase;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig, Store,
};

struct Fixture {
    _dir: tempfile::TempDir,
    codebase: Codebase,
}

impl Fixture {
    fn new(modules: &[&str]) -> (Fixture, Vec<Manifest>) {
        let dir = tempfile::tempdir().unwrap();
        let codebase = Codebase::open(dir.path()).unwrap();
        let manifests = modules
            .iter()
            .map(|name| {
                let bytes = spore_test_programs::bytes(name);
                let manifest = Manifest::derive(&bytes).unwrap();
                codebase.put_module(&bytes, &manifest).unwrap();
                manifest
            })
            .collect();
        (
            Fixture {
                _dir: dir,
                codebase,
            },
            manifests,
        )
    }

    fn runtime(&self) -> Runtime {
        Runtime::new(self.codebase.clone(), RuntimeConfig::default()).unwrap()
    }
}

fn add_args() -> Vec<Value> {
    vec![Value::Integer(2.into()), Value::Integer(3.into())]
}

/// The baseline: wasmtime used directly, as an embedder would, doing the ABI's work.
struct PlainWasmtime {
    pre: wasmtime::InstancePre<()>,
    engine: Engine,
    args: Vec<u8>,
}

impl PlainWasmtime {
    /// With the pooling allocator and otherwise wasmtime's defaults.
    fn pooled_defaults(bytes: &[u8]) -> PlainWasmtime {
        let mut config = Config::new();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(
            PoolingAllocationConfig::default(),
        ));
        Self::new(config, bytes)
    }

    /// With exactly the engine settings spore uses, so the difference is spore's own work.
    fn spore_settings(bytes: &[u8]) -> PlainWasmtime {
        Self::new(
            spore_runtime::wasmtime_config(&RuntimeConfig::default()),
            bytes,
        )
    }

    fn new(config: Config, bytes: &[u8]) -> PlainWasmtime {
        let engine = Engine::new(&config).unwrap();
        let module = Module::new(&engine, bytes).unwrap();
        let pre = Linker::new(&engine).instantiate_pre(&module).unwrap();
        let args = spore_core::value::encode_canonical(&Value::Array(add_args())).unwrap();
        PlainWasmtime { pre, engine, args }
    }

    fn call(&self) -> Vec<u8> {
        let mut store = Store::new(&self.engine, ());
        // Only matters with spore's settings (epoch interruption on); the epoch never
        // advances here, so this deadline is never reached.
        store.set_epoch_deadline(1);
        let instance = self.pre.instantiate(&mut store).unwrap();
        let memory = instance.get_memory(&mut store, abi::MEMORY).unwrap();
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, abi::ALLOC)
            .unwrap();
        let add = instance
            .get_typed_func::<(i32, i32), i64>(&mut store, "add")
            .unwrap();
        let ptr = alloc.call(&mut store, self.args.len() as i32).unwrap();
        memory.write(&mut store, ptr as usize, &self.args).unwrap();
        let packed = add.call(&mut store, (ptr, self.args.len() as i32)).unwrap();
        let (out, len) = abi::unpack(packed);
        memory.data(&store)[out as usize..(out + len) as usize].to_vec()
    }
}

/// `arith:add(2, 3)` ready to invoke through spore's runtime.
struct AddCall {
    _fixture: Fixture,
    runtime: Runtime,
    add: FunctionRef,
    limits: Limits,
    env: CallEnv,
    args: Vec<Value>,
}

impl AddCall {
    fn new() -> AddCall {
        let (fixture, manifests) = Fixture::new(&["arith"]);
        AddCall {
            runtime: fixture.runtime(),
            _fixture: fixture,
            add: FunctionRef::new(manifests[0].module, "add".parse().unwrap()),
            limits: Limits::default(),
            env: CallEnv::default(),
            args: add_args(),
        }
    }
}

fn warm_add(c: &mut Criterion) {
    let AddCall {
        _fixture,
        runtime,
        add,
        limits,
        env,
        args,
    } = AddCall::new();
    assert_eq!(
        runtime
            .invoke(
                &limits.request(add.clone(), Args::encode(&args).unwrap()),
                &env
            )
            .unwrap()
            .value,
        Value::Integer(5.into())
    );
    let plain = PlainWasmtime::pooled_defaults(&spore_test_programs::bytes("arith"));
    let same_settings = PlainWasmtime::spore_settings(&spore_test_programs::bytes("arith"));
    assert_eq!(plain.call(), [0, 5]);
    assert_eq!(same_settings.call(), [0, 5]);

    let mut group = c.benchmark_group("warm_add");
    group.bench_function("spore", |b| {
        b.iter(|| {
            runtime
                .invoke(
                    &limits.request(add.clone(), Args::encode(black_box(&args)).unwrap()),
                    &env,
                )
                .unwrap()
        })
    });
    group.bench_function("plain_wasmtime", |b| b.iter(|| plain.call()));
    group.bench_function("plain_wasmtime_spore_settings", |b| {
        b.iter(|| same_settings.call())
    });
    group.bench_function("native", |b| {
        b.iter(|| black_box(2i64).checked_add(black_box(3)))
    });
    group.finish();
}

fn throughput_add(c: &mut Criterion) {
    let AddCall {
        _fixture,
        runtime,
        add,
        limits,
        env,
        args,
    } = AddCall::new();

    let mut group = c.benchmark_group("throughput_add");
    group.throughput(Throughput::Elements(1));
    for threads in [1u64, 2] {
        group.bench_function(format!("spore_{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                let per_thread = iters.div_ceil(threads);
                let started = Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..threads {
                        scope.spawn(|| {
                            for _ in 0..per_thread {
                                runtime
                                    .invoke(
                                        &limits.request(add.clone(), Args::encode(&args).unwrap()),
                                        &env,
                                    )
                                    .unwrap();
                            }
                        });
                    }
                });
                // Per call: the wall time of all calls divided by how many there were.
                started
                    .elapsed()
                    .mul_f64(iters as f64 / (per_thread * threads) as f64)
            })
        });
    }
    group.finish();
}

fn first_invoke_markdown(c: &mut Criterion) {
    let (fixture, manifests) = Fixture::new(&["markdown"]);
    let render = FunctionRef {
        module: manifests[0].module,
        export: None,
    };
    let args = vec![Value::Text(
        "# Title\n\nSome *markdown* with a [link](https://example.org).".into(),
    )];
    let limits = Limits::default();
    let env = CallEnv::default();
    // Compile once so that the artifact is cached for the `with_cache` case.
    fixture.runtime().precompile(&render.module).unwrap();

    let mut group = c.benchmark_group("first_invoke_markdown");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("with_compiled_cache", |b| {
        b.iter_batched(
            || fixture.runtime(),
            |runtime| {
                runtime
                    .invoke(
                        &limits.request(render.clone(), Args::encode(&args).unwrap()),
                        &env,
                    )
                    .unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("recompiling", |b| {
        b.iter_batched(
            || {
                fixture.codebase.clear_artifacts().unwrap();
                fixture.runtime()
            },
            |runtime| {
                runtime
                    .invoke(
                        &limits.request(render.clone(), Args::encode(&args).unwrap()),
                        &env,
                    )
                    .unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, warm_add, throughput_add, first_invoke_markdown);
criterion_main!(benches);
