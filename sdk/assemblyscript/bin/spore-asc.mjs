#!/usr/bin/env node
// Compiles AssemblyScript entry files into a spore module:
//
//   spore-asc assembly/index.ts -o build/index.wasm [more asc options]
//
// It runs the AssemblyScript compiler (the SDK's own, so that the transform and the
// compiler are one instance) with the @spore transform and the options a spore module
// needs (spec/abi.md):
//
// - `--runtime stub`: a bump allocator that never frees. A spore call runs in a fresh
//   instance that is dropped after the call, so a collector would only cost time and
//   code, and could not be allowed to move or free buffers the host still reads.
// - `--use abort=sporeAbort`: AssemblyScript imports `env.abort` by default, which a
//   spore host refuses (deny by default); the SDK's abort keeps the message for
//   `spore_panic_message` and traps.
// - no WASI, no bindings: the only imports are the ability operations the code calls.

import fs from "node:fs";
import { fileURLToPath } from "node:url";
import asc from "assemblyscript/asc";
import SporeTransform from "../transform/spore.mjs";

const REQUIRED = ["--runtime", "stub", "--use", "abort=sporeAbort"];
const DEFAULTS = ["--optimizeLevel", "3", "--shrinkLevel", "1"];

export async function build(args, options = {}) {
  if (args.some((a) => a === "--runtime" || a.startsWith("--runtime=") || a === "--use" || a.startsWith("--use="))) {
    throw new Error("spore-asc sets --runtime and --use abort itself: a spore module needs exactly these");
  }
  const optimizing = args.some((a) => /^(-O|--optimize)/.test(a));
  const argv = [...args, ...REQUIRED, ...(optimizing ? [] : DEFAULTS)];
  const result = await asc.main(argv, { transforms: [SporeTransform], ...options });
  return result;
}

// Run as a command (also through node_modules/.bin's symlink), not when imported.
if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  if (args.length === 0 || args.includes("--help")) {
    process.stderr.write("usage: spore-asc ENTRY.ts... -o OUT.wasm [asc options]\n");
    process.exit(args.length === 0 ? 2 : 0);
  }
  const { error } = await build(args, { stdout: process.stdout, stderr: process.stderr });
  if (error) {
    process.stderr.write(`spore-asc: ${error.message}\n`);
    process.exit(1);
  }
}
