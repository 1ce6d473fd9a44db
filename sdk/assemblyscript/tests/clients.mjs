// The built-in ability clients against fake providers: the request each sends is the
// canonical map spec/abilities.md gives, and responses are read as the operation's
// result (or kind bad_response). Run: node tests/clients.mjs

import assert from "node:assert/strict";
import { test } from "node:test";
import { cbor } from "../transform/signatures.mjs";
import { compile, hex, place, unhex, unpack } from "./harness.mjs";

const module = await WebAssembly.compile(await compile("clients"));
const t = (s) => hex(cbor(s));

/** Calls `name` with argument bytes `args`; the reply and the requests, as hex. */
async function call(name, args, answer) {
  const requests = [];
  let exports;
  const imports = {};
  for (const { module: ability, name: op } of WebAssembly.Module.imports(module)) {
    imports[ability] ??= {};
    imports[ability][op] = (ptr, len) => {
      requests.push([`${ability}.${op}`, hex(new Uint8Array(exports.memory.buffer, ptr, len))]);
      const reply = unhex(answer);
      const at = exports.spore_alloc(reply.length);
      new Uint8Array(exports.memory.buffer).set(reply, at);
      return (BigInt(at) << 32n) | BigInt(reply.length);
    };
  }
  exports = (await WebAssembly.instantiate(module, imports)).exports;
  const reply = hex(unpack(exports.memory, exports[name](...place(exports, unhex(args)))));
  return { reply, requests };
}

test("clock.now sends null and reads an unsigned integer", async () => {
  const { reply, requests } = await call("now", "80", "001b0000018bcfe5687b");
  assert.deepEqual(requests, [["clock.now", "f6"]]);
  assert.equal(reply, "001b0000018bcfe5687b");
  assert.match((await call("now", "80", "00" + t("soon"))).reply, new RegExp(`^01a2${t("kind")}${t("bad_response")}`));
});

test("random.bytes sends n and reads a byte string", async () => {
  const { reply, requests } = await call("noise", "8103", "0043010203");
  assert.deepEqual(requests, [["random.bytes", "03"]]);
  assert.equal(reply, "0043010203");
});

test("config.get and kv send {key}; kv.list {prefix, limit}; kv.cas {key, expected, new}", async () => {
  assert.deepEqual((await call("setting", `81${t("greeting")}`, "00f6")).requests, [
    ["config.get", `a1${t("key")}${t("greeting")}`],
  ]);
  const forgotten = await call("forget", `81${t("k")}`, "00f5");
  assert.deepEqual(forgotten.requests, [["kv.delete", `a1${t("key")}${t("k")}`]]);
  assert.equal(forgotten.reply, "00f5");
  const listed = await call("keys", `82${t("p/")}05`, `0082${t("p/a")}${t("p/b")}`);
  assert.deepEqual(listed.requests, [["kv.list", `a2${t("limit")}05${t("prefix")}${t("p/")}`]]);
  assert.equal(listed.reply, `0082${t("p/a")}${t("p/b")}`);
  // A negative limit leaves the host's default.
  assert.deepEqual((await call("keys", `82${t("p/")}20`, "0080")).requests, [
    ["kv.list", `a1${t("prefix")}${t("p/")}`],
  ]);
  const swapped = await call("swap", `83${t("k")}f601`, "00f4");
  assert.deepEqual(swapped.requests, [["kv.cas", `a3${t("key")}${t("k")}${t("new")}01${t("expected")}f6`]]);
  assert.equal(swapped.reply, "00f4");
});

test("http.request sends {url, method, headers, body} and reads {status, headers, body}", async () => {
  const response = `00a3${t("body")}44676f6e65${t("status")}190194${t("headers")}a1${t("x")}${t("y")}`;
  const { reply, requests } = await call("post", `82${t("https://a.example/")}${t("hi")}`, response);
  assert.deepEqual(requests, [
    [
      "http.request",
      `a4${t("url")}${t("https://a.example/")}${t("body")}426869${t("method")}${t("POST")}` +
        `${t("headers")}a1${t("content-type")}${t("text/plain")}`,
    ],
  ]);
  assert.equal(reply, `00${t("404 false y gone")}`);
  // A response is also a value a function can return, as the canonical map.
  const fetched = await call("fetch", `81${t("https://a.example/")}`, response);
  assert.equal(fetched.reply, `00a3${t("body")}44676f6e65${t("status")}190194${t("headers")}a1${t("x")}${t("y")}`);
  assert.deepEqual(fetched.requests[0][1], `a2${t("url")}${t("https://a.example/")}${t("method")}${t("GET")}`);
  const notResponse = await call("fetch", `81${t("https://a.example/")}`, "0005");
  assert.match(notResponse.reply, new RegExp(`^01a2${t("kind")}${t("bad_response")}`));
});
