// Shared by the node tests: compiles a test module with bin/spore-asc.mjs (once per
// process) and instantiates it with the given imports.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "../bin/spore-asc.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));

/** Compiles tests/NAME.ts; returns the module's bytes. */
export async function compile(name) {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "spore-as-")), `${name}.wasm`);
  const stderr = [];
  const { error } = await build([path.join(here, `${name}.ts`), "-o", out], {
    stderr: { write: (s) => stderr.push(String(s)) },
  });
  if (error) throw new Error(`compiling tests/${name}.ts: ${error.message}\n${stderr.join("")}`);
  return fs.readFileSync(out);
}

export function hex(bytes) {
  return Buffer.from(bytes).toString("hex");
}

export function unhex(text) {
  return new Uint8Array(Buffer.from(text, "hex"));
}

/** The bytes of a packed pointer/length in `memory`. */
export function unpack(memory, packed) {
  const p = BigInt.asUintN(64, packed);
  const ptr = Number(p >> 32n);
  const len = Number(p & 0xffffffffn);
  return new Uint8Array(memory.buffer.slice(ptr, ptr + len));
}

/** Writes `bytes` through the module's `spore_alloc`; returns [ptr, len]. */
export function place(exports, bytes) {
  const ptr = exports.spore_alloc(bytes.length);
  new Uint8Array(exports.memory.buffer).set(bytes, ptr);
  return [ptr, bytes.length];
}
