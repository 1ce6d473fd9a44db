// The spore value (spec/values.md, "Data model"): what arguments, results, errors and
// ability requests are made of. Encoding and decoding live in encode.ts and decode.ts.

import { encode } from "./encode";

export enum Kind {
  Int,
  Float,
  Bytes,
  Text,
  Array,
  Map,
  Tag,
  Bool,
  Null,
}

/** One key and its value in a map. */
export class Entry {
  constructor(public key: Value, public value: Value) {}
}

/**
 * A spore value. Integers cover [-2^64, 2^64-1] as CBOR does: a sign and the CBOR
 * argument (`negative` means the value is -1 - `magnitude`), so no i128 is needed.
 */
export class Value {
  kind: Kind = Kind.Null;
  negative: bool = false;
  magnitude: u64 = 0;
  float: f64 = 0;
  bool: bool = false;
  bytes: Uint8Array | null = null;
  text: string | null = null;
  items: Array<Value> | null = null;
  entries: Array<Entry> | null = null;
  tag: u64 = 0;
  inner: Value | null = null;

  static null(): Value {
    return new Value();
  }

  static boolean(b: bool): Value {
    const v = new Value();
    v.kind = Kind.Bool;
    v.bool = b;
    return v;
  }

  static int(n: i64): Value {
    return n < 0 ? Value.negativeInt(<u64>(-1 - n)) : Value.uint(<u64>n);
  }

  static uint(n: u64): Value {
    const v = new Value();
    v.kind = Kind.Int;
    v.magnitude = n;
    return v;
  }

  /** The integer -1 - `magnitude`: down to -2^64. */
  static negativeInt(magnitude: u64): Value {
    const v = new Value();
    v.kind = Kind.Int;
    v.negative = true;
    v.magnitude = magnitude;
    return v;
  }

  static float64(f: f64): Value {
    const v = new Value();
    v.kind = Kind.Float;
    v.float = f;
    return v;
  }

  static fromBytes(bytes: Uint8Array): Value {
    const v = new Value();
    v.kind = Kind.Bytes;
    v.bytes = bytes;
    return v;
  }

  static str(text: string): Value {
    const v = new Value();
    v.kind = Kind.Text;
    v.text = text;
    return v;
  }

  static array(items: Array<Value> = []): Value {
    const v = new Value();
    v.kind = Kind.Array;
    v.items = items;
    return v;
  }

  /** An empty map; fill it with `set`. */
  static map(): Value {
    const v = new Value();
    v.kind = Kind.Map;
    v.entries = [];
    return v;
  }

  static tagged(tag: u64, inner: Value): Value {
    const v = new Value();
    v.kind = Kind.Tag;
    v.tag = tag;
    v.inner = inner;
    return v;
  }

  isNull(): bool {
    return this.kind == Kind.Null;
  }

  /** Whether this is an integer that fits an i64. */
  isI64(): bool {
    if (this.kind != Kind.Int) return false;
    return this.magnitude <= <u64>i64.MAX_VALUE;
  }

  /** The integer as an i64; check `isI64` first (else the result wraps). */
  toI64(): i64 {
    return this.negative ? -1 - <i64>this.magnitude : <i64>this.magnitude;
  }

  /** Whether this is an integer that fits a u64. */
  isU64(): bool {
    return this.kind == Kind.Int && !this.negative;
  }

  /** Map lookup by text key, or null when absent or when this is not a map. */
  get(key: string): Value | null {
    return this.getValue(Value.str(key));
  }

  /** Map lookup by any key: keys are the same when their canonical encodings are. */
  getValue(key: Value): Value | null {
    const entries = this.entries;
    if (this.kind != Kind.Map || entries === null) return null;
    const wanted = encode(key);
    for (let i = 0; i < entries.length; i++) {
      if (sameBytes(encode(entries[i].key), wanted)) return entries[i].value;
    }
    return null;
  }

  /** Sets `key` (text) in a map, replacing its value if present; returns this map. */
  set(key: string, value: Value): Value {
    return this.setValue(Value.str(key), value);
  }

  /** Sets any key in a map, so a map never holds one key twice; returns this map. */
  setValue(key: Value, value: Value): Value {
    assert(this.kind == Kind.Map, "set on a value that is not a map");
    const entries = this.entries!;
    const wanted = encode(key);
    for (let i = 0; i < entries.length; i++) {
      if (sameBytes(encode(entries[i].key), wanted)) {
        entries[i].value = value;
        return this;
      }
    }
    entries.push(new Entry(key, value));
    return this;
  }

  /** Appends to an array; returns this array. */
  push(item: Value): Value {
    assert(this.kind == Kind.Array, "push on a value that is not an array");
    this.items!.push(item);
    return this;
  }

  /** The text, or null when this is not text. */
  asString(): string | null {
    return this.kind == Kind.Text ? this.text : null;
  }

  /** Same value: the same canonical encoding (so NaN equals NaN, 1 is not 1.0). */
  equals(other: Value): bool {
    return sameBytes(encode(this), encode(other));
  }
}

export function sameBytes(a: Uint8Array, b: Uint8Array): bool {
  if (a.length != b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (unchecked(a[i]) != unchecked(b[i])) return false;
  }
  return true;
}

/** Bytewise lexicographic order, as canonical maps sort their keys. */
export function compareBytes(a: Uint8Array, b: Uint8Array): i32 {
  const n = min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = <i32>unchecked(a[i]) - <i32>unchecked(b[i]);
    if (d != 0) return d;
  }
  return a.length - b.length;
}
