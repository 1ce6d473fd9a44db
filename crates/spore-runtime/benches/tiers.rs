//! Tiered compilation, side by side in one run:
//!
//! - `compile_markdown`: compiling the 367 KiB Markdown module with Winch and with
//!   Cranelift in this process, and with Winch in a child process (this binary run again:
//!   start, engine, compile, artifact back through a pipe, deserialize), which is what a
//!   first call would wait for if Winch ran in the compile child as Cranelift does;
//! - `first_call_markdown`: the first call of the Markdown module in a fresh runtime
//!   (new engines, the module stored, no artifact cached), tiered and Cranelift-only;
//!   between iterations, untimed, the tiered runtime's background compile finishes;
//! - `cpu_heavy_*`: a warm call of `cpu:mandelbrot` (floats) and `cpu:sha256` (integers)
//!   on Winch's code, on Cranelift's, and on a tiered runtime after it switched to
//!   Cranelift's.
//!
//! Targets (docs/performance.md): the tiered first call at most 60 ms; after the switch,
//! CPU-heavy calls as fast as Cranelift-only.
//!
//! `cargo bench -p spore-runtime --bench tiers`

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ciborium::Value;
use criterion::{Criterion, criterion_group};
use spore_core::{Args, FunctionRef, Hash, Manifest, Tier};
use spore_runtime::{CallEnv, Invocation, Limits, Runtime, RuntimeConfig, Tiering};
use spore_store::Codebase;

struct Fixture {
    _dir: tempfile::TempDir,
    codebase: Codebase,
    module: Hash,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let codebase = Codebase::open(dir.path()).unwrap();
        let bytes = spore_test_programs::bytes(name);
        let manifest = Manifest::derive(&bytes).unwrap();
        codebase.put_module(&bytes, &manifest).unwrap();
        Fixture {
            _dir: dir,
            codebase,
            module: manifest.module,
        }
    }

    fn runtime(&self, tiering: Tiering) -> Runtime {
        let config = RuntimeConfig {
            tiering,
            ..RuntimeConfig::default()
        };
        Runtime::new(self.codebase.clone(), config).unwrap()
    }

    fn call(&self, runtime: &Runtime, export: &str, args: &[Value]) -> Invocation {
        let function = FunctionRef::new(self.module, export.parse().unwrap());
        let request = Limits::default().request(function, Args::encode(args).unwrap());
        runtime.invoke(&request, &CallEnv::default()).unwrap()
    }

    /// Calls until a call runs on Cranelift's code.
    fn until_optimized(&self, runtime: &Runtime, export: &str, args: &[Value]) {
        while self.call(runtime, export, args).stats.tier != Tier::Optimized {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Set in the environment of this binary run again as a compile child.
const CHILD: &str = "SPORE_BENCH_WINCH_CHILD";

fn engine_config(strategy: wasmtime::Strategy) -> wasmtime::Config {
    match strategy {
        wasmtime::Strategy::Winch => {
            spore_runtime::baseline_wasmtime_config(&RuntimeConfig::default())
        }
        _ => spore_runtime::wasmtime_config(&RuntimeConfig::default()),
    }
}

/// The child's half of `winch_in_child`: what a compile child would do for Winch (start,
/// build the engine, read the module, compile, write the artifact).
fn serve_winch_compile() {
    let engine = wasmtime::Engine::new(&engine_config(wasmtime::Strategy::Winch)).unwrap();
    let mut module = Vec::new();
    std::io::stdin().read_to_end(&mut module).unwrap();
    let artifact = engine.precompile_module(&module).unwrap();
    std::io::stdout().write_all(&artifact).unwrap();
}

fn compile_markdown(c: &mut Criterion) {
    let bytes = spore_test_programs::bytes("markdown");
    let mut group = c.benchmark_group("compile_markdown");
    group.sample_size(10);
    for (name, strategy) in [
        ("winch", wasmtime::Strategy::Winch),
        ("cranelift", wasmtime::Strategy::Cranelift),
    ] {
        let engine = wasmtime::Engine::new(&engine_config(strategy)).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| wasmtime::Module::new(&engine, &bytes).unwrap())
        });
    }
    let engine = wasmtime::Engine::new(&engine_config(wasmtime::Strategy::Winch)).unwrap();
    group.bench_function("winch_in_child", |b| {
        b.iter(|| {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .env(CHILD, "1")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let module = bytes.clone();
            let writer = std::thread::spawn(move || stdin.write_all(&module).unwrap());
            let mut artifact = Vec::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_end(&mut artifact)
                .unwrap();
            writer.join().unwrap();
            assert!(child.wait().unwrap().success());
            // SAFETY: made just now by this benchmark's own child, with these settings.
            unsafe { wasmtime::Module::deserialize(&engine, &artifact) }.unwrap()
        })
    });
    group.finish();
}

fn first_call_markdown(c: &mut Criterion) {
    let fixture = Fixture::new("markdown");
    let args = [Value::Text(
        "# Title\n\nSome *markdown* with a [link](https://example.org).".into(),
    )];
    let mut group = c.benchmark_group("first_call_markdown");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for (name, tiering) in [
        ("tiered", Tiering::Tiered),
        ("cranelift_only", Tiering::OptimizedOnly),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    fixture.codebase.clear_artifacts().unwrap();
                    let runtime = fixture.runtime(tiering);
                    let started = Instant::now();
                    fixture.call(&runtime, "render", &args);
                    total += started.elapsed();
                    // The background compile must not run into the next iteration.
                    fixture.until_optimized(&runtime, "render", &args);
                }
                total
            })
        });
    }
    group.finish();
}

fn cpu_heavy(c: &mut Criterion) {
    let fixture = Fixture::new("cpu");
    let int = |n: u32| Value::Integer(n.into());
    // Float-heavy, and integer-heavy.
    let functions = [
        ("mandelbrot", vec![int(120), int(80), int(200)]),
        ("sha256", vec![int(1)]),
    ];
    let baseline = fixture.runtime(Tiering::BaselineOnly);
    let optimized = fixture.runtime(Tiering::OptimizedOnly);
    fixture.codebase.clear_artifacts().unwrap();
    let switched = fixture.runtime(Tiering::Tiered);
    let (first, args) = &functions[0];
    assert_eq!(
        fixture.call(&switched, first, args).stats.tier,
        Tier::Baseline
    );
    fixture.until_optimized(&switched, first, args);

    for (function, args) in &functions {
        let mut group = c.benchmark_group(format!("cpu_heavy_{function}"));
        group.sample_size(20);
        for (name, runtime, tier) in [
            ("winch", &baseline, Tier::Baseline),
            ("cranelift", &optimized, Tier::Optimized),
            ("tiered_after_switch", &switched, Tier::Optimized),
        ] {
            assert_eq!(fixture.call(runtime, function, args).stats.tier, tier);
            group.bench_function(name, |b| b.iter(|| fixture.call(runtime, function, args)));
        }
        group.finish();
    }
}

criterion_group!(benches, compile_markdown, first_call_markdown, cpu_heavy);

fn main() {
    if std::env::var_os(CHILD).is_some() {
        return serve_winch_compile();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
