// The `config` ability: values from the `[config]` table of the node's configuration.

import { AbilityError, invoke } from "./ability";
import { Result } from "./result";
import { Value } from "./value";

// @ts-ignore: decorator
@external("config", "get") declare function config_get(ptr: i32, len: i32): i64;

/** The value configured under `key`; a null value when there is none. */
export function get(key: string): Result<Value, AbilityError> {
  return invoke(config_get, Value.map().set("key", Value.str(key)));
}
