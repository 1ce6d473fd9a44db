// The `random` ability: bytes from the node's operating-system generator.

import { AbilityError, invokeAs } from "./ability";
import { Result } from "./result";
import { Value } from "./value";

// @ts-ignore: decorator
@external("random", "bytes") declare function random_bytes(ptr: i32, len: i32): i64;

/** `n` random bytes; `n` is at most 65536, more fails with `bad_request`. */
export function bytes(n: u32): Result<Uint8Array, AbilityError> {
  return invokeAs<Uint8Array>(random_bytes, Value.uint(n));
}
