// Builds every src/NAME.ts into build/NAME.wasm (or OUT/NAME.wasm with
// `node build.mjs OUT`), one spore module each.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "spore-sdk/bin/spore-asc.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] ?? path.join(here, "build"));
process.chdir(here);
fs.mkdirSync(out, { recursive: true });
for (const file of fs.readdirSync("src").filter((f) => f.endsWith(".ts")).sort()) {
  const name = path.basename(file, ".ts");
  const wasm = path.join(out, `${name}.wasm`);
  const { error } = await build([`src/${file}`, "-o", wasm], {
    stdout: process.stdout,
    stderr: process.stderr,
  });
  if (error) {
    process.stderr.write(`building src/${file}: ${error.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${wasm}\n`);
}
