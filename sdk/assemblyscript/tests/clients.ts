// A test module for tests/clients.mjs: each built-in client used once, so that the
// requests it sends and the way it reads responses can be checked byte for byte.

import { AbilityError, Result, Value, clock, config, http, kv, random } from "../index";

@spore
export function now(): Result<u64, AbilityError> {
  return clock.now();
}

@spore
export function noise(n: u32): Result<Uint8Array, AbilityError> {
  return random.bytes(n);
}

@spore
export function setting(key: string): Result<Value, AbilityError> {
  return config.get(key);
}

@spore
export function forget(key: string): Result<bool, AbilityError> {
  return kv.del(key);
}

@spore
export function keys(prefix: string, limit: i32): Result<Array<string>, AbilityError> {
  return kv.list(prefix, limit);
}

@spore
export function swap(key: string, expected: Value, next: Value): Result<bool, AbilityError> {
  return kv.cas(key, expected, next);
}

@spore
export function post(url: string, body: string): Result<string, AbilityError> {
  const response = http.request(new http.Request("POST", url).header("content-type", "text/plain").withText(body));
  if (response.isErr) return Result.err<string, AbilityError>(response.error);
  const r = response.value;
  return Result.ok<string, AbilityError>(`${r.status} ${r.isSuccess} ${r.headers.get("x")} ${r.text()}`);
}

@spore
export function fetch(url: string): Result<http.Response, AbilityError> {
  return http.get(url);
}
