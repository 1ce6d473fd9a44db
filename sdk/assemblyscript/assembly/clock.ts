// The `clock` ability: wall-clock time.

import { AbilityError, invokeAs } from "./ability";
import { Result } from "./result";
import { Value } from "./value";

// @ts-ignore: decorator
@external("clock", "now") declare function clock_now(ptr: i32, len: i32): i64;

/** The node's wall-clock time, in milliseconds since the Unix epoch. */
export function now(): Result<u64, AbilityError> {
  return invokeAs<u64>(clock_now, Value.null());
}
