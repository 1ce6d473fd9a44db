// The `spore.signatures` records (spec/abi.md, "Signatures"): one canonical CBOR map per
// function, `{name, params: [{name, type, kind}], returns}`, concatenated into a CBOR
// sequence. Only text, arrays and maps of text are needed, so this is all of the CBOR.

/** What values a parameter of AssemblyScript type `type` takes (spec/abi.md). */
export function kindOf(type) {
  const t = type.replace(/\s+/g, "");
  // As imported: `http.RouteRequest` through the SDK's `http`, or the class itself.
  if (/^(http\.)?RouteRequest$/.test(t)) return "request";
  if (/^(i8|i16|i32|i64|isize|u8|u16|u32|u64|usize)$/.test(t)) return "int";
  if (/^(f32|f64)$/.test(t)) return "float";
  if (t === "bool" || t === "boolean") return "bool";
  if (t === "string") return "text";
  return "any";
}

function head(major, n) {
  if (n < 24) return [(major << 5) | n];
  if (n < 0x100) return [(major << 5) | 24, n];
  if (n < 0x10000) return [(major << 5) | 25, n >> 8, n & 0xff];
  return [(major << 5) | 26, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

function compare(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Canonical CBOR of text, arrays and plain objects (keys sorted by their encodings). */
export function cbor(value) {
  if (typeof value === "string") {
    const bytes = [...Buffer.from(value, "utf8")];
    return [...head(3, bytes.length), ...bytes];
  }
  if (Array.isArray(value)) return [...head(4, value.length), ...value.flatMap(cbor)];
  const entries = Object.entries(value)
    .map(([k, v]) => [cbor(k), cbor(v)])
    .sort((a, b) => compare(a[0], b[0]));
  return [...head(5, entries.length), ...entries.flatMap(([k, v]) => [...k, ...v])];
}

/** The section's payload for `signatures`: [{name, params: [{name, type}], returns}]. */
export function sectionPayload(signatures) {
  const bytes = signatures.flatMap((s) =>
    cbor({
      name: s.name,
      params: s.params.map((p) => ({ name: p.name, type: p.type, kind: kindOf(p.type) })),
      returns: s.returns,
    }),
  );
  return Uint8Array.from(bytes);
}
