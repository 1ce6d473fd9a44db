// Visit counters in the `kv` ability, as codebase/visits in Rust: an increment that
// stays right when many calls run at once, by compare-and-swap.

import { AbilityError, Result, Value, kv } from "spore-sdk";

/** How many times `hit` retries a swap that lost a race before giving up. */
const MAX_ATTEMPTS = 32;

function counterKey(page: string): string {
  return `visits/${page}`;
}

function failed(op: string, key: string, error: AbilityError): Result<u64, string> {
  return Result.err<u64, string>(`${op} ${key}: ${error.toString()}`);
}

/** Counts one visit of `page` and returns the new count. */
@spore
export function hit(page: string): Result<u64, string> {
  const key = counterKey(page);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const current = kv.get(key);
    if (current.isErr) return failed("kv.get", key, current.error);
    const value = current.value;
    if (!value.isNull() && !value.isU64()) return Result.err<u64, string>(`${key} does not hold a count`);
    const count = value.isNull() ? 0 : value.magnitude;
    if (count == u64.MAX_VALUE) return Result.err<u64, string>(`the counter ${key} is full`);
    const swapped = kv.cas(key, value, Value.uint(count + 1));
    if (swapped.isErr) return failed("kv.cas", key, swapped.error);
    if (swapped.value) return Result.ok<u64, string>(count + 1);
  }
  return Result.err<u64, string>(`${key} changed under every one of ${MAX_ATTEMPTS} attempts to increment it`);
}

/** The number of visits of `page` so far. */
@spore
export function count(page: string): Result<u64, string> {
  const key = counterKey(page);
  const current = kv.get(key);
  if (current.isErr) return failed("kv.get", key, current.error);
  return Result.ok<u64, string>(current.value.isU64() ? current.value.magnitude : 0);
}
