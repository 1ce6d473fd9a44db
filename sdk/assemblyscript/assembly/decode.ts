// Reading CBOR into spore values (spec/values.md, "Data model"): any well-formed
// encoding is accepted; anything outside the data model is refused with what is wrong
// and its byte offset, as spore's host refuses it (spec/vectors/values.json, "refused").

import { encode } from "./encode";
import { halfToF64 } from "./half";
import { validUtf8 } from "./utf8";
import { Entry, Value, compareBytes } from "./value";

/** Arrays, maps and tags nest at most this deep. */
export const MAX_DEPTH = 128;

/** Why bytes are not one spore value. `kind` is the name spec/vectors/values.json uses. */
export class DecodeError {
  constructor(
    public kind: string,
    public offset: i32,
    public message: string,
    public simpleValue: i32 = -1,
  ) {}
}

/** The value, or the error when the bytes are not exactly one spore value. */
export class Decoded {
  constructor(
    public value: Value | null,
    public error: DecodeError | null,
  ) {}
}

/** Decodes exactly one spore value from `bytes`. */
export function decode(bytes: Uint8Array): Decoded {
  const reader = new Reader(bytes.dataStart, bytes.length);
  return reader.one();
}

/** Decodes exactly one spore value from the `len` bytes at `ptr`. */
export function decodeAt(ptr: usize, len: i32): Decoded {
  return new Reader(ptr, len).one();
}

class Reader {
  pos: i32 = 0;
  error: DecodeError | null = null;
  // The first map with a key twice: reported only when nothing else is wrong with the
  // bytes (spec/values.md), as the host's decoder does.
  duplicate: DecodeError | null = null;
  // The last head read.
  major: u8 = 0;
  info: u8 = 0;
  arg: u64 = 0;

  constructor(
    private ptr: usize,
    private len: i32,
  ) {}

  one(): Decoded {
    const value = this.item(0);
    if (value === null) return new Decoded(null, this.error);
    if (this.pos < this.len) {
      const count = this.len - this.pos;
      return new Decoded(
        null,
        new DecodeError(
          "trailing_bytes",
          this.pos,
          `${count} unexpected bytes after the CBOR item, from byte ${this.pos}`,
        ),
      );
    }
    if (this.duplicate !== null) return new Decoded(null, this.duplicate);
    return new Decoded(value, null);
  }

  private fail(kind: string, offset: i32, message: string, simple: i32 = -1): Value | null {
    if (this.error === null) this.error = new DecodeError(kind, offset, message, simple);
    return null;
  }

  private truncated(offset: i32): Value | null {
    return this.fail("truncated", offset, `the CBOR ends inside the item at byte ${offset}`);
  }

  private malformed(offset: i32, problem: string): Value | null {
    return this.fail("malformed", offset, `malformed CBOR at byte ${offset}: ${problem}`);
  }

  private byteAt(i: i32): u8 {
    return load<u8>(this.ptr + <usize>i);
  }

  /** Reads a head at `pos`; false (with the error set) when it is cut short. */
  private readHead(): bool {
    const start = this.pos;
    if (start >= this.len) {
      this.truncated(start);
      return false;
    }
    const initial = this.byteAt(start);
    this.major = initial >> 5;
    this.info = initial & 31;
    this.pos++;
    if (this.info < 24) {
      this.arg = <u64>this.info;
      return true;
    }
    if (this.info > 27) {
      this.arg = 0;
      return true; // 28..30 reserved, 31 indefinite or break: the caller decides
    }
    const n = 1 << (this.info - 24);
    if (this.pos + n > this.len) {
      this.pos = start;
      this.truncated(start);
      return false;
    }
    let arg: u64 = 0;
    for (let i = 0; i < n; i++) arg = (arg << 8) | <u64>this.byteAt(this.pos + i);
    this.pos += n;
    this.arg = arg;
    return true;
  }

  private isBreak(): bool {
    return this.pos < this.len && this.byteAt(this.pos) == 0xff;
  }

  item(depth: i32): Value | null {
    const start = this.pos;
    if (!this.readHead()) return null;
    const major = this.major;
    const info = this.info;
    if (info >= 28 && info <= 30) return this.malformed(start, "reserved additional information");
    if (info == 31 && (major <= 1 || major == 6)) {
      return this.malformed(start, "an indefinite length on an integer or a tag");
    }
    switch (major) {
      case 0:
        return Value.uint(this.arg);
      case 1:
        return Value.negativeInt(this.arg);
      case 2:
      case 3:
        return this.string(start, major == 3);
      case 4:
      case 5:
      case 6:
        if (depth >= MAX_DEPTH) {
          return this.fail(
            "too_deep",
            start,
            `the CBOR nests arrays, maps and tags more than ${MAX_DEPTH} deep at byte ${start}`,
          );
        }
        if (major == 4) return this.array(depth + 1);
        if (major == 5) return this.map(start, depth + 1);
        return this.tag(start, depth + 1);
      default:
        return this.simple(start);
    }
  }

  private string(start: i32, text: bool): Value | null {
    if (this.info != 31) {
      const bytes = this.chunk(start, text);
      if (bytes === null) return null;
      return text ? Value.str(String.UTF8.decode(bytes.buffer)) : Value.fromBytes(bytes);
    }
    // Indefinite: definite chunks of the same major type, then a break.
    const parts = new Array<Uint8Array>();
    let total = 0;
    while (true) {
      if (this.pos >= this.len) return this.truncated(this.pos);
      if (this.isBreak()) {
        this.pos++;
        break;
      }
      const chunkStart = this.pos;
      if (!this.readHead()) return null;
      if (this.major != (text ? 3 : 2) || this.info >= 28) {
        return this.malformed(chunkStart, "a chunk of an indefinite string is not a definite string of its type");
      }
      const part = this.chunk(chunkStart, text);
      if (part === null) return null;
      parts.push(part);
      total += part.length;
    }
    const joined = new Uint8Array(total);
    let at = 0;
    for (let i = 0; i < parts.length; i++) {
      joined.set(parts[i], at);
      at += parts[i].length;
    }
    return text ? Value.str(String.UTF8.decode(joined.buffer)) : Value.fromBytes(joined);
  }

  /** The bytes of a definite string whose head was just read at `start`. */
  private chunk(start: i32, text: bool): Uint8Array | null {
    if (this.arg > <u64>(this.len - this.pos)) {
      this.pos = start;
      this.truncated(start);
      return null;
    }
    const n = <i32>this.arg;
    if (text && !validUtf8(this.ptr + <usize>this.pos, n)) {
      this.malformed(start, "invalid UTF-8 in a text string");
      return null;
    }
    const bytes = new Uint8Array(n);
    memory.copy(bytes.dataStart, this.ptr + <usize>this.pos, <usize>n);
    this.pos += n;
    return bytes;
  }

  private array(depth: i32): Value | null {
    const items = new Array<Value>();
    if (this.info == 31) {
      while (true) {
        if (this.pos >= this.len) return this.truncated(this.pos);
        if (this.isBreak()) {
          this.pos++;
          break;
        }
        const item = this.item(depth);
        if (item === null) return null;
        items.push(item);
      }
    } else {
      // No preallocation: the count comes from the input.
      const count = this.arg;
      for (let i: u64 = 0; i < count; i++) {
        const item = this.item(depth);
        if (item === null) return null;
        items.push(item);
      }
    }
    return Value.array(items);
  }

  private map(start: i32, depth: i32): Value | null {
    const entries = new Array<Entry>();
    const indefinite = this.info == 31;
    const count = this.arg;
    for (let i: u64 = 0; indefinite || i < count; i++) {
      if (indefinite) {
        if (this.pos >= this.len) return this.truncated(this.pos);
        if (this.isBreak()) {
          this.pos++;
          break;
        }
      }
      const key = this.item(depth);
      if (key === null) return null;
      if (indefinite && this.isBreak()) return this.malformed(this.pos, "a break where a map value belongs");
      const value = this.item(depth);
      if (value === null) return null;
      entries.push(new Entry(key, value));
    }
    // Two keys are the same key when their canonical encodings are the same bytes.
    const keys = new Array<Uint8Array>(entries.length);
    for (let i = 0; i < entries.length; i++) keys[i] = encode(entries[i].key);
    keys.sort((a: Uint8Array, b: Uint8Array): i32 => compareBytes(a, b));
    for (let i = 1; i < keys.length; i++) {
      if (compareBytes(keys[i - 1], keys[i]) == 0 && this.duplicate === null) {
        this.duplicate = new DecodeError("duplicate_key", start, `a CBOR map at byte ${start} has a key twice`);
      }
    }
    const map = Value.map();
    map.entries = entries;
    return map;
  }

  private tag(start: i32, depth: i32): Value | null {
    const tag = this.arg;
    const bignum = tag == 2 || tag == 3;
    // Checked before the content is read, so that the error is the one the host names.
    if (bignum && this.pos < this.len && this.byteAt(this.pos) >> 5 != 2) {
      return this.malformed(start, "a bignum must enclose a byte string");
    }
    const inner = this.item(depth);
    if (inner === null) return null;
    if (bignum) {
      // Leading zeros do not count; one that fits is that integer.
      const bytes = inner.bytes!;
      let first = 0;
      while (first < bytes.length && bytes[first] == 0) first++;
      if (bytes.length - first <= 8) {
        let n: u64 = 0;
        for (let i = first; i < bytes.length; i++) n = (n << 8) | <u64>bytes[i];
        return tag == 2 ? Value.uint(n) : Value.negativeInt(n);
      }
      return Value.tagged(tag, Value.fromBytes(bytes.slice(first)));
    }
    return Value.tagged(tag, inner);
  }

  private simple(start: i32): Value | null {
    const info = this.info;
    if (info == 31) return this.malformed(start, "a break outside an indefinite-length item");
    if (info < 20) return this.outside(start, <i32>info);
    if (info == 20) return Value.boolean(false);
    if (info == 21) return Value.boolean(true);
    if (info == 22 || info == 23) return Value.null(); // undefined is read as null
    if (info == 24) {
      const simple = <i32>this.arg;
      if (simple < 32) return this.malformed(start, "a simple value below 32 in two bytes");
      return this.outside(start, simple);
    }
    if (info == 25) return Value.float64(halfToF64(<u32>this.arg));
    if (info == 26) return Value.float64(<f64>reinterpret<f32>(<u32>this.arg));
    return Value.float64(reinterpret<f64>(this.arg));
  }

  private outside(start: i32, simple: i32): Value | null {
    return this.fail(
      "simple_value",
      start,
      `simple value ${simple} at byte ${start} is not a spore value`,
      simple,
    );
  }
}
