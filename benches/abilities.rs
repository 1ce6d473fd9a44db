//! Abilities, side by side with their baselines in one run:
//!
//! - `kv_get`: a guest performing 1000 `kv.get`s per call, through spore's dispatch and
//!   kv provider, and through a plain wasmtime host function doing the same store lookup
//!   and writing the same response; the difference per get is what spore's dispatch costs;
//! - `memo`: answering `cpu:sha256(1)` (SHA-256 of 1 MiB) from the memo vs running it.
//!
//! Targets (docs/performance.md): dispatch adds at most 1 us per operation; a memo hit is
//! at least 100x faster than executing the CPU-heavy function.

use std::sync::Arc;

use ciborium::Value;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spore_core::{Args, FunctionRef, Manifest, abi, value};
use spore_node::{Home, Node, Outcome};
use spore_runtime::{Bindings, CallEnv, Limits, Runtime, RuntimeConfig};
use spore_store::Codebase;
use wasmtime::{Caller, Engine, Linker, Module, Store};

const GETS_PER_CALL: u64 = 1000;

/// Calls `kv.get {"key": "k"}` GETS_PER_CALL times, then returns null.
const KV_LOOP: &str = r#"(module
  (import "kv" "get" (func $get (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  ;; {"key": "k"} in CBOR, and a result buffer: status 0, null.
  (data (i32.const 16) "\a1\63key\61k")
  (data (i32.const 32) "\00\f6")
  (func (export "spore_alloc") (param $len i32) (result i32)
    (local $ptr i32)
    ;; Reuse one region: responses are read once, and this keeps memory from growing.
    (local.set $ptr (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (if (i32.gt_u (global.get $next) (i32.const 60000)) (then (global.set $next (i32.const 1024))))
    (local.get $ptr))
  (func (export "gets") (param i32 i32) (result i64)
    (local $i i32)
    (loop $again
      (drop (call $get (i32.const 16) (i32.const 7)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 1000))))
    (i64.or (i64.shl (i64.const 32) (i64.const 32)) (i64.const 2))))"#;

fn kv_get(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    let bytes = wat::parse_str(KV_LOOP).unwrap();
    let manifest = Manifest::derive(&bytes).unwrap();
    codebase.put_module(&bytes, &manifest).unwrap();
    let stored = value::encode_canonical(&Value::Text("a stored value".into())).unwrap();
    codebase
        .kv_space("bench")
        .unwrap()
        .put("k", &stored)
        .unwrap();

    // spore: the runtime with the real kv provider bound.
    let runtime = Runtime::new(codebase.clone(), RuntimeConfig::default()).unwrap();
    let mut bindings = Bindings::new("bench");
    let settings = spore_abilities::KvSettings {
        namespace: "bench".into(),
        ..Default::default()
    };
    bindings.bind(
        "kv",
        Arc::new(spore_abilities::KvProvider::new(&codebase, settings).unwrap()),
    );
    let env = CallEnv {
        bindings: Arc::new(bindings),
        ..CallEnv::default()
    };
    let gets = FunctionRef::new(manifest.module, "gets".parse().unwrap());
    let limits = Limits::default();
    runtime
        .invoke(
            &limits.request(gets.clone(), Args::encode(&[]).unwrap()),
            &env,
        )
        .unwrap();

    // Plain wasmtime with spore's engine settings; `kv.get` is a host function that does
    // the store lookup and writes status 0 and the stored bytes through `spore_alloc`.
    let engine = Engine::new(&spore_runtime::wasmtime_config(&RuntimeConfig::default())).unwrap();
    let module = Module::new(&engine, &bytes).unwrap();
    let mut linker = Linker::<()>::new(&engine);
    let tree = codebase.kv_space("bench").unwrap();
    linker
        .func_wrap(
            "kv",
            "get",
            move |mut caller: Caller<'_, ()>, _ptr: i32, _len: i32| -> wasmtime::Result<i64> {
                let found = tree.get("k").unwrap().unwrap_or_default();
                let alloc = caller
                    .get_export(abi::ALLOC)
                    .unwrap()
                    .into_func()
                    .unwrap()
                    .typed::<i32, i32>(&caller)?;
                let memory = caller
                    .get_export(abi::MEMORY)
                    .unwrap()
                    .into_memory()
                    .unwrap();
                let len = 1 + found.len();
                let out = alloc.call(&mut caller, len as i32)?;
                memory.data_mut(&mut caller)[out as usize] = 0;
                memory.write(&mut caller, out as usize + 1, &found)?;
                Ok(abi::pack(out as u32, len as u32))
            },
        )
        .unwrap();
    let pre = linker.instantiate_pre(&module).unwrap();
    let plain = || {
        let mut store = Store::new(&engine, ());
        store.set_epoch_deadline(1);
        let instance = pre.instantiate(&mut store).unwrap();
        let f = instance
            .get_typed_func::<(i32, i32), i64>(&mut store, "gets")
            .unwrap();
        f.call(&mut store, (0, 0)).unwrap()
    };
    plain();

    let mut group = c.benchmark_group("kv_get");
    group.throughput(Throughput::Elements(GETS_PER_CALL));
    group.bench_function("spore", |b| {
        b.iter(|| {
            runtime
                .invoke(
                    &limits.request(gets.clone(), Args::encode(&[]).unwrap()),
                    &env,
                )
                .unwrap()
        })
    });
    group.bench_function("plain_wasmtime_host_call", |b| b.iter(plain));
    group.finish();
}

fn memo(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(Home::new(dir.path())).unwrap();
    let published = node
        .publish(&spore_test_programs::bytes("cpu"), None)
        .unwrap();
    let sha256 = FunctionRef::new(published.manifest.module, "sha256".parse().unwrap());
    let args = Args::encode(&[Value::Integer(1.into())]).unwrap();
    // What a call costs from the edge: the request built, placed, then answered.
    let call = |memo: bool| -> Outcome {
        let request = spore_node::CallRequest {
            memo,
            ..node.request(sha256.clone(), args.clone())
        };
        node.call(request).result.unwrap()
    };
    let (memoized, executed) = (true, false);
    let ran = call(executed);
    let stored = call(memoized);
    let hit = call(memoized);
    assert_eq!(hit.memo, spore_node::MemoUse::Hit, "{stored:?}");
    assert_eq!(hit.value, ran.value);

    let mut group = c.benchmark_group("memo_sha256_1mib");
    group.bench_function("memo_hit", |b| b.iter(|| call(memoized)));
    group.bench_function("execute", |b| b.iter(|| call(executed)));
    group.finish();
}

criterion_group!(benches, kv_get, memo);
criterion_main!(benches);
