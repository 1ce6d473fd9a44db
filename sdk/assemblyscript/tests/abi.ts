// A test module for tests/abi.mjs: @spore functions of every shape the transform
// handles, and functions that reach abilities, run by node with fake providers.

import { AbilityError, Result, Value, ability, call, kv, log } from "../index";

// @ts-ignore: decorator
@external("sensor", "read") declare function sensor_read(ptr: i32, len: i32): i64;

@spore
export function add(a: i64, b: i64): Result<i64, string> {
  const sum = a + b;
  if ((a >= 0) == (b >= 0) && (sum >= 0) != (a >= 0)) {
    return Result.err<i64, string>(`${a} + ${b} overflows a 64-bit integer`);
  }
  return Result.ok<i64, string>(sum);
}

@spore
export function greet(name: string, times: u8): string {
  return name.repeat(times);
}

@spore
export function mean(xs: Array<f64>): f64 {
  let total = 0.0;
  for (let i = 0; i < xs.length; i++) total += xs[i];
  return total / xs.length;
}

@spore
export function echo(v: Value): Value {
  return v;
}

@spore
export function nothing(): void {}

@spore
export function boom(): i32 {
  assert(false, "boom went the function");
  return 0;
}

/** Stores `value` under `key` and reads it back, logging on the way. */
@spore
export function roundtrip(key: string, value: Value): Result<Value, AbilityError> {
  log.info(`storing ${key}`);
  const put = kv.put(key, value);
  if (put.isErr) return Result.err<Value, AbilityError>(put.error);
  return kv.get(key);
}

/** Calls `fn` with (x, x). */
@spore
export function twice(fn: string, x: i64): Result<Value, AbilityError> {
  return call.invoke(fn, [Value.int(x), Value.int(x)]);
}

/** A custom ability. */
@spore
export function sense(id: string): Result<Value, AbilityError> {
  return ability.invoke(sensor_read, Value.str(id));
}
