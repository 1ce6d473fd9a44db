// Builds every src/NAME.ts into build/NAME.wasm, one spore module each.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "spore-sdk/bin/spore-asc.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
process.chdir(here);
fs.mkdirSync("build", { recursive: true });
for (const file of fs.readdirSync("src").filter((f) => f.endsWith(".ts")).sort()) {
  const name = path.basename(file, ".ts");
  const { error } = await build([`src/${file}`, "-o", `build/${name}.wasm`], {
    stdout: process.stdout,
    stderr: process.stderr,
  });
  if (error) {
    process.stderr.write(`building src/${file}: ${error.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`build/${name}.wasm\n`);
}
