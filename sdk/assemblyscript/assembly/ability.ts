// Calling ability operations (spec/abi.md, "Ability imports"; spec/abilities.md): an
// operation is an imported `(i32, i32) -> i64` taking one CBOR request and answering a
// status byte and one CBOR item. The built-in clients (log.ts, kv.ts, ...) use `invoke`;
// so does a custom ability:
//
//   @external("sensor", "read")
//   declare function sensor_read(ptr: i32, len: i32): i64;
//
//   const reading = ability.invoke(sensor_read, Value.str("attic"));

import { fromValue } from "./convert";
import { decodeAt } from "./decode";
import { encode } from "./encode";
import { Result } from "./result";
import { Kind, Value } from "./value";

/** The type of every ability operation import. */
export type Operation = (ptr: i32, len: i32) => i64;

/** The stable kinds of ability errors (spec/errors.md), to compare with `kind`. */
export namespace kind {
  export const BAD_REQUEST = "bad_request";
  export const NOT_ALLOWED = "not_allowed";
  export const TOO_LARGE = "too_large";
  export const QUOTA = "quota";
  export const TIMEOUT = "timeout";
  export const UNAVAILABLE = "unavailable";
  export const NOT_FOUND = "not_found";
  export const FAILED = "failed";
  export const GUEST_ERROR = "guest_error";
  export const TRAP = "trap";
  export const DEPTH = "depth";
  /** Never sent by a host: this SDK could not read the response as asked. */
  export const BAD_RESPONSE = "bad_response";
}

/** Why an operation gave no result: the `{kind, message, value?}` map of spec/abilities.md. */
export class AbilityError {
  constructor(
    public kind: string,
    public message: string,
    public value: Value | null = null,
  ) {}

  /** Reads a failure's item leniently, as a guest should see whatever a provider said. */
  static fromValue(item: Value): AbilityError {
    if (item.kind != Kind.Map) {
      return new AbilityError(kind.FAILED, "the operation failed with a non-map error", item);
    }
    const error = new AbilityError(kind.FAILED, "the operation failed without a message");
    const k = item.get("kind");
    if (k !== null && k.kind == Kind.Text) error.kind = k.text!;
    const m = item.get("message");
    if (m !== null && m.kind == Kind.Text) error.message = m.text!;
    error.value = item.get("value");
    return error;
  }

  /** The map, so a function can return it as its error and its caller sees the same. */
  toValue(): Value {
    const map = Value.map().set("kind", Value.str(this.kind)).set("message", Value.str(this.message));
    const value = this.value;
    if (value !== null) map.set("value", value);
    return map;
  }

  toString(): string {
    return `${this.kind}: ${this.message}`;
  }
}

/** Sends `request` to `operation` and reads its response. */
export function invoke(operation: Operation, request: Value): Result<Value, AbilityError> {
  const bytes = encode(request);
  const packed = <u64>operation(<i32>bytes.dataStart, bytes.length);
  return parseResponse(<usize>(packed >> 32), <i32>(packed & 0xffffffff));
}

/** `invoke`, its result read as a `T` (a mismatch is kind `bad_response`). */
export function invokeAs<T>(operation: Operation, request: Value): Result<T, AbilityError> {
  const response = invoke(operation, request);
  if (!response.isOk) return Result.err<T, AbilityError>(response.error);
  const converted = fromValue<T>(response.value);
  if (!converted.ok) {
    return Result.err<T, AbilityError>(
      new AbilityError(kind.BAD_RESPONSE, `unexpected result: ${converted.reason}`),
    );
  }
  return Result.ok<T, AbilityError>(converted.value);
}

/** Interprets a response buffer: status byte then exactly one CBOR item. */
export function parseResponse(ptr: usize, len: i32): Result<Value, AbilityError> {
  if (len <= 0) return badResponse("the response is empty");
  const decoded = decodeAt(ptr + 1, len - 1);
  const item = decoded.value;
  if (item === null) return badResponse(`the response is not one CBOR item: ${decoded.error!.message}`);
  const status = load<u8>(ptr);
  if (status == 0) return Result.ok<Value, AbilityError>(item);
  if (status == 1) return Result.err<Value, AbilityError>(AbilityError.fromValue(item));
  return badResponse(`unknown response status 0x${status.toString(16)}`);
}

function badResponse(message: string): Result<Value, AbilityError> {
  return Result.err<Value, AbilityError>(new AbilityError(kind.BAD_RESPONSE, message));
}
