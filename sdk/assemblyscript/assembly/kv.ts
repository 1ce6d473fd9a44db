// The `kv` ability: a key-value store, one namespace per binding. Keys are text of 1 to
// 1024 bytes; values are any spore value. A stored null reads back as absent.

import { AbilityError, invoke, invokeAs } from "./ability";
import { Result } from "./result";
import { Value } from "./value";

// @ts-ignore: decorator
@external("kv", "get") declare function kv_get(ptr: i32, len: i32): i64;
// @ts-ignore: decorator
@external("kv", "put") declare function kv_put(ptr: i32, len: i32): i64;
// @ts-ignore: decorator
@external("kv", "delete") declare function kv_delete(ptr: i32, len: i32): i64;
// @ts-ignore: decorator
@external("kv", "list") declare function kv_list(ptr: i32, len: i32): i64;
// @ts-ignore: decorator
@external("kv", "cas") declare function kv_cas(ptr: i32, len: i32): i64;

function keyed(key: string): Value {
  return Value.map().set("key", Value.str(key));
}

/** The value stored under `key`: a null value when there is none. */
export function get(key: string): Result<Value, AbilityError> {
  return invoke(kv_get, keyed(key));
}

/** Stores `value` under `key`, replacing what was there. */
export function put(key: string, value: Value): Result<Value, AbilityError> {
  return invoke(kv_put, keyed(key).set("value", value));
}

/** Removes `key`; whether it existed. */
export function del(key: string): Result<bool, AbilityError> {
  return invokeAs<bool>(kv_delete, keyed(key));
}

/** The keys starting with `prefix`, in byte order: at most `limit` (the host's default, 1000, when negative). */
export function list(prefix: string, limit: i32 = -1): Result<Array<string>, AbilityError> {
  const request = Value.map().set("prefix", Value.str(prefix));
  if (limit >= 0) request.set("limit", Value.uint(<u64>limit));
  return invokeAs<Array<string>>(kv_list, request);
}

/**
 * Compare-and-swap: sets `key` to `next` only if its value is `expected`, and says
 * whether it did. A null `expected` means absent; a null `next` deletes. Values compare
 * by canonical encoding: the integer 1 is not the float 1.0.
 */
export function cas(key: string, expected: Value, next: Value): Result<bool, AbilityError> {
  return invokeAs<bool>(kv_cas, keyed(key).set("expected", expected).set("new", next));
}
