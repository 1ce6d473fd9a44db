// A test module for tests/vectors.mjs: raw exports (not spore functions) that run the
// SDK's CBOR code on bytes and numbers given by the test, so that the vectors of
// spec/vectors/values.json are checked against the code functions are built with.

import { Value, abi, decodeAt, encode } from "../index";

export { spore_alloc } from "../index";

function bytesReply(status: u8, bytes: Uint8Array): i64 {
  const out = new Uint8Array(bytes.length + 1);
  out[0] = status;
  out.set(bytes, 1);
  return abi.pack(out.dataStart, out.length);
}

/** Decodes the input; 0x00 and its canonical encoding, or 0x01 and "kind offset simple". */
export function canonical(ptr: i32, len: i32): i64 {
  const decoded = decodeAt(<usize>ptr, len);
  const value = decoded.value;
  if (value === null) {
    const e = decoded.error!;
    const text = `${e.kind} ${e.offset} ${e.simpleValue}`;
    return bytesReply(1, Uint8Array.wrap(String.UTF8.encode(text)));
  }
  return bytesReply(0, encode(value));
}

/** The canonical encoding of the float `f`. */
export function encodeFloat(f: f64): i64 {
  return bytesReply(0, encode(Value.float64(f)));
}

/** The canonical encoding of the integer -1 - magnitude (negative) or magnitude. */
export function encodeInt(negative: bool, magnitude: u64): i64 {
  return bytesReply(0, encode(negative ? Value.negativeInt(magnitude) : Value.uint(magnitude)));
}

/** A map built with its keys out of order, and one key set twice: canonical order, last value kept. */
export function encodeUnsortedMap(): i64 {
  const map = Value.map()
    .set("b", Value.int(1))
    .set("aa", Value.int(3))
    .set("a", Value.int(2))
    .set("", Value.int(4))
    .set("b", Value.int(5));
  return bytesReply(0, encode(map));
}
