//! The `kv` provider's bounds, on a real codebase: what one value, one namespace and one
//! call may store.

use std::time::{Duration, Instant};

use ciborium::Value;
use spore_abilities::{KvProvider, KvSettings};
use spore_core::{ErrorKind, FunctionRef, Hash};
use spore_runtime::{AbilityContext, Provider};
use spore_store::Codebase;

fn context(invocation: u64) -> AbilityContext {
    let function = FunctionRef::new(Hash::of(b"caller"), "f".parse().unwrap());
    AbilityContext::new(
        function,
        invocation,
        Instant::now() + Duration::from_secs(10),
        0,
    )
}

fn put(key: &str, text: &str) -> Value {
    Value::Map(vec![
        (Value::Text("key".into()), Value::Text(key.into())),
        (Value::Text("value".into()), Value::Text(text.into())),
    ])
}

fn get(key: &str) -> Value {
    Value::Map(vec![(Value::Text("key".into()), Value::Text(key.into()))])
}

#[test]
fn a_call_that_writes_past_max_call_bytes_is_refused_and_the_next_call_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    let provider = KvProvider::new(
        &codebase,
        KvSettings {
            max_call_bytes: 1000,
            ..Default::default()
        },
    )
    .unwrap();
    let first = context(1);
    let value = "x".repeat(300);
    for n in 0..3 {
        provider
            .call(&first, "put", put(&format!("k{n}"), &value))
            .unwrap();
    }
    let error = provider.call(&first, "put", put("k3", &value)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::TooLarge);
    assert!(error.message.contains("max_call_bytes"), "{error}");
    assert_eq!(
        provider.call(&first, "get", get("k3")).unwrap(),
        Value::Null
    );
    // Another call has a budget of its own.
    provider
        .call(&context(2), "put", put("k3", &value))
        .unwrap();
}

#[test]
fn a_put_over_the_namespace_quota_is_quota_and_keeps_the_old_value() {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    let provider = KvProvider::new(
        &codebase,
        KvSettings {
            max_namespace_bytes: 500,
            ..Default::default()
        },
    )
    .unwrap();
    provider.call(&context(1), "put", put("k", "old")).unwrap();
    let error = provider
        .call(&context(2), "put", put("k", &"x".repeat(600)))
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Quota);
    assert!(error.message.contains("max_namespace_bytes"), "{error}");
    assert_eq!(
        provider.call(&context(3), "get", get("k")).unwrap(),
        Value::Text("old".into())
    );
}
