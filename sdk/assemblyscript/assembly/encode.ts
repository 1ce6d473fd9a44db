// Canonical CBOR (spec/values.md, "Canonical form"): shortest heads, definite lengths,
// map keys sorted by their encodings, floats in the shortest exact width, every NaN
// `f9 7e00`, bignums in preferred serialization.

import { ByteWriter } from "./buffer";
import { halfBitsExact } from "./half";
import { Kind, Value, compareBytes } from "./value";

/** The canonical encoding of `value`. */
export function encode(value: Value): Uint8Array {
  const out = new ByteWriter();
  write(out, value);
  return out.finish();
}

export function head(out: ByteWriter, major: u8, n: u64): void {
  const m = major << 5;
  if (n < 24) out.byte(m | <u8>n);
  else if (n <= 0xff) {
    out.byte(m | 24);
    out.bigEndian(n, 1);
  } else if (n <= 0xffff) {
    out.byte(m | 25);
    out.bigEndian(n, 2);
  } else if (n <= 0xffffffff) {
    out.byte(m | 26);
    out.bigEndian(n, 4);
  } else {
    out.byte(m | 27);
    out.bigEndian(n, 8);
  }
}

export function writeText(out: ByteWriter, text: string): void {
  // Lone surrogates (possible in a JS string, impossible in UTF-8) become U+FFFD.
  const utf8 = Uint8Array.wrap(String.UTF8.encode(text, false, String.UTF8.ErrorMode.REPLACE));
  head(out, 3, <u64>utf8.length);
  out.raw(utf8);
}

export function write(out: ByteWriter, value: Value): void {
  switch (value.kind) {
    case Kind.Int:
      head(out, value.negative ? 1 : 0, value.magnitude);
      break;
    case Kind.Float:
      writeFloat(out, value.float);
      break;
    case Kind.Bytes: {
      const bytes = value.bytes!;
      head(out, 2, <u64>bytes.length);
      out.raw(bytes);
      break;
    }
    case Kind.Text:
      writeText(out, value.text!);
      break;
    case Kind.Array: {
      const items = value.items!;
      head(out, 4, <u64>items.length);
      for (let i = 0; i < items.length; i++) write(out, items[i]);
      break;
    }
    case Kind.Map:
      writeMap(out, value);
      break;
    case Kind.Tag:
      writeTag(out, value.tag, value.inner!);
      break;
    case Kind.Bool:
      out.byte(value.bool ? 0xf5 : 0xf4);
      break;
    default:
      out.byte(0xf6);
  }
}

function writeFloat(out: ByteWriter, f: f64): void {
  if (isNaN(f)) {
    out.byte(0xf9);
    out.bigEndian(0x7e00, 2);
    return;
  }
  const half = halfBitsExact(f);
  if (half >= 0) {
    out.byte(0xf9);
    out.bigEndian(<u64>half, 2);
  } else if (<f64>(<f32>f) == f) {
    out.byte(0xfa);
    out.bigEndian(<u64>reinterpret<u32>(<f32>f), 4);
  } else {
    out.byte(0xfb);
    out.bigEndian(reinterpret<u64>(f), 8);
  }
}

class EncodedEntry {
  constructor(public key: Uint8Array, public value: Value) {}
}

function writeMap(out: ByteWriter, map: Value): void {
  const entries = map.entries!;
  const encoded = new Array<EncodedEntry>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    encoded[i] = new EncodedEntry(encode(entries[i].key), entries[i].value);
  }
  encoded.sort((a: EncodedEntry, b: EncodedEntry): i32 => compareBytes(a.key, b.key));
  for (let i = 1; i < encoded.length; i++) {
    // `Value.set` never adds a key twice; only entries pushed by hand can.
    assert(compareBytes(encoded[i - 1].key, encoded[i].key) != 0, "a map with the same key twice");
  }
  head(out, 5, <u64>encoded.length);
  for (let i = 0; i < encoded.length; i++) {
    out.raw(encoded[i].key);
    write(out, encoded[i].value);
  }
}

function writeTag(out: ByteWriter, tag: u64, inner: Value): void {
  if ((tag == 2 || tag == 3) && inner.kind == Kind.Bytes) {
    // A bignum in preferred serialization: an integer when it fits, else its bytes
    // without leading zeros.
    const bytes = inner.bytes!;
    let start = 0;
    while (start < bytes.length && bytes[start] == 0) start++;
    const significant = bytes.length - start;
    if (significant <= 8) {
      let n: u64 = 0;
      for (let i = start; i < bytes.length; i++) n = (n << 8) | <u64>bytes[i];
      head(out, tag == 2 ? 0 : 1, n);
      return;
    }
    head(out, 6, tag);
    head(out, 2, <u64>significant);
    out.rawAt(bytes.dataStart + <usize>start, significant);
    return;
  }
  head(out, 6, tag);
  write(out, inner);
}
