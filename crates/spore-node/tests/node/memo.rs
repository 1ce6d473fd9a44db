//! What is memoized: pure functions, decided per function, under every limit that can
//! change what they return.

use ciborium::Value;
use spore_core::{CallRequest, ErrorKind, MemoUse};

use crate::common::*;

#[test]
fn a_pure_function_is_memoized_though_its_neighbours_use_kv() {
    let node = TestNode::open(&defaults_and(""));
    let visits = node.publish("visits");
    let key = || {
        node.call(node.request(visits, "key", &[Value::Text("home".into())]))
            .result
            .unwrap()
    };
    let first = key();
    assert_eq!((first.memo, first.effectful), (MemoUse::Stored, false));
    let second = key();
    assert_eq!(second.memo, MemoUse::Hit);
    assert_eq!(second.value, first.value);
}

#[test]
fn a_function_that_reaches_an_ability_is_never_memoized() {
    let node = TestNode::open(&defaults_and(""));
    let visits = node.publish("visits");
    for expected in 1..=2u64 {
        let hit = node
            .call(node.request(visits, "hit", &[Value::Text("home".into())]))
            .result
            .unwrap();
        assert_eq!(hit.value, Value::Integer(expected.into()));
        assert_eq!((hit.memo, hit.effectful), (MemoUse::Skipped, true));
    }
}

/// `grow` asks for 300 pages (18.75 MiB) more and returns what `memory.grow` said.
const GROWS: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "spore_alloc") (param i32) (result i32) i32.const 1024)
  (data (i32.const 16) "\00\01")
  (func (export "grow") (param i32 i32) (result i64)
    (if (i32.eq (memory.grow (i32.const 300)) (i32.const -1))
      (then (i32.store8 (i32.const 17) (i32.const 0x20))))
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 2))))"#;

#[test]
fn growing_past_the_memory_cap_ends_the_call_and_the_memo_never_hides_it() {
    let node = TestNode::open(&defaults_and(""));
    let grows = node.publish_bytes(&wat(GROWS));
    let call = |memory_bytes: u64| {
        node.call(CallRequest {
            memory_bytes,
            ..node.request(grows, "grow", &[])
        })
        .result
    };
    let roomy = call(64 << 20).unwrap();
    assert_eq!(
        (roomy.value, roomy.memo),
        (Value::Integer(1.into()), MemoUse::Stored)
    );
    // Under a smaller cap the same call ends at the cap: it neither returns what a
    // failed `memory.grow` would have led to, nor the result memoized under the larger.
    let error = call(16 << 20).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::MemoryLimit, "{error}");
    assert_eq!(call(64 << 20).unwrap().memo, MemoUse::Hit);
}
