// Checked integer arithmetic, as codebase/arith in Rust: overflow and division by zero
// are errors, never wrong answers.

import { Result } from "spore-sdk";

function overflows(a: i64, op: string, b: i64): Result<i64, string> {
  return Result.err<i64, string>(`${a} ${op} ${b} overflows a 64-bit integer`);
}

@spore
export function add(a: i64, b: i64): Result<i64, string> {
  const sum = a + b;
  // Overflow when both have one sign and the sum the other.
  if ((a ^ sum) & (b ^ sum) & i64.MIN_VALUE) return overflows(a, "+", b);
  return Result.ok<i64, string>(sum);
}

@spore
export function sub(a: i64, b: i64): Result<i64, string> {
  const difference = a - b;
  if ((a ^ b) & (a ^ difference) & i64.MIN_VALUE) return overflows(a, "-", b);
  return Result.ok<i64, string>(difference);
}

@spore
export function mul(a: i64, b: i64): Result<i64, string> {
  const product = a * b;
  if ((a == -1 && b == i64.MIN_VALUE) || (b == -1 && a == i64.MIN_VALUE) || (a != 0 && product / a != b)) {
    return overflows(a, "*", b);
  }
  return Result.ok<i64, string>(product);
}

/** Integer division, rounding toward zero. */
@spore
export function div(a: i64, b: i64): Result<i64, string> {
  if (b == 0) return Result.err<i64, string>(`${a} / 0: division by zero`);
  // The only other failure is i64::MIN / -1.
  if (a == i64.MIN_VALUE && b == -1) return overflows(a, "/", b);
  return Result.ok<i64, string>(a / b);
}

@spore
export function sum(values: Array<i64>): Result<i64, string> {
  let total: i64 = 0;
  for (let i = 0; i < values.length; i++) {
    const next = add(total, values[i]);
    if (next.isErr) return Result.err<i64, string>("the sum overflows a 64-bit integer");
    total = next.value;
  }
  return Result.ok<i64, string>(total);
}
