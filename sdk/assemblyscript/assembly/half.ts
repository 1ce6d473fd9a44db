// Half precision (binary16) floats: CBOR writes a float in the shortest width that holds
// it exactly (spec/values.md, "Canonical form"), and reads any width.

/** The binary16 bits of `f` when half precision holds it exactly, else -1. */
export function halfBitsExact(f: f64): i32 {
  const single = <f32>f;
  if (<f64>single != f) return -1; // not even a single (NaN is handled by the caller)
  const bits = reinterpret<u32>(single);
  const sign = <i32>(bits >> 16) & 0x8000;
  const exponent = <i32>((bits >> 23) & 0xff);
  const mantissa = bits & 0x7fffff;
  if (exponent == 0xff) return mantissa == 0 ? sign | 0x7c00 : -1; // infinities
  if (exponent == 0) return mantissa == 0 ? sign : -1; // zeros; f32 subnormals are too small
  const e = exponent - 127;
  if (e > 15) return -1;
  if (e >= -14) {
    // A normal half: 10 bits of mantissa.
    if ((mantissa & 0x1fff) != 0) return -1;
    return sign | ((e + 15) << 10) | <i32>(mantissa >> 13);
  }
  if (e < -24) return -1;
  // A subnormal half: k * 2^-24 with k < 1024.
  const full = mantissa | 0x800000;
  const shift = <u32>(-(e + 1));
  if ((full & ((1 << shift) - 1)) != 0) return -1;
  return sign | <i32>(full >> shift);
}

/** The value of binary16 `bits`. */
export function halfToF64(bits: u32): f64 {
  const sign: f64 = (bits & 0x8000) != 0 ? -1.0 : 1.0;
  const exponent = <i32>((bits >> 10) & 0x1f);
  const mantissa = <f64>(bits & 0x3ff);
  if (exponent == 0) return sign * mantissa * Math.pow(2, -24);
  if (exponent == 31) return mantissa == 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * Math.pow(2, <f64>(exponent - 15));
}
