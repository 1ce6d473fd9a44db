// The `call` ability: calling another spore function by reference (a module hash,
// `hash:export` or a name). The called function's own error arrives as kind
// `guest_error` with the error as `value`; past the node's depth limit, kind `depth`.

import { AbilityError, invoke as invokeOperation } from "./ability";
import { Result } from "./result";
import { Value } from "./value";

// @ts-ignore: decorator
@external("call", "invoke") declare function call_invoke(ptr: i32, len: i32): i64;

/** Calls `fn` with `args`, one per parameter; its result. */
export function invoke(fn: string, args: Array<Value>): Result<Value, AbilityError> {
  const request = Value.map().set("function", Value.str(fn)).set("args", Value.array(args));
  return invokeOperation(call_invoke, request);
}
