//! Tiered compilation: a module's first call runs on Winch's baseline code while
//! Cranelift compiles it in the background, later calls run Cranelift's code once it is
//! ready, and both artifacts are cached so that a restart picks the best one it has.

use std::path::Path;
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_core::{Args, FunctionRef, Hash, Manifest, Tier};
use spore_runtime::{
    CallEnv, CallStats, Compiler, Limits, LoadSource, Runtime, RuntimeConfig, Tiering,
};
use spore_store::Codebase;

/// How long a background Cranelift compile may take before a test gives up on it: the
/// largest test program takes about a second on a busy 2-core machine, unoptimized
/// test builds of wasmtime aside.
const OPTIMIZE_WITHIN: Duration = Duration::from_secs(120);

fn runtime(dir: &Path, tiering: Tiering, compiler: Compiler) -> Runtime {
    let config = RuntimeConfig {
        tiering,
        compiler,
        ..RuntimeConfig::default()
    };
    Runtime::new(Codebase::open(dir).unwrap(), config).unwrap()
}

fn put(dir: &Path, bytes: &[u8]) -> Hash {
    let manifest = Manifest::derive(bytes).unwrap();
    Codebase::open(dir)
        .unwrap()
        .put_module(bytes, &manifest)
        .unwrap();
    manifest.module
}

fn render(runtime: &Runtime, module: Hash) -> (Value, CallStats) {
    let function = FunctionRef::new(module, "render".parse().unwrap());
    let args = Args::encode(&[Value::Text("# Hi\n\n*there*".into())]).unwrap();
    let invocation = runtime
        .invoke(
            &Limits::default().request(function, args),
            &CallEnv::default(),
        )
        .unwrap();
    (invocation.value, invocation.stats)
}

/// Calls until a call runs on Cranelift's code; returns that call's stats.
fn call_until_optimized(runtime: &Runtime, module: Hash, expected: &Value) -> CallStats {
    let started = Instant::now();
    loop {
        let (value, stats) = render(runtime, module);
        assert_eq!(&value, expected);
        if stats.tier == Tier::Optimized {
            return stats;
        }
        assert!(
            started.elapsed() < OPTIMIZE_WITHIN,
            "calls still ran on Winch's code after {OPTIMIZE_WITHIN:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until no compile is running or storing its artifact, as a process would before
/// it exits cleanly.
fn settle(runtime: &Runtime) {
    let started = Instant::now();
    while runtime.compiles_in_flight() > 0 {
        assert!(started.elapsed() < OPTIMIZE_WITHIN, "compiles never ended");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_first_call_runs_on_winch_and_later_calls_on_cranelift_once_it_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let module = put(dir.path(), &spore_test_programs::bytes("markdown"));
    let runtime = runtime(dir.path(), Tiering::Tiered, Compiler::InProcess);
    let (first, stats) = render(&runtime, module);
    assert_eq!(stats.tier, Tier::Baseline);
    assert_eq!(stats.load_source, LoadSource::Compiled);
    let later = call_until_optimized(&runtime, module, &first);
    assert_eq!(later.load_source, LoadSource::Memory);
    assert_eq!(runtime.loaded_tier(&module), Some(Tier::Optimized));
}

#[test]
fn a_restart_with_cranelifts_artifact_cached_runs_it_from_the_first_call() {
    let dir = tempfile::tempdir().unwrap();
    let module = put(dir.path(), &spore_test_programs::bytes("markdown"));
    let expected = {
        let runtime = runtime(dir.path(), Tiering::Tiered, Compiler::InProcess);
        let (first, _) = render(&runtime, module);
        call_until_optimized(&runtime, module, &first);
        settle(&runtime);
        first
    };
    let restarted = runtime(dir.path(), Tiering::Tiered, Compiler::InProcess);
    let (value, stats) = render(&restarted, module);
    assert_eq!(value, expected);
    assert_eq!(stats.tier, Tier::Optimized);
    assert_eq!(stats.load_source, LoadSource::Artifact);
}

#[test]
fn a_restart_with_only_winchs_artifact_runs_it_and_optimizes_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let module = put(dir.path(), &spore_test_programs::bytes("markdown"));
    let expected = {
        // This runtime never optimizes: the codebase gets only Winch's artifact.
        let runtime = runtime(dir.path(), Tiering::BaselineOnly, Compiler::InProcess);
        let (value, _) = render(&runtime, module);
        settle(&runtime);
        value
    };
    let restarted = runtime(dir.path(), Tiering::Tiered, Compiler::InProcess);
    let (value, stats) = render(&restarted, module);
    assert_eq!(value, expected);
    assert_eq!(stats.tier, Tier::Baseline);
    assert_eq!(stats.load_source, LoadSource::Artifact);
    call_until_optimized(&restarted, module, &expected);
}

#[test]
fn with_tiering_off_the_first_call_waits_for_cranelift() {
    let dir = tempfile::tempdir().unwrap();
    let module = put(dir.path(), &spore_test_programs::bytes("markdown"));
    let runtime = runtime(dir.path(), Tiering::OptimizedOnly, Compiler::InProcess);
    let (_, stats) = render(&runtime, module);
    assert_eq!(stats.tier, Tier::Optimized);
    assert_eq!(stats.load_source, LoadSource::Compiled);
}

#[test]
fn a_module_winch_cannot_compile_waits_for_cranelift() {
    // Winch compiles no tail calls.
    let bytes = wat::parse_str(
        r#"(module
            (memory (export "memory") 1)
            (data (i32.const 16) "\00\f6")
            (func (export "spore_alloc") (param i32) (result i32) i32.const 1024)
            (func $null (result i64) i64.const 68719476738)
            (func (export "main") (param i32 i32) (result i64) return_call $null))"#,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let module = put(dir.path(), &bytes);
    let runtime = runtime(dir.path(), Tiering::Tiered, Compiler::InProcess);
    let function = FunctionRef::new(module, "main".parse().unwrap());
    let invocation = runtime
        .invoke(
            &Limits::default().request(function, Args::encode(&[]).unwrap()),
            &CallEnv::default(),
        )
        .unwrap();
    assert_eq!(invocation.value, Value::Null);
    assert_eq!(invocation.stats.tier, Tier::Optimized);
    assert_eq!(invocation.stats.load_source, LoadSource::Compiled);
}

#[test]
fn a_compile_ahead_of_calls_has_stored_its_artifact_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = spore_test_programs::bytes("markdown");
    let module = put(dir.path(), &bytes);
    let manifest = Manifest::derive(&bytes).unwrap();
    let runtime = runtime(dir.path(), Tiering::Tiered, Compiler::InProcess);
    runtime.compile_module(&manifest, &bytes).unwrap();
    // What publishing does: a CLI process that exits now must leave the artifact for
    // the next one, not a compile still storing it.
    assert_eq!(runtime.compiles_in_flight(), 0);
    drop(runtime);
    let next = self::runtime(dir.path(), Tiering::Tiered, Compiler::InProcess);
    let (_, stats) = render(&next, module);
    assert_eq!(stats.tier, Tier::Optimized);
    assert_eq!(stats.load_source, LoadSource::Artifact);
}
