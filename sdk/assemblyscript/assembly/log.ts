// The `log` ability: lines in the node's log at four levels. Logging cannot fail from
// the caller's point of view (a function should not fail because a line could not be
// written), so failures are ignored. A module imports only the levels it uses.

import { invoke } from "./ability";
import { Value } from "./value";

// @ts-ignore: decorator
@external("log", "debug") declare function log_debug(ptr: i32, len: i32): i64;
// @ts-ignore: decorator
@external("log", "info") declare function log_info(ptr: i32, len: i32): i64;
// @ts-ignore: decorator
@external("log", "warn") declare function log_warn(ptr: i32, len: i32): i64;
// @ts-ignore: decorator
@external("log", "error") declare function log_error(ptr: i32, len: i32): i64;

export function debug(message: string): void {
  invoke(log_debug, Value.str(message));
}

export function info(message: string): void {
  invoke(log_info, Value.str(message));
}

export function warn(message: string): void {
  invoke(log_warn, Value.str(message));
}

export function error(message: string): void {
  invoke(log_error, Value.str(message));
}
