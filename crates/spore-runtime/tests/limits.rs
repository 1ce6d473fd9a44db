//! The runtime against hand-written ABI modules: results, guest errors, and every
//! limit, each followed by a call that must still succeed.

use std::time::{Duration, Instant};

use ciborium::Value;
use spore_core::{Args, CallRequest, FunctionRef, Manifest};
use spore_runtime::{CallEnv, InvokeError, Limits, LoadSource, Runtime, RuntimeConfig};
use spore_store::Codebase;

/// A bump allocator, and functions that exercise each way a call can end.
const MODULE: &str = r#"(module
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (func $alloc (export "spore_alloc") (param $len i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (local.get $ptr))
  ;; Returns its argument array unchanged, behind status 0.
  (func (export "echo") (param $ptr i32) (param $len i32) (result i64)
    (local $out i32)
    (local.set $out (call $alloc (i32.add (local.get $len) (i32.const 1))))
    (i32.store8 (local.get $out) (i32.const 0))
    (memory.copy (i32.add (local.get $out) (i32.const 1)) (local.get $ptr) (local.get $len))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.add (local.get $len) (i32.const 1)))))
  ;; Status 1 with the text "no".
  (data (i32.const 16) "\01\62no")
  (func (export "fail") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 4)))
  (data (i32.const 32) "\07")
  (func (export "bad_status") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 32) (i64.const 32)) (i64.const 1)))
  (func (export "out_of_bounds") (param i32 i32) (result i64)
    (i64.const -1))
  (func (export "spin") (param i32 i32) (result i64)
    (loop $forever (br $forever))
    (i64.const 0))
  (func (export "hog") (param i32 i32) (result i64)
    (drop (memory.grow (i32.const 4096)))
    unreachable)
  (func $deep (export "deep") (param i32 i32) (result i64)
    (i64.add (call $deep (local.get 0) (local.get 1)) (i64.const 1)))
  ;; Status 0, then simple value 16: not a spore value (spec/values.md).
  (data (i32.const 48) "\00\f0")
  (func (export "simple_value") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 48) (i64.const 32)) (i64.const 2)))
  (func (export "divide_by_zero") (param i32 i32) (result i64)
    (i64.extend_i32_s (i32.div_s (i32.const 1) (i32.const 0)))))"#;

/// A call of `function` with no arguments under the default limits.
fn no_args(function: &FunctionRef) -> CallRequest {
    Limits::default().request(function.clone(), Args::encode(&[]).unwrap())
}

struct Fixture {
    _dir: tempfile::TempDir,
    runtime: Runtime,
    module: spore_core::Hash,
}

fn fixture() -> Fixture {
    fixture_of(MODULE)
}

fn fixture_of(wat: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    let bytes = wat::parse_str(wat).unwrap();
    let manifest = Manifest::derive(&bytes).unwrap();
    codebase.put_module(&bytes, &manifest).unwrap();
    let runtime = Runtime::new(codebase, RuntimeConfig::default()).unwrap();
    Fixture {
        _dir: dir,
        runtime,
        module: manifest.module,
    }
}

impl Fixture {
    fn call(&self, export: &str, limits: &Limits) -> Result<Value, InvokeError> {
        let function = FunctionRef::new(self.module, export.parse().unwrap());
        let args = Args::encode(&[Value::Integer(7.into()), Value::Text("x".into())]).unwrap();
        self.runtime
            .invoke(&limits.request(function, args), &CallEnv::default())
            .map(|invocation| invocation.value)
    }

    fn echo_still_works(&self) {
        let value = self.call("echo", &Limits::default()).unwrap();
        assert_eq!(
            value,
            Value::Array(vec![Value::Integer(7.into()), Value::Text("x".into())])
        );
    }
}

#[test]
fn echo_returns_its_arguments_and_reports_where_it_loaded_from() {
    let fixture = fixture();
    let function = FunctionRef::new(fixture.module, "echo".parse().unwrap());
    let first = fixture
        .runtime
        .invoke(&no_args(&function), &CallEnv::default())
        .unwrap();
    assert_eq!(first.value, Value::Array(vec![]));
    assert_eq!(first.stats.load_source, LoadSource::Compiled);
    let second = fixture
        .runtime
        .invoke(&no_args(&function), &CallEnv::default())
        .unwrap();
    assert_eq!(second.stats.load_source, LoadSource::Memory);
    // Artifacts are stored just after the code serves its first call.
    while fixture.runtime.compiles_in_flight() > 0 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    fixture.runtime.evict_all();
    let third = fixture
        .runtime
        .invoke(&no_args(&function), &CallEnv::default())
        .unwrap();
    assert_eq!(third.stats.load_source, LoadSource::Artifact);
}

#[test]
fn guest_errors_are_not_traps() {
    let fixture = fixture();
    match fixture.call("fail", &Limits::default()) {
        Err(InvokeError::Guest { error, .. }) => assert_eq!(error, Value::Text("no".into())),
        other => panic!("expected a guest error, got {other:?}"),
    }
    fixture.echo_still_works();
}

#[test]
fn abi_violations_are_named() {
    let fixture = fixture();
    for export in ["bad_status", "out_of_bounds"] {
        match fixture.call(export, &Limits::default()) {
            Err(InvokeError::AbiViolation { function, .. }) => {
                assert_eq!(function.export.unwrap().as_str(), export)
            }
            other => panic!("{export}: expected an ABI violation, got {other:?}"),
        }
    }
    fixture.echo_still_works();
}

#[test]
fn an_infinite_loop_stops_at_the_deadline() {
    let fixture = fixture();
    let limits = Limits {
        deadline: Duration::from_millis(200),
        ..Limits::default()
    };
    let started = Instant::now();
    match fixture.call("spin", &limits) {
        Err(InvokeError::Timeout { .. }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= limits.deadline, "stopped early: {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(5),
        "stopped late: {elapsed:?}"
    );
    fixture.echo_still_works();
}

#[test]
fn memory_growth_past_the_cap_is_reported_as_the_limit() {
    let fixture = fixture();
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    match fixture.call("hog", &limits) {
        Err(InvokeError::MemoryLimit {
            limit_bytes,
            requested_bytes,
            ..
        }) => {
            assert_eq!(limit_bytes, 16 << 20);
            assert_eq!(requested_bytes, (4096 + 1) * 65536);
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    fixture.echo_still_works();
}

#[test]
fn runaway_recursion_overflows_the_stack_cleanly() {
    let fixture = fixture();
    assert!(matches!(
        fixture.call("deep", &Limits::default()),
        Err(InvokeError::StackOverflow { .. })
    ));
    fixture.echo_still_works();
}

#[test]
fn traps_name_the_function_and_the_reason() {
    let fixture = fixture();
    match fixture.call("divide_by_zero", &Limits::default()) {
        Err(error @ InvokeError::Trap { .. }) => {
            let text = error.to_string();
            assert!(text.contains(":divide_by_zero trapped"), "{text}");
            assert!(text.contains("integer divide by zero"), "{text}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    fixture.echo_still_works();
}

#[test]
fn concurrent_calls_share_one_compiled_module() {
    let fixture = fixture();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..50 {
                    fixture.echo_still_works();
                }
            });
        }
    });
}

#[test]
fn a_result_holding_a_value_outside_the_data_model_is_named() {
    let fixture = fixture();
    match fixture.call("simple_value", &Limits::default()) {
        Err(error @ InvokeError::AbiViolation { .. }) => {
            let text = error.to_string();
            assert!(text.contains("simple value 16"), "{text}");
        }
        other => panic!("expected an ABI violation, got {other:?}"),
    }
    fixture.echo_still_works();
}

/// A guest whose `spore_panic_message` never returns: asking a trapped instance for its
/// message must not buy it time past the call's deadline.
const PANIC_MESSAGE_SPINS: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "spore_alloc") (param i32) (result i32) i32.const 1024)
  (func (export "spore_panic_message") (result i64)
    (loop $forever (br $forever))
    (i64.const 0))
  (func (export "boom") (param i32 i32) (result i64)
    unreachable))"#;

#[test]
fn asking_for_a_panic_message_stays_within_the_calls_deadline() {
    let fixture = fixture_of(PANIC_MESSAGE_SPINS);
    let limits = Limits {
        deadline: Duration::from_millis(500),
        ..Limits::default()
    };
    let started = Instant::now();
    let result = fixture.call("boom", &limits);
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(InvokeError::Trap { .. })),
        "{result:?}"
    );
    assert!(
        elapsed < Duration::from_millis(800),
        "the trap was reported after {elapsed:?}, past the call's 500 ms"
    );
}

/// Deadlines read the clock: late epoch ticks on a busy machine must not stretch them
/// (5 ms ticks counted stretched a 5 s deadline to 7.2 s with both cores busy).
#[test]
fn a_deadline_holds_while_every_core_is_busy() {
    let fixture = fixture();
    let limits = Limits {
        deadline: Duration::from_secs(2),
        ..Limits::default()
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let burners: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            })
        })
        .collect();
    let started = Instant::now();
    let result = fixture.call("spin", &limits);
    let elapsed = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for burner in burners {
        burner.join().unwrap();
    }
    assert!(
        matches!(result, Err(InvokeError::Timeout { .. })),
        "{result:?}"
    );
    // docs/configuration.md: a deadline ends a call within one epoch tick (5 ms) plus
    // scheduling; 10 % of the deadline leaves room for a loaded CI machine.
    assert!(
        elapsed < limits.deadline + Duration::from_millis(200),
        "a 2 s deadline ended after {elapsed:?}"
    );
}
