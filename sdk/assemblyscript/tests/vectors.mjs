// spec/vectors/values.json through the SDK's CBOR code, compiled to Wasm: the vectors
// crates/spore-core/tests/vectors.rs checks for the host. Run: node tests/vectors.mjs
//
// - from_cbor: the input decodes, and encodes to exactly `canonical`, a fixed point;
// - from_json: `cbor` decodes and encodes to itself, and a number built in the SDK
//   from the JSON's value (a double, or an integer when the text has no fraction or
//   exponent and fits) encodes to exactly `cbor`;
// - refused (CBOR): decoding fails with the error kind, offset and simple value named.
// JSON text itself never reaches a function (the host turns it into CBOR), so the
// JSON-only refusals and the JSON display are the host's, not this SDK's.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { compile, hex, place, unhex, unpack } from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const vectors = JSON.parse(
  fs.readFileSync(path.join(here, "..", "..", "..", "spec", "vectors", "values.json"), "utf8"),
);

const { instance } = await WebAssembly.instantiate(await compile("vectors"), {});
const exports = instance.exports;

function canonical(bytes) {
  const reply = unpack(exports.memory, exports.canonical(...place(exports, bytes)));
  const body = reply.slice(1);
  return reply[0] === 0 ? { cbor: hex(body) } : { error: Buffer.from(body).toString("utf8") };
}

function read(bytes) {
  return unpack(exports.memory, bytes).slice(1);
}

const INTEGER = /^-?\d+$/;

test("every from_cbor vector decodes to exactly its canonical bytes, a fixed point", () => {
  assert.ok(vectors.from_cbor.length >= 30);
  for (const v of vectors.from_cbor) {
    assert.deepEqual(canonical(unhex(v.cbor)), { cbor: v.canonical }, `${v.cbor}: ${v.why}`);
    assert.deepEqual(canonical(unhex(v.canonical)), { cbor: v.canonical }, `${v.canonical} again`);
  }
});

test("every from_json vector's CBOR is canonical as the SDK writes it", () => {
  for (const v of vectors.from_json) {
    assert.deepEqual(canonical(unhex(v.cbor)), { cbor: v.cbor }, `${v.json}: ${v.why}`);
  }
});

test("numbers built in the SDK encode to the from_json vectors' bytes", () => {
  let checked = 0;
  for (const v of vectors.from_json) {
    const text = v.json.trim();
    if (!/^-?[\d.eE+-]+$/.test(text)) continue;
    let bytes;
    if (INTEGER.test(text) && BigInt(text) >= -(2n ** 64n) && BigInt(text) < 2n ** 64n) {
      const n = BigInt(text);
      bytes = n < 0n ? exports.encodeInt(1, BigInt.asIntN(64, -1n - n)) : exports.encodeInt(0, BigInt.asIntN(64, n));
    } else {
      // JavaScript reads a decimal to the nearest double, ties to even, as spec/values.md says.
      bytes = exports.encodeFloat(Number(text));
    }
    assert.equal(hex(read(bytes)), v.cbor, `${text}: ${v.why}`);
    checked++;
  }
  assert.ok(checked >= 25, `only ${checked} numbers`);
});

test("NaN of any payload encodes as f97e00", () => {
  const nan = new Float64Array(new BigUint64Array([0xfff8000000000123n]).buffer)[0];
  assert.equal(hex(read(exports.encodeFloat(nan))), "f97e00");
});

test("a map built out of order encodes with its keys in canonical order, a key set twice once", () => {
  assert.equal(hex(read(exports.encodeUnsortedMap())), "a4600461610261620562616103");
});

test("every refused CBOR vector is refused with its kind, offset and simple value", () => {
  let checked = 0;
  for (const v of vectors.refused) {
    if (v.cbor === undefined) continue; // a JSON refusal: the host's
    const got = canonical(unhex(v.cbor));
    assert.ok(got.error, `${v.cbor} (${v.why}) was accepted as ${got.cbor}`);
    const [kind, offset, simple] = got.error.split(" ");
    assert.equal(kind, v.error, `${v.cbor}: ${v.why}`);
    if (v.offset !== undefined) assert.equal(Number(offset), v.offset, `${v.cbor}: ${v.why}: offset`);
    if (v.simple_value !== undefined) assert.equal(Number(simple), v.simple_value, `${v.cbor}: simple value`);
    checked++;
  }
  assert.ok(checked >= 20, `only ${checked} refusals`);
});

test("where two problems compete, the SDK names the one the host's check names first", () => {
  // (spore_core::value::check) a bignum's content type is checked before the content.
  assert.deepEqual(canonical(unhex("c281ff")), { error: "malformed 0 -1" });
  // A break in place of a map's value is a break outside an item, at its offset.
  assert.deepEqual(canonical(unhex("bf6161ffff")), { error: "malformed 3 -1" });
  // An indefinite string without its break ends where its next chunk would start.
  assert.deepEqual(canonical(unhex("7f6161")), { error: "truncated 3 -1" });
  // Reserved additional information, even with no bytes after it.
  assert.deepEqual(canonical(unhex("5f5c")), { error: "malformed 1 -1" });
  // A duplicate key only when nothing else is wrong: {"a": 1, "a": 2}, then a byte more.
  assert.deepEqual(canonical(unhex("a2616101616102")), { error: "duplicate_key 0 -1" });
  assert.deepEqual(canonical(unhex("a261610161610200")), { error: "trailing_bytes 7 -1" });
});
