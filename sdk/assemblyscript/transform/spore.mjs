// The `@spore` transform: turns every `@spore export function f(a: A, b: B): R` of the
// compiled files into a spore function (spec/abi.md). The typed function stays as it
// is (so the file's own code can still call it) but is no longer exported; a generated
// function `__spore_export_f(ptr: i32, len: i32): i64`, exported as `f`, reads
// the argument array as `A`, `B` (status 0x02 naming the argument when one does not
// fit), calls it and encodes its result (a `Result` error is status 0x01). The
// functions' parameter names and types go into the module's `spore.signatures` custom
// section, so `spore inspect` and HTTP routes see them as they were written.
//
// The generated code is parsed from text by the compiler's own parser, so it is checked
// and typed like hand-written code. Run through bin/spore-asc.mjs, which loads this
// transform with the same compiler instance.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CommonFlags, NodeKind, ParameterKind, Parser, SourceKind } from "assemblyscript";
import { Transform } from "assemblyscript/transform";
import { sectionPayload } from "./signatures.mjs";

const SDK_INDEX = fs.realpathSync(path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "index.ts"));
const EXPORT_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

export default class SporeTransform extends Transform {
  signatures = [];
  problems = [];

  afterParse(parser) {
    let runtimeExported = false;
    for (const source of parser.sources) {
      if (source.sourceKind !== SourceKind.User && source.sourceKind !== SourceKind.UserEntry) continue;
      const functions = source.statements.filter(isSporeFunction);
      if (functions.length === 0) continue;
      const where = source.normalizedPath;
      if (source.sourceKind !== SourceKind.UserEntry) {
        this.problems.push(`${where}: @spore functions must be in an entry file (one given to the compiler), so that they are exported`);
        continue;
      }
      const sdk = this.sdkImport(source);
      if (sdk === null) {
        this.problems.push(`${where}: a file with @spore functions must import from the SDK, e.g. import { Value } from "spore-sdk"`);
        continue;
      }
      let text = `import { abi as __spore_abi } from ${JSON.stringify(sdk)};\n`;
      if (!runtimeExported) {
        // The exports the host needs (spec/abi.md), once per module.
        text += `export { spore_alloc, spore_panic_message } from ${JSON.stringify(sdk)};\n`;
        runtimeExported = true;
      }
      for (const fn of functions) text += this.wrap(source, fn);
      const generated = new Parser(parser.diagnostics);
      generated.parseFile(text, source.normalizedPath, true);
      source.statements.push(...generated.sources[0].statements);
    }
    if (this.problems.length) throw new Error(`spore: ${this.problems.join("\n")}`);
  }

  afterCompile(module) {
    if (this.signatures.length) module.addCustomSection("spore.signatures", sectionPayload(this.signatures));
  }

  /** The specifier by which `source` imports the SDK's index, or null. */
  sdkImport(source) {
    const dir = path.dirname(path.resolve(this.baseDir, source.normalizedPath));
    for (const statement of source.statements) {
      if (statement.kind !== NodeKind.Import) continue;
      const spec = statement.path.value;
      if (spec === "spore-sdk") return spec;
      for (const candidate of [`${spec}.ts`, path.join(spec, "index.ts")]) {
        const file = path.resolve(dir, candidate);
        if (fs.existsSync(file) && fs.realpathSync(file) === SDK_INDEX) return spec;
      }
    }
    return null;
  }

  /** Unexports `fn` and returns the text of its wrapper, exported under its name. */
  wrap(source, fn) {
    const name = fn.name.text;
    const where = `${source.normalizedPath}: @spore function \`${name}\``;
    if (!EXPORT_NAME.test(name) || name.startsWith("spore_")) {
      this.problems.push(`${where}: a spore function's name is 1 to 128 of [A-Za-z0-9_], not starting with a digit or spore_`);
    }
    if (fn.typeParameters && fn.typeParameters.length) this.problems.push(`${where}: cannot be generic`);
    // Types as written, on one line: `Result<i64,\n string>` is `Result<i64, string>`.
    const text = (node) => node.range.source.text.substring(node.range.start, node.range.end).replace(/\s+/g, " ").trim();
    const params = fn.signature.parameters.map((p) => {
      if (p.parameterKind !== ParameterKind.Default || p.initializer) {
        this.problems.push(`${where}: parameter \`${p.name.text}\` must be plain (no ?, default or ...rest)`);
      }
      return { name: p.name.text, type: text(p.type) };
    });
    const returnType = fn.signature.returnType;
    const returns = text(returnType).trim();
    this.signatures.push({ name, params, returns: returns === "void" ? "" : returns });

    fn.decorators = fn.decorators.filter((d) => !isSporeDecorator(d));
    if (!fn.decorators.length) fn.decorators = null;
    fn.flags &= ~CommonFlags.Export;

    const locals = params.map((_, i) => `__spore_arg${i}`);
    const call = `${name}(${locals.join(", ")})`;
    let body = `  const __spore_args = new __spore_abi.Args(ptr, len, ${JSON.stringify(name)}, [${params.map((p) => JSON.stringify(p.name)).join(", ")}]);\n`;
    params.forEach((p, i) => (body += `  const ${locals[i]} = __spore_args.take<${p.type}>();\n`));
    body += "  if (__spore_args.failed) return __spore_args.refusal();\n";
    if (returns === "void") body += `  ${call};\n  return __spore_abi.replyNull();\n`;
    else if (isResult(returnType)) {
      const [ok, err] = returnType.typeArguments.map(text);
      body += `  return __spore_abi.replyResult<${ok}, ${err}>(${call});\n`;
    } else body += `  return __spore_abi.reply<${returns}>(${call});\n`;
    const wrapper = `__spore_export_${name}`;
    return `function ${wrapper}(ptr: i32, len: i32): i64 {\n${body}}\nexport { ${wrapper} as ${name} };\n`;
  }
}

function isSporeDecorator(d) {
  return d.name.kind === NodeKind.Identifier && d.name.text === "spore";
}

function isSporeFunction(statement) {
  return statement.kind === NodeKind.FunctionDeclaration && (statement.decorators || []).some(isSporeDecorator);
}

function isResult(type) {
  return type.kind === NodeKind.NamedType && type.name.identifier.text === "Result" && type.typeArguments?.length === 2;
}
