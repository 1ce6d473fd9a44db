// The guest ABI of spec/abi.md as the SDK implements it: a module built with
// bin/spore-asc.mjs, called as a spore host calls it (spore_alloc, the argument array,
// the packed reply), with fake ability providers. Run: node tests/abi.mjs

import assert from "node:assert/strict";
import { test } from "node:test";
import { cbor } from "../transform/signatures.mjs";
import { compile, hex, place, unhex, unpack } from "./harness.mjs";

const bytes = await compile("abi");
const module = await WebAssembly.compile(bytes);

/** Instantiates the module with fake providers: `answer(ability, op, requestHex)` -> reply hex. */
async function instantiate(answer = () => "00f6") {
  const requests = [];
  let exports;
  const imports = {};
  for (const { module: ability, name: op } of WebAssembly.Module.imports(module)) {
    imports[ability] ??= {};
    imports[ability][op] = (ptr, len) => {
      const request = hex(new Uint8Array(exports.memory.buffer, ptr, len));
      requests.push([ability, op, request]);
      const reply = unhex(answer(ability, op, request));
      const at = exports.spore_alloc(reply.length);
      new Uint8Array(exports.memory.buffer).set(reply, at);
      return (BigInt(at) << 32n) | BigInt(reply.length);
    };
  }
  const instance = await WebAssembly.instantiate(module, imports);
  exports = instance.exports;
  return { exports, requests };
}

/** Calls spore function `name` with the argument bytes `args` (hex); the reply as hex. */
async function call(name, args, answer) {
  const { exports, requests } = await instantiate(answer);
  const reply = hex(unpack(exports.memory, exports[name](...place(exports, unhex(args)))));
  return { reply, requests };
}

const text = (s) => hex(cbor(s));

test("the module imports only the abilities its code calls, and exports what the ABI requires", () => {
  const imports = WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}`).sort();
  assert.deepEqual(imports, ["call.invoke", "kv.get", "kv.put", "log.info", "sensor.read"]);
  const exports = Object.fromEntries(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]));
  assert.equal(exports.memory, "memory");
  assert.equal(exports.spore_alloc, "function");
  assert.equal(exports.spore_panic_message, "function");
  for (const name of ["add", "greet", "mean", "echo", "nothing", "boom", "roundtrip", "twice", "sense"]) {
    assert.equal(exports[name], "function", name);
  }
  assert.ok(!Object.keys(exports).some((name) => name.startsWith("__spore")), "only the wrappers are exported");
});

test("a success is status 0x00 and the canonical result", async () => {
  assert.equal((await call("add", "820203")).reply, "0005");
  assert.equal((await call("greet", `82${text("ab")}03`)).reply, `00${text("ababab")}`);
  assert.equal((await call("nothing", "80")).reply, "00f6");
  // An integer where a float is expected is taken, as the Rust SDK does: mean([1, 2.5]).
  assert.equal((await call("mean", "818201f94100")).reply, "00f93f00");
  // Any value passes through, re-encoded canonically (keys sorted, shortest heads).
  assert.equal((await call("echo", "81a2616201616102")).reply, "00a2616102616201");
});

test("a returned error is status 0x01 and the error value", async () => {
  const max = "1b7fffffffffffffff";
  const { reply } = await call("add", `82${max}01`);
  assert.equal(reply, `01${text("9223372036854775807 + 1 overflows a 64-bit integer")}`);
});

test("arguments that do not fit are status 0x02, naming the argument", async () => {
  assert.equal((await call("add", "8102")).reply, `02${text("`add` takes 2 arguments, got 1")}`);
  const reason = (r) => Buffer.from(unhex(r.slice(2))).toString().replace(/^[\s\S]*?(`|argument|the)/, "$1");
  const wrongType = await call("add", `8202${text("two")}`);
  assert.ok(wrongType.reply.startsWith("02"));
  assert.match(reason(wrongType.reply), /^argument 2 \(`b`\) of `add`: expected an integer/);
  const outOfRange = await call("greet", `82${text("a")}190100`);
  assert.match(reason(outOfRange.reply), /argument 2 \(`times`\) of `greet`: expected an integer in the range of u8/);
  const notArray = await call("add", "05");
  assert.match(reason(notArray.reply), /are not a CBOR array/);
  const truncated = await call("add", "8201");
  assert.match(reason(truncated.reply), /not a CBOR value: the CBOR ends inside the item at byte 2/);
  const trailing = await call("add", "82010200");
  assert.match(reason(trailing.reply), /1 unexpected bytes after the CBOR item, from byte 3/);
});

test("an abort traps, and spore_panic_message gives its message", async () => {
  const { exports } = await instantiate();
  assert.equal(exports.spore_panic_message(), 0n);
  assert.throws(() => exports.boom(...place(exports, unhex("80"))), WebAssembly.RuntimeError);
  const message = Buffer.from(unpack(exports.memory, exports.spore_panic_message())).toString();
  assert.match(message, /^boom went the function \(at .*abi\.ts:\d+:\d+\)$/);
});

test("ability requests are the canonical maps of spec/abilities.md", async () => {
  const stored = "a2616101616202";
  const answer = (ability, op) => (ability === "kv" && op === "get" ? `00${stored}` : "00f6");
  const { reply, requests } = await call("roundtrip", `82${text("k")}${stored}`, answer);
  assert.equal(reply, `00${stored}`);
  assert.deepEqual(requests, [
    ["log", "info", text("storing k")],
    ["kv", "put", `a2${text("key")}${text("k")}${text("value")}${stored}`],
    ["kv", "get", `a1${text("key")}${text("k")}`],
  ]);
  const { requests: calls } = await call("twice", `82${text("h:add")}07`, () => "000e");
  assert.deepEqual(calls, [["call", "invoke", `a2${text("args")}820707${text("function")}${text("h:add")}`]]);
  const { requests: reads } = await call("sense", `81${text("attic")}`, () => "00f93c00");
  assert.deepEqual(reads, [["sensor", "read", text("attic")]]);
});

test("an ability failure is a value the function can return, kind and message kept", async () => {
  const failure = `01a2${text("kind")}${text("not_allowed")}${text("message")}${text("no")}`;
  const { reply } = await call("roundtrip", `82${text("k")}01`, () => failure);
  assert.equal(reply, `01a2${text("kind")}${text("not_allowed")}${text("message")}${text("no")}`);
});

test("a response that breaks the protocol is kind bad_response", async () => {
  for (const bad of ["", "02f6", "00f6f6", "0082"]) {
    const { reply } = await call("sense", `81${text("x")}`, () => bad);
    assert.ok(reply.startsWith(`01a2${text("kind")}${text("bad_response")}`), `${bad}: ${reply}`);
  }
});

test("the spore.signatures section describes every function as written", () => {
  const sections = WebAssembly.Module.customSections(module, "spore.signatures");
  assert.equal(sections.length, 1);
  const record = (name, params, returns) =>
    cbor({ name, params: params.map(([n, t, k]) => ({ name: n, type: t, kind: k })), returns });
  const expected = [
    record("add", [["a", "i64", "int"], ["b", "i64", "int"]], "Result<i64, string>"),
    record("greet", [["name", "string", "text"], ["times", "u8", "int"]], "string"),
    record("mean", [["xs", "Array<f64>", "any"]], "f64"),
    record("echo", [["v", "Value", "any"]], "Value"),
    record("nothing", [], ""),
    record("boom", [], "i32"),
    record("roundtrip", [["key", "string", "text"], ["value", "Value", "any"]], "Result<Value, AbilityError>"),
    record("twice", [["fn", "string", "text"], ["x", "i64", "int"]], "Result<Value, AbilityError>"),
    record("sense", [["id", "string", "text"]], "Result<Value, AbilityError>"),
  ].flat();
  assert.equal(hex(new Uint8Array(sections[0])), hex(expected));
  // One record checked against bytes written by hand from spec/abi.md, so that the
  // encoder above cannot agree with itself by mistake.
  assert.ok(
    hex(new Uint8Array(sections[0])).startsWith(
      "a3646e616d656361646466706172616d7382" +
        "a3646b696e6463696e74646e616d6561616474797065636936" + "34" +
        "a3646b696e6463696e74646e616d6561626474797065636936" + "34" +
        "6772657475726e73" + "73" + hex(Buffer.from("Result<i64, string>")),
    ),
  );
});
