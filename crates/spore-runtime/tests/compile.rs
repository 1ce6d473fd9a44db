//! Compiling: the engine is built only when code first runs, a caller waits for a compile
//! no longer than its deadline, and what a compile child writes runs in the engine.

use std::time::{Duration, Instant};

use spore_core::{Args, FunctionRef, Manifest};
use spore_runtime::{
    CallEnv, InvokeError, Limits, LoadSource, Runtime, RuntimeConfig, Tiering, serve_compile,
};
use spore_store::Codebase;

/// Returns the spore value `null` (status 0, CBOR `null`, at offset 16).
const MODULE_HEAD: &str = r#"(memory (export "memory") 1)
    (data (i32.const 16) "\00\f6")
    (func (export "spore_alloc") (param i32) (result i32) i32.const 1024)
    (func (export "main") (param i32 i32) (result i64) i64.const 68719476738)"#;

/// A module with a function whose `n` locals are all live across `k` nested blocks that
/// one `br_table` branches into: seconds of Cranelift for `k` = 2000, `n` = 200 (28 KB).
fn nest(k: usize, n: usize) -> Vec<u8> {
    let mut body = String::new();
    for i in 0..n {
        body += &format!(
            "(local.set {i} (i32.load offset={} (i32.const 0)))\n",
            4 * i
        );
    }
    body += &"block\n".repeat(k);
    body += "(i32.load (i32.const 0))\nbr_table";
    for target in 0..k {
        body += &format!(" {target}");
    }
    body += "\n";
    for j in 0..k {
        body += &format!(
            "end (local.set {} (i32.add (local.get {}) (i32.const 1)))\n",
            (j * 7) % n,
            j % n
        );
    }
    for i in 0..n {
        body += &format!(
            "(i32.store offset={} (i32.const 0) (local.get {i}))\n",
            4 * i
        );
    }
    wat::parse_str(format!(
        "(module {MODULE_HEAD} (func (local {}) {body}))",
        "i32 ".repeat(n)
    ))
    .unwrap()
}

fn runtime_with(bytes: &[u8]) -> (tempfile::TempDir, Runtime, spore_core::Hash) {
    runtime_tiered(bytes, Tiering::default())
}

fn runtime_tiered(
    bytes: &[u8],
    tiering: Tiering,
) -> (tempfile::TempDir, Runtime, spore_core::Hash) {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    let manifest = Manifest::derive(bytes).unwrap();
    codebase.put_module(bytes, &manifest).unwrap();
    let config = RuntimeConfig {
        tiering,
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(codebase, config).unwrap();
    (dir, runtime, manifest.module)
}

fn call_main(
    runtime: &Runtime,
    module: spore_core::Hash,
    deadline: Duration,
) -> Result<LoadSource, InvokeError> {
    let limits = Limits {
        deadline,
        ..Limits::default()
    };
    let function = FunctionRef::new(module, "main".parse().unwrap());
    runtime
        .invoke(
            &limits.request(function, Args::encode(&[]).unwrap()),
            &CallEnv::default(),
        )
        .map(|invocation| invocation.stats.load_source)
}

#[test]
fn the_engine_is_built_only_when_code_first_runs() {
    let (_dir, runtime, module) =
        runtime_with(&wat::parse_str(format!("(module {MODULE_HEAD})")).unwrap());
    runtime.manifest(&module).unwrap();
    assert!(
        !runtime.is_started(),
        "reading a manifest started the engine"
    );
    assert_eq!(
        call_main(&runtime, module, Duration::from_secs(10)).unwrap(),
        LoadSource::Compiled
    );
    assert!(runtime.is_started());
}

#[test]
fn a_call_stops_waiting_for_a_compile_at_its_deadline_and_the_compile_goes_on() {
    // With tiering, Winch's quick code would serve the call: this is about Cranelift.
    let (_dir, runtime, module) = runtime_tiered(&nest(2000, 200), Tiering::OptimizedOnly);
    let started = Instant::now();
    let error = call_main(&runtime, module, Duration::from_millis(200)).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(error, InvokeError::Timeout { .. }), "{error}");
    assert!(
        elapsed < Duration::from_millis(500),
        "a 200 ms deadline returned after {elapsed:?}"
    );
    // The compile went on: the next call finds it in flight or done.
    assert_eq!(
        call_main(&runtime, module, Duration::from_secs(120)).unwrap(),
        LoadSource::Compiled
    );
    assert_eq!(
        call_main(&runtime, module, Duration::from_secs(1)).unwrap(),
        LoadSource::Memory
    );
}

/// The request `serve_compile` reads: magic, Wasm stack limit, memory reservation, module.
fn compile_request(config: &RuntimeConfig, module: &[u8]) -> Vec<u8> {
    let mut request = b"spore-compile/1\n".to_vec();
    request.extend((config.max_stack_bytes as u64).to_le_bytes());
    request.extend(config.max_memory_bytes.to_le_bytes());
    request.extend(module);
    request
}

#[test]
fn what_a_compile_child_writes_runs_in_the_pooled_engine() {
    let config = RuntimeConfig::default();
    let bytes = wat::parse_str(format!("(module {MODULE_HEAD})")).unwrap();
    let (mut artifact, mut errors) = (Vec::new(), Vec::new());
    let code = serve_compile(
        &mut &compile_request(&config, &bytes)[..],
        &mut artifact,
        &mut errors,
    );
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&errors));
    let engine = wasmtime::Engine::new(&spore_runtime::wasmtime_config(&config)).unwrap();
    // SAFETY: compiled just now by this test's own compiler.
    let module = unsafe { wasmtime::Module::deserialize(&engine, &artifact) }.unwrap();
    assert!(module.get_export_index("main").is_some());
}

#[test]
fn a_compile_child_refuses_a_bad_module_and_a_bad_request_with_a_message() {
    let config = RuntimeConfig::default();
    let (mut artifact, mut errors) = (Vec::new(), Vec::new());
    let code = serve_compile(
        &mut &compile_request(&config, b"\0asm\x01\0\0\0\x05")[..],
        &mut artifact,
        &mut errors,
    );
    assert_eq!(code, 2);
    assert!(artifact.is_empty());
    assert!(!errors.is_empty());
    errors.clear();
    let code = serve_compile(&mut &b"hello"[..], &mut artifact, &mut errors);
    assert_eq!(code, 4);
    assert!(String::from_utf8_lossy(&errors).contains("not a compile request"));
}
