//! Both tiers give the same bits: every function of the codebase test programs, and
//! float operations on NaNs with payloads, run once on Winch's baseline code and once on
//! Cranelift's optimized code, and the results (or the errors) are compared byte for byte.
//! Pure functions are memoized and may run on any node, on either tier.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ciborium::Value;
use spore_core::{Args, FunctionRef, Manifest, Tier, value};
use spore_runtime::{
    AbilityContext, AbilityError, Bindings, CallEnv, InvokeError, Limits, Provider, Runtime,
    RuntimeConfig, Tiering,
};
use spore_store::Codebase;

/// The arguments each function of `codebase/` is called with, as JSON arrays: every
/// function must have an entry, so that a function added later is compared too.
const ARGUMENTS: &[(&str, &[&str])] = &[
    ("arith.add", &["[2, 3]", "[9223372036854775807, 1]"]),
    ("arith.sub", &["[2, 3]", "[-9223372036854775807, 5]"]),
    ("arith.mul", &["[-4, 5]", "[4611686018427387904, 4]"]),
    (
        "arith.div",
        &["[17, 5]", "[1, 0]", "[-9223372036854775807, -1]"],
    ),
    ("arith.sum", &["[[]]", "[[1, 2, 3, -10]]"]),
    (
        "words.frequencies",
        &[r#"["The cat saw the other cat. THE END"]"#],
    ),
    ("words.top", &[r#"["a b b c c c", 2]"#]),
    (
        "markdown.render",
        &[
            r##"["# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~ - [x] *done* [l](https://x.org)"]"##,
        ],
    ),
    (
        "reshape.summarize_orders",
        &[
            r#"[[{"customer": {"id": 2, "name": "Bo", "address": {"city": "Oslo"}}, "items": [{"sku": "pen", "qty": 3, "price_cents": 150}]}]]"#,
        ],
    ),
    (
        "reshape.flatten",
        &[r#"[{"a": {"b": [1, 2.5, {"c": null}]}, "d": "e"}]"#],
    ),
    ("cpu.sha256", &["[1]"]),
    ("cpu.mandelbrot", &["[64, 48, 200]", "[16, 16, 5000]"]),
    ("faults.spin", &["[]"]),
    ("faults.hog", &["[1]", "[200]"]),
    ("faults.recurse", &["[100]", "[100000000]"]),
    ("faults.boom", &[r#"["kaboom"]"#]),
    ("faults.fail", &[r#"["no"]"#]),
    ("faults.echo", &[r#"[{"x": [1.5, -0.0, 1e300]}]"#]),
    ("visits.hit", &[r#"["/"]"#]),
    ("visits.count", &[r#"["/"]"#]),
    ("visits.key", &[r#"["/about"]"#]),
    ("visits.stamp", &[r#"["k"]"#]),
    ("title.fetch_title", &[r#"["https://example.org"]"#]),
    ("caller.call_twice", &[r#"["caller.pure_square", 3]"#]),
    ("caller.depth", &[r#"["caller.depth", 2]"#]),
    ("caller.pure_square", &["[-12]"]),
    ("sensors.read", &[r#"["t1"]"#]),
    ("sensors.log_reading", &[r#"["t1"]"#]),
    ("telemetry.store", &[r#"["k", {"v": 1.25}]"#]),
    ("telemetry.load", &[r#"["k"]"#]),
    (
        "telemetry.collect",
        &[r#"["sensors.read", "telemetry.store", "t1", "k"]"#],
    ),
    ("webfront.echo", &[HTTP_REQUEST]),
    ("webfront.hello", &[HTTP_REQUEST]),
    ("webfront.teapot", &[HTTP_REQUEST]),
    ("webfront.broken", &[HTTP_REQUEST]),
    ("webfront.stall", &[HTTP_REQUEST]),
    ("webfront.hits", &[HTTP_REQUEST]),
    ("links.shorten", &[r#"["https://example.org/a/long/path"]"#]),
    ("links.follow", &[HTTP_REQUEST]),
    ("links.stats", &[r#"["abc"]"#]),
    ("links.on_created", &[DELIVERY]),
    ("links.recent", &["[]"]),
    ("links.expire", &["[30]"]),
    ("topics.announce", &[r#"["news", {"n": 1}]"#]),
    ("topics.remember", &[DELIVERY]),
    ("topics.accept", &[DELIVERY]),
    ("topics.flaky", &[DELIVERY]),
    ("topics.refuse", &[DELIVERY]),
    ("topics.stall_first", &[DELIVERY]),
    ("topics.seen", &["[]"]),
    ("kvprefix.get", &[r#"[{"key": "a"}]"#]),
    ("kvprefix.put", &[r#"[{"key": "a", "value": 1}]"#]),
    ("kvprefix.delete", &[r#"[{"key": "a"}]"#]),
    ("kvprefix.list", &[r#"[{"prefix": "a", "limit": 3}]"#]),
    (
        "kvprefix.cas",
        &[r#"[{"key": "a", "expected": null, "new": 2}]"#],
    ),
];

const HTTP_REQUEST: &str = r#"[{"method": "GET", "path": "/x?y=1", "params": {"id": "abc"}, "query": {"y": "1"}, "headers": {"accept": "text/html"}}]"#;
const DELIVERY: &str = r#"[{"topic": "news", "message": {"url": "https://e.org", "id": "abc", "created_ms": 5, "visits": 0}, "delivery": 1, "id": "m1"}]"#;

/// Answers every ability operation with a fixed value (and `kv` from a map), so that both
/// tiers see the same world. The answers need not make sense to every function: a
/// function that fails on them must fail the same way on both tiers.
#[derive(Default)]
struct Scripted {
    kv: Mutex<BTreeMap<String, Value>>,
}

impl Provider for Scripted {
    fn call(
        &self,
        _: &AbilityContext,
        operation: &str,
        request: Value,
    ) -> Result<Value, AbilityError> {
        let text = |s: &str| Value::Text(s.into());
        let key = field(&request, "key").and_then(|key| key.as_text().map(str::to_owned));
        let mut kv = self.kv.lock().unwrap();
        Ok(match operation {
            "get" => key
                .and_then(|key| kv.get(&key).cloned())
                .unwrap_or(Value::Null),
            "put" => {
                let value = field(&request, "value").cloned().unwrap_or(Value::Null);
                kv.insert(key.unwrap_or_default(), value);
                Value::Null
            }
            "cas" | "delete" => Value::Bool(true),
            "list" => Value::Array(kv.keys().map(|key| text(key)).collect()),
            "now" => Value::Integer(1_700_000_000_000u64.into()),
            "bytes" => Value::Bytes(vec![7; 16]),
            "request" => Value::Map(vec![
                (text("status"), Value::Integer(200.into())),
                (text("headers"), Value::Map(vec![])),
                (
                    text("body"),
                    Value::Bytes(b"<html><title>Spore</title></html>".to_vec()),
                ),
            ]),
            "read" => Value::Map(vec![
                (text("id"), text("t1")),
                (text("value"), Value::Float(21.5)),
                (text("unit"), text("C")),
            ]),
            "invoke" => Value::Integer(9.into()),
            _ => Value::Null,
        })
    }

    fn describe(&self) -> String {
        "the test's scripted world".into()
    }
}

fn field<'v>(map: &'v Value, name: &str) -> Option<&'v Value> {
    map.as_map()?
        .iter()
        .find(|(key, _)| key.as_text() == Some(name))
        .map(|(_, value)| value)
}

fn env(manifest: &Manifest) -> CallEnv {
    let mut bindings = Bindings::new("the test's bindings");
    let world: Arc<dyn Provider> = Arc::new(Scripted::default());
    for ability in manifest.abilities() {
        bindings.bind(ability, world.clone());
    }
    CallEnv {
        bindings: Arc::new(bindings),
        ..CallEnv::default()
    }
}

/// A baseline-only and an optimized-only runtime over one codebase.
fn runtimes(dir: &tempfile::TempDir) -> (Runtime, Runtime) {
    let codebase = Codebase::open(dir.path()).unwrap();
    let runtime = |tiering| {
        let config = RuntimeConfig {
            tiering,
            ..RuntimeConfig::default()
        };
        Runtime::new(codebase.clone(), config).unwrap()
    };
    (
        runtime(Tiering::BaselineOnly),
        runtime(Tiering::OptimizedOnly),
    )
}

/// A call's outcome as bytes: the CBOR of the result, or the error's kind and what it
/// carries that the code decides (a guest's error value, a trap's reason and panic).
fn outcome(result: Result<spore_runtime::Invocation, InvokeError>, tier: Tier) -> Vec<u8> {
    let mut bytes = Vec::new();
    match result {
        Ok(invocation) => {
            assert_eq!(
                invocation.stats.tier, tier,
                "the call ran on the wrong tier"
            );
            ciborium::into_writer(&invocation.value, &mut bytes).unwrap();
        }
        Err(InvokeError::Guest { error, .. }) => {
            bytes.extend_from_slice(b"guest error ");
            ciborium::into_writer(&error, &mut bytes).unwrap();
        }
        Err(InvokeError::Trap { reason, detail, .. }) => {
            bytes.extend_from_slice(format!("trap {reason} {:?}", detail.panic).as_bytes());
        }
        Err(other) => bytes.extend_from_slice(format!("{:?}", other.kind()).as_bytes()),
    }
    bytes
}

/// Runs `function` with every argument list on a baseline-only and an optimized-only
/// runtime, and asserts the outcomes are the same bytes.
fn compare(
    baseline: &Runtime,
    optimized: &Runtime,
    manifest: &Manifest,
    name: &str,
    args: &[&str],
) {
    let export = name.split_once('.').unwrap().1;
    let function = FunctionRef::new(manifest.module, export.parse().unwrap());
    // Fresh worlds, one per tier, so that `kv` holds the same on both.
    let (env_b, env_o) = (env(manifest), env(manifest));
    for json in args {
        let args: Vec<Value> = match value::from_json(&serde_json::from_str(json).unwrap()) {
            Ok(Value::Array(args)) => args,
            other => panic!("{name}: arguments {json} are not an array: {other:?}"),
        };
        let limits = Limits {
            deadline: Duration::from_millis(500),
            ..Limits::default()
        };
        let request = limits.request(function.clone(), Args::encode(&args).unwrap());
        let on_baseline = outcome(baseline.invoke(&request, &env_b), Tier::Baseline);
        let request = limits.request(function.clone(), Args::encode(&args).unwrap());
        let on_optimized = outcome(optimized.invoke(&request, &env_o), Tier::Optimized);
        assert_eq!(
            String::from_utf8_lossy(&on_baseline),
            String::from_utf8_lossy(&on_optimized),
            "{name}({json}) differs between the tiers"
        );
        assert_eq!(
            on_baseline, on_optimized,
            "{name}({json}) differs between the tiers"
        );
    }
}

#[test]
fn every_codebase_function_gives_the_same_result_on_both_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let (baseline, optimized) = runtimes(&dir);
    let mut compared = 0;
    for (module, _) in spore_test_programs::ALL {
        let bytes = spore_test_programs::bytes(module);
        let manifest = Manifest::derive(&bytes).unwrap();
        baseline.codebase().put_module(&bytes, &manifest).unwrap();
        // Compiled ahead, so that a compile does not eat the calls' short deadlines.
        for runtime in [&baseline, &optimized] {
            runtime.precompile(&manifest.module).unwrap();
        }
        for export in manifest.function_names() {
            let name = format!("{module}.{export}");
            let Some((_, args)) = ARGUMENTS.iter().find(|(known, _)| *known == name) else {
                panic!("{name} has no arguments in ARGUMENTS: add some");
            };
            compare(&baseline, &optimized, &manifest, &name, args);
            compared += 1;
        }
    }
    assert_eq!(
        compared,
        ARGUMENTS.len(),
        "ARGUMENTS names a function no module has"
    );
}

/// A quiet NaN with a payload and the sign set, in memory so that no compiler folds it.
const NAN_MODULE_HEAD: &str = r#"(memory (export "memory") 1)
    (data (i32.const 0) "\01\00\c0\ff\00\00\00\00\01\00\00\00\00\00\f8\ff")
    (data (i32.const 16) "\00\48")
    (func (export "spore_alloc") (param i32) (result i32) i32.const 1024)
    (func $bits (param i64) (result i64)
      (i64.store (i32.const 18) (local.get 0))
      i64.const 68719476746)
    (func $f32 (result f32) (f32.load (i32.const 0)))
    (func $f64 (result f64) (f64.load (i32.const 8)))"#;

/// Float operations on a NaN with a payload, each an export returning the result's bits:
/// `(name, expression, canonicalized)`. Arithmetic must give the canonical NaN; the
/// bitwise operations (`neg`, `abs`, `copysign`) keep the payload on both tiers.
const NAN_OPERATIONS: &[(&str, &str, bool)] = &[
    ("f32_add", "(f32.add (call $f32) (f32.const 1))", true),
    ("f32_sub", "(f32.sub (f32.const 1) (call $f32))", true),
    ("f32_mul", "(f32.mul (call $f32) (f32.const 2))", true),
    ("f32_div", "(f32.div (call $f32) (f32.const 3))", true),
    (
        "f32_div_zero",
        "(f32.div (f32.const 0) (f32.sub (call $f32) (call $f32)))",
        true,
    ),
    ("f32_sqrt", "(f32.sqrt (call $f32))", true),
    ("f32_sqrt_negative", "(f32.sqrt (f32.const -1))", true),
    ("f32_min", "(f32.min (call $f32) (f32.const 1))", true),
    ("f32_max", "(f32.max (f32.const 1) (call $f32))", true),
    ("f32_ceil", "(f32.ceil (call $f32))", true),
    ("f32_floor", "(f32.floor (call $f32))", true),
    ("f32_trunc", "(f32.trunc (call $f32))", true),
    ("f32_nearest", "(f32.nearest (call $f32))", true),
    ("f32_demote", "(f32.demote_f64 (call $f64))", true),
    ("f32_neg", "(f32.neg (call $f32))", false),
    ("f32_abs", "(f32.abs (call $f32))", false),
    (
        "f32_copysign",
        "(f32.copysign (call $f32) (f32.const 1))",
        false,
    ),
    ("f64_add", "(f64.add (call $f64) (f64.const 1))", true),
    ("f64_sub", "(f64.sub (f64.const 1) (call $f64))", true),
    ("f64_mul", "(f64.mul (call $f64) (f64.const 2))", true),
    ("f64_div", "(f64.div (call $f64) (f64.const 3))", true),
    (
        "f64_inf_minus_inf",
        "(f64.sub (f64.const inf) (f64.const inf))",
        true,
    ),
    ("f64_sqrt", "(f64.sqrt (call $f64))", true),
    ("f64_min", "(f64.min (call $f64) (f64.const 1))", true),
    ("f64_max", "(f64.max (f64.const 1) (call $f64))", true),
    ("f64_ceil", "(f64.ceil (call $f64))", true),
    ("f64_floor", "(f64.floor (call $f64))", true),
    ("f64_trunc", "(f64.trunc (call $f64))", true),
    ("f64_nearest", "(f64.nearest (call $f64))", true),
    ("f64_promote", "(f64.promote_f32 (call $f32))", true),
    ("f64_neg", "(f64.neg (call $f64))", false),
    ("f64_abs", "(f64.abs (call $f64))", false),
    (
        "f64_copysign",
        "(f64.copysign (call $f64) (f64.const 1))",
        false,
    ),
];

fn nan_module() -> Vec<u8> {
    let mut functions = String::new();
    for (name, expression, _) in NAN_OPERATIONS {
        let bits = if name.starts_with("f32") {
            format!("(i64.extend_i32_u (i32.reinterpret_f32 {expression}))")
        } else {
            format!("(i64.reinterpret_f64 {expression})")
        };
        functions += &format!(
            "(func (export \"{name}\") (param i32 i32) (result i64) (call $bits {bits}))\n"
        );
    }
    wat::parse_str(format!("(module {NAN_MODULE_HEAD} {functions})")).unwrap()
}

fn nan_bits(runtime: &Runtime, function: &FunctionRef, tier: Tier) -> u64 {
    let request = Limits::default().request(function.clone(), Args::encode(&[]).unwrap());
    let invocation = runtime.invoke(&request, &CallEnv::default()).unwrap();
    assert_eq!(invocation.stats.tier, tier);
    match invocation.value {
        Value::Bytes(bytes) => u64::from_le_bytes(bytes.try_into().unwrap()),
        other => panic!("{function} returned {other:?}"),
    }
}

#[test]
fn nans_have_the_same_bits_on_both_tiers_and_arithmetic_makes_them_canonical() {
    let dir = tempfile::tempdir().unwrap();
    let (baseline, optimized) = runtimes(&dir);
    let bytes = nan_module();
    let manifest = Manifest::derive(&bytes).unwrap();
    baseline.codebase().put_module(&bytes, &manifest).unwrap();
    for (name, _, canonical) in NAN_OPERATIONS {
        let function = FunctionRef::new(manifest.module, name.parse().unwrap());
        let on_baseline = nan_bits(&baseline, &function, Tier::Baseline);
        let on_optimized = nan_bits(&optimized, &function, Tier::Optimized);
        assert_eq!(
            on_baseline, on_optimized,
            "{name}: Winch gave {on_baseline:#x}, Cranelift {on_optimized:#x}"
        );
        if *canonical {
            let expected = if name.starts_with("f32") {
                0x7fc0_0000
            } else {
                0x7ff8_0000_0000_0000
            };
            assert_eq!(on_baseline, expected, "{name} gave a non-canonical NaN");
        }
    }
}
