// Calling other functions through the `call` ability, as codebase/caller in Rust. The
// functions called are passed in by reference (`<hash>:add`, a name), never written into
// the code: a module's hash depends on its code.

import { AbilityError, Result, Value, call, kind } from "spore-sdk";

/** `fn(fn(x, x), x)`: with an `add`, `3 * x`. */
@spore
export function call_twice(fn: string, x: i64): Result<i64, string> {
  const first = callInt(fn, x, x);
  if (first.isErr) return first;
  return callInt(fn, first.value, x);
}

function callInt(fn: string, a: i64, b: i64): Result<i64, string> {
  const result = call.invoke(fn, [Value.int(a), Value.int(b)]);
  if (result.isErr) return Result.err<i64, string>(failed(fn, result.error));
  const value = result.value;
  if (!value.isI64()) return Result.err<i64, string>(`${fn} returned something other than an i64`);
  return Result.ok<i64, string>(value.toI64());
}

/** Describes a failed call, with the called function's own error when it returned one. */
function failed(fn: string, error: AbilityError): string {
  const value = error.value;
  if (error.kind == kind.GUEST_ERROR && value !== null) {
    const text = value.asString();
    return `${fn} returned an error: ${text !== null ? text : "a non-text error"}`;
  }
  return `calling ${fn}: ${error.toString()}`;
}

/**
 * Calls `fn` (this very export, passed in by reference) with `(fn, n + 1)` until the
 * node's depth limit stops it, and returns the deepest `n` reached: the innermost call
 * returns its `n` when its own call fails with kind `depth`.
 */
@spore
export function depth(fn: string, n: u64): Result<u64, string> {
  const result = call.invoke(fn, [Value.str(fn), Value.uint(n + 1)]);
  if (result.isOk) {
    if (!result.value.isU64()) return Result.err<u64, string>(`${fn} returned something other than a u64`);
    return Result.ok<u64, string>(result.value.magnitude);
  }
  if (result.error.kind == kind.DEPTH) return Result.ok<u64, string>(n);
  return Result.err<u64, string>(failed(fn, result.error));
}
