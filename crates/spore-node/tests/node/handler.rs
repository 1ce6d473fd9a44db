//! Wasm handlers: a function module serving an ability's operations.

use ciborium::Value;
use spore_core::ErrorKind;

use crate::common::*;

/// Serves `store.get` by returning the error value `{"kind": "not_found"}`: a kind and no
/// message.
const HANDLER: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "spore_alloc") (param i32) (result i32) i32.const 1024)
  (data (i32.const 16) "\01\a1\64kind\69not_found")
  (func (export "get") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 17))))"#;

/// Calls `store.get` and returns its response buffer as its own result, so a failed
/// operation becomes this function's error value: the ability error itself.
const RELAY: &str = r#"(module
  (import "store" "get" (func $get (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (func (export "spore_alloc") (param $len i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (local.get $at))
  (func (export "relay") (param i32 i32) (result i64)
    (call $get (local.get 0) (local.get 1))))"#;

fn field<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

#[test]
fn a_handler_error_with_a_kind_but_no_message_is_failed_as_the_spec_says() {
    let declare = "[abilities.store]\noperations = [\"get\"]\n";
    let first = TestNode::open(&defaults_and(declare));
    let handler = first.publish_bytes(&wat(HANDLER));
    let relay = first.publish_bytes(&wat(RELAY));
    let node = first.reopen(&defaults_and(&format!(
        "[abilities.store]\noperations = [\"get\"]\nprovider = \"handler\"\nfunction = \"{handler}\"\n"
    )));
    let error = node
        .call(node.request(relay, "relay", &[Value::Null]))
        .result
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::GuestError, "{error}");
    let ability_error = error.to_failure().value.expect("the relayed ability error");
    assert_eq!(
        field(&ability_error, "kind").and_then(Value::as_text),
        Some("failed"),
        "{ability_error:?}"
    );
    // The handler's own error travels along as the value.
    let value = field(&ability_error, "value").expect("the handler's error value");
    assert_eq!(
        field(value, "kind").and_then(Value::as_text),
        Some("not_found")
    );
}
