// The functions of {{name}}. Every `@spore` function is a spore function: its
// parameters are read from the caller's arguments by type, its result (or a
// Result's error) goes back to the caller, and `spore inspect` shows its signature.

import { Result, Value, kv, log } from "spore-sdk";

/** Greets `name`. */
@spore
export function hello(name: string): string {
  return `Hello, ${name}!`;
}

/** `a / b`, rounding toward zero; dividing by zero is an error, not a trap. */
@spore
export function divide(a: i64, b: i64): Result<i64, string> {
  if (b == 0) return Result.err<i64, string>(`${a} / 0: division by zero`);
  if (a == i64.MIN_VALUE && b == -1) return Result.err<i64, string>(`${a} / -1 overflows`);
  return Result.ok<i64, string>(a / b);
}

/** Remembers `note` in the node's kv store and returns the one it replaces ("" if none). */
@spore
export function remember(note: string): Result<string, string> {
  log.info(`remembering a note of ${note.length} characters`);
  const previous = kv.get("note");
  if (previous.isErr) return Result.err<string, string>(previous.error.toString());
  const stored = kv.put("note", Value.str(note));
  if (stored.isErr) return Result.err<string, string>(stored.error.toString());
  const text = previous.value.asString();
  return Result.ok<string, string>(text !== null ? text : "");
}
