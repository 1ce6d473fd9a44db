// The guest side of spec/abi.md: the exports the host needs (`spore_alloc`,
// `spore_panic_message`), reading the argument array, and the reply buffer (status byte
// then one CBOR item) returned as a packed pointer. The code that `@spore` functions
// expand to (transform/spore.mjs) calls `Args` and the `reply*` functions below.

import { ByteWriter } from "./buffer";
import { fromValue, toValue, zero } from "./convert";
import { decodeAt } from "./decode";
import { write } from "./encode";
import { Result } from "./result";
import { Kind, Value } from "./value";

export const STATUS_OK: u8 = 0x00;
export const STATUS_ERROR: u8 = 0x01;
export const STATUS_BAD_ARGUMENTS: u8 = 0x02;

/**
 * Returns `len` fresh bytes for the host to write into. Built with `--runtime stub`,
 * nothing is ever freed: every call runs in a fresh instance (spec/abi.md), so a bump
 * allocator is all a call needs, and no collector can move or reclaim a buffer the host
 * still reads.
 */
export function spore_alloc(len: i32): i32 {
  return <i32>heap.alloc(<usize>len);
}

let panicMessage: Uint8Array | null = null;
let panicking = false;

/** The message of the abort that trapped this instance, packed, or 0. */
export function spore_panic_message(): i64 {
  const message = panicMessage;
  return message === null ? 0 : pack(message.dataStart, message.length);
}

/**
 * AssemblyScript's `abort` (a failed `assert`, an out-of-bounds index, ...), bound by
 * `--use abort=sporeAbort` instead of the default `env.abort` import, which a spore
 * host refuses. Keeps the message for `spore_panic_message`, then traps.
 */
// @ts-ignore: decorator
@global export function sporeAbort(
  message: string | null,
  file: string | null,
  line: u32,
  column: u32,
): void {
  if (!panicking) {
    panicking = true; // an abort while building the message must not recurse
    let text = message === null ? "abort" : message;
    if (file !== null) text += ` (at ${file}:${line}:${column})`;
    panicMessage = Uint8Array.wrap(String.UTF8.encode(text));
  }
  unreachable();
}

/** `(ptr << 32) | len`, both unsigned. */
export function pack(ptr: usize, len: i32): i64 {
  return <i64>((<u64>ptr << 32) | <u64>(<u32>len));
}

/** A reply buffer: `status` then the canonical encoding of `value`, packed. */
export function replyValue(status: u8, value: Value): i64 {
  const out = new ByteWriter();
  out.byte(status);
  write(out, value);
  const bytes = out.finish();
  return pack(bytes.dataStart, bytes.length);
}

/** The reply of a function that returned `result`. */
export function reply<R>(result: R): i64 {
  return replyValue(STATUS_OK, toValue<R>(result));
}

/** The reply of a function that returned a `Result`: an error is status 0x01. */
export function replyResult<T, E>(result: Result<T, E>): i64 {
  if (result.isOk) return replyValue(STATUS_OK, toValue<T>(result.value));
  return replyValue(STATUS_ERROR, toValue<E>(result.error));
}

/** The reply of a function that returns nothing: null. */
export function replyNull(): i64 {
  return replyValue(STATUS_OK, Value.null());
}

/**
 * The arguments of one call, read from the buffer the host wrote, handed out in order
 * as the parameters' types. The first problem (not an array, wrong count, a value that
 * does not fit its parameter) is kept for `refusal()`, status 0x02.
 */
export class Args {
  private values: Array<Value> = [];
  private position: i32 = 0;
  failure: string | null = null;

  constructor(
    ptr: i32,
    len: i32,
    private fn: string,
    private params: Array<string>,
  ) {
    this.failure = this.read(ptr, len);
  }

  /** Takes the argument array, or says why it is not one that fits. */
  private read(ptr: i32, len: i32): string | null {
    const decoded = decodeAt(<usize>ptr, len);
    const value = decoded.value;
    if (value === null) {
      return `the arguments of \`${this.fn}\` are not a CBOR value: ${decoded.error!.message}`;
    }
    const items = value.items;
    if (value.kind != Kind.Array || items === null) {
      return `the arguments of \`${this.fn}\` are not a CBOR array`;
    }
    const arity = this.params.length;
    if (items.length != arity) {
      const plural = arity == 1 ? "" : "s";
      return `\`${this.fn}\` takes ${arity} argument${plural}, got ${items.length}`;
    }
    this.values = items;
    return null;
  }

  /** The next argument as a `T`; after a failure, a zero the function never sees. */
  take<T>(): T {
    const position = this.position++;
    if (this.failure !== null) return zero<T>();
    const converted = fromValue<T>(this.values[position]);
    if (!converted.ok) {
      const param = this.params[position];
      this.failure = `argument ${position + 1} (\`${param}\`) of \`${this.fn}\`: ${converted.reason}`;
    }
    return converted.value;
  }

  get failed(): bool {
    return this.failure !== null;
  }

  /** The reply saying why the arguments do not fit the function. */
  refusal(): i64 {
    return replyValue(STATUS_BAD_ARGUMENTS, Value.str(this.failure!));
  }
}
