//! Ability imports dispatched to providers: requests in, responses and errors out,
//! deny by default, and the effects flag that decides memoization.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use ciborium::Value;
use spore_core::{FunctionRef, Manifest};
use spore_runtime::{
    AbilityContext, AbilityError, Bindings, CallEnv, ErrorKind, InvokeError, Limits, Provider,
    Runtime, RuntimeConfig,
};
use spore_store::Codebase;

/// A module whose `relay` passes its argument array to `echo.say` and returns the
/// provider's response buffer as its own result (the status bytes are the same).
const RELAY: &str = r#"(module
  (import "echo" "say" (func $say (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (func (export "spore_alloc") (param $len i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (local.get $ptr))
  (func (export "relay") (param i32 i32) (result i64)
    (call $say (local.get 0) (local.get 1))))"#;

/// Answers `say` with its request, or fails when the request is `["fail"]`.
struct Echo {
    calls: AtomicU32,
}

impl Provider for Echo {
    fn call(
        &self,
        cx: &AbilityContext,
        operation: &str,
        request: Value,
    ) -> Result<Value, AbilityError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        assert_eq!(operation, "say");
        assert!(cx.remaining() > std::time::Duration::ZERO);
        if request == Value::Array(vec![Value::Text("fail".into())]) {
            return Err(AbilityError::new(ErrorKind::NotAllowed, "asked to fail"));
        }
        Ok(request)
    }

    fn describe(&self) -> String {
        "echo".into()
    }
}

fn setup() -> (tempfile::TempDir, Runtime, FunctionRef) {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    let bytes = wat::parse_str(RELAY).unwrap();
    let manifest = Manifest::derive(&bytes).unwrap();
    codebase.put_module(&bytes, &manifest).unwrap();
    let function = FunctionRef::new(manifest.module, "relay".parse().unwrap());
    (
        dir,
        Runtime::new(codebase, RuntimeConfig::default()).unwrap(),
        function,
    )
}

fn call(function: &FunctionRef, args: &[Value]) -> spore_core::CallRequest {
    Limits::default().request(function.clone(), spore_core::Args::encode(args).unwrap())
}

fn env(echo: Arc<Echo>) -> CallEnv {
    let mut bindings = Bindings::new("the test's bindings");
    bindings.bind("echo", echo);
    CallEnv {
        bindings: Arc::new(bindings),
        ..CallEnv::default()
    }
}

#[test]
fn requests_reach_the_provider_and_responses_reach_the_guest() {
    let (_dir, runtime, relay) = setup();
    let echo = Arc::new(Echo {
        calls: AtomicU32::new(0),
    });
    let args = [Value::Integer(1.into()), Value::Text("two".into())];
    let invocation = runtime
        .invoke(&call(&relay, &args), &env(echo.clone()))
        .unwrap();
    assert_eq!(invocation.value, Value::Array(args.to_vec()));
    assert!(
        invocation.effectful,
        "an ability other than `call` makes the call effectful"
    );
    assert_eq!(echo.calls.load(Ordering::Relaxed), 1);
}

#[test]
fn provider_errors_arrive_as_the_spec_error_map() {
    let (_dir, runtime, relay) = setup();
    let echo = Arc::new(Echo {
        calls: AtomicU32::new(0),
    });
    let result = runtime.invoke(&call(&relay, &[Value::Text("fail".into())]), &env(echo));
    match result {
        // The relay returns the response buffer as-is, so status 1 is its guest error.
        Err(InvokeError::Guest { error, .. }) => {
            let map = error.as_map().unwrap();
            let get = |key: &str| {
                map.iter()
                    .find(|(k, _)| k.as_text() == Some(key))
                    .map(|(_, v)| v.clone())
            };
            assert_eq!(get("kind"), Some(Value::Text("not_allowed".into())));
            assert_eq!(get("message"), Some(Value::Text("asked to fail".into())));
        }
        other => panic!("expected the provider's error, got {other:?}"),
    }
}

#[test]
fn unbound_abilities_are_refused_before_instantiation() {
    let (_dir, runtime, relay) = setup();
    let error = runtime
        .invoke(&call(&relay, &[]), &CallEnv::default())
        .unwrap_err();
    match &error {
        InvokeError::UnboundAbilities { missing, .. } => assert_eq!(missing, &["echo"]),
        other => panic!("expected unbound abilities, got {other:?}"),
    }
    assert!(error.to_string().contains("echo"), "{error}");
}
