// Between spore values and AssemblyScript types, chosen at compile time from the type
// (as serde does for the Rust SDK): integers of every width, floats (an integer is
// taken where the float holds it exactly, as JSON clients write `1` for `1.0`), bool,
// string, Uint8Array (a byte string), arrays of these, http.RouteRequest, and Value for
// anything else.

import { RouteRequest } from "./http";
import { Kind, Value } from "./value";

/** A converted value, or why the value does not fit the type. */
export class Converted<T> {
  constructor(
    public ok: bool,
    public value: T,
    public reason: string,
  ) {}
}

/** The zero of any type: what a failed conversion holds, never handed to user code. */
// @ts-ignore: decorator
@inline export function zero<T>(): T {
  if (isReference<T>()) return changetype<T>(0);
  // @ts-ignore: a number type here
  return <T>0;
}

function fits<T>(value: T): Converted<T> {
  return new Converted<T>(true, value, "");
}

function refused<T>(expected: string, value: Value): Converted<T> {
  return new Converted<T>(false, zero<T>(), `expected ${expected}, got ${describe(value)}`);
}

/** How a value is named in errors. */
export function describe(value: Value): string {
  switch (value.kind) {
    case Kind.Int:
      if (value.isI64()) return `integer ${value.toI64()}`;
      return value.negative ? `integer -${value.magnitude} - 1` : `integer ${value.magnitude}`;
    case Kind.Float:
      return `float ${value.float}`;
    case Kind.Bytes:
      return "a byte string";
    case Kind.Text:
      return "a text string";
    case Kind.Array:
      return "an array";
    case Kind.Map:
      return "a map";
    case Kind.Tag:
      return `tag ${value.tag}`;
    case Kind.Bool:
      return value.bool ? "true" : "false";
    default:
      return "null";
  }
}

/** Reads `value` as a `T`. */
export function fromValue<T>(value: Value): Converted<T> {
  if (isBoolean<T>()) {
    // @ts-ignore: T is bool
    if (value.kind == Kind.Bool) return fits<T>(<T>value.bool);
    return refused<T>("a boolean", value);
  } else if (isInteger<T>()) {
    return integer<T>(value);
  } else if (isFloat<T>()) {
    if (value.kind == Kind.Float) {
      // @ts-ignore: T is f32 or f64
      if (sizeof<T>() == 8 || isNaN(value.float) || <f64>(<f32>value.float) == value.float) return fits<T>(<T>value.float);
      return refused<T>("a float that single precision holds", value);
    }
    if (value.kind == Kind.Int) {
      // An integer is taken where the float holds it exactly.
      const exact = exactFloat(value, sizeof<T>() == 4);
      // @ts-ignore: T is f32 or f64
      if (!isNaN(exact)) return fits<T>(<T>exact);
      return refused<T>("a float (this integer has no exact float)", value);
    }
    return refused<T>("a float", value);
  } else if (isNullable<T>()) {
    if (value.kind == Kind.Null) return fits<T>(changetype<T>(0));
    const inner = fromValue<NonNullable<T>>(value);
    return new Converted<T>(inner.ok, changetype<T>(inner.value), inner.reason);
  } else if (isString<T>()) {
    // @ts-ignore: T is string
    if (value.kind == Kind.Text) return fits<T>(changetype<T>(value.text!));
    return refused<T>("a text string", value);
  } else if (idof<T>() == idof<Value>()) {
    return fits<T>(changetype<T>(value));
  } else if (idof<T>() == idof<Uint8Array>()) {
    if (value.kind == Kind.Bytes) return fits<T>(changetype<T>(value.bytes!));
    return refused<T>("a byte string", value);
  } else if (idof<T>() == idof<RouteRequest>()) {
    const request = RouteRequest.fromValue(value);
    if (request !== null) return fits<T>(changetype<T>(request));
    return refused<T>("an HTTP route's request {method, path, params, query, headers, body}", value);
  } else if (isArray<T>()) {
    if (value.kind != Kind.Array) return refused<T>("an array", value);
    const items = value.items!;
    const out = instantiate<T>();
    for (let i = 0; i < items.length; i++) {
      const item = fromValue<valueof<T>>(items[i]);
      if (!item.ok) return new Converted<T>(false, zero<T>(), `item ${i}: ${item.reason}`);
      // @ts-ignore: T is an array of valueof<T>
      out.push(item.value);
    }
    return fits<T>(out);
  } else {
    ERROR("spore: a parameter must be an integer, float, bool, string, Uint8Array, Value, http.RouteRequest or an array of these");
    return refused<T>("", value);
  }
}

function integer<T>(value: Value): Converted<T> {
  if (value.kind != Kind.Int) return refused<T>(`an integer (${nameof<T>()})`, value);
  const bits = <u64>sizeof<T>() * 8;
  if (isSigned<T>()) {
    // In [-2^(bits-1), 2^(bits-1) - 1]: the magnitude (or -1 - value) below 2^(bits-1).
    if (value.magnitude >= (<u64>1 << (bits - 1))) return refused<T>(`an integer in the range of ${nameof<T>()}`, value);
    // @ts-ignore: T is a signed integer
    return fits<T>(<T>value.toI64());
  }
  if (value.negative || (bits < 64 && value.magnitude >= (<u64>1 << bits))) {
    return refused<T>(`an integer in the range of ${nameof<T>()}`, value);
  }
  // @ts-ignore: T is an unsigned integer
  return fits<T>(<T>value.magnitude);
}

/** The float that holds the integer exactly, or NaN when there is none. */
function exactFloat(value: Value, single: bool): f64 {
  // Integers of up to 24 (single) or 53 (double) significant bits are exact; larger
  // ones are when their low bits are zero. -2^64 (magnitude 2^64-1, negative) is too.
  let m = value.magnitude;
  let f: f64;
  if (value.negative) {
    if (m == u64.MAX_VALUE) return -18446744073709551616.0;
    m += 1;
    f = -(<f64>m);
  } else f = <f64>m;
  const significant = 64 - <i32>clz(m) - <i32>ctz(m);
  if (m != 0 && significant > (single ? 24 : 53)) return NaN;
  return f;
}

/** `x` as a spore value. */
export function toValue<T>(x: T): Value {
  if (isBoolean<T>()) {
    // @ts-ignore: T is bool
    return Value.boolean(<bool>x);
  } else if (isInteger<T>()) {
    // @ts-ignore: T is an integer
    return isSigned<T>() ? Value.int(<i64>x) : Value.uint(<u64>x);
  } else if (isFloat<T>()) {
    // @ts-ignore: T is a float
    return Value.float64(<f64>x);
  } else {
    if (isNullable<T>()) {
      if (changetype<usize>(x) == 0) return Value.null();
    }
    if (isString<T>()) {
      // @ts-ignore: T is string
      return Value.str(changetype<string>(x));
    } else if (idof<NonNullable<T>>() == idof<Value>()) {
      return changetype<Value>(x);
    } else if (idof<NonNullable<T>>() == idof<Uint8Array>()) {
      return Value.fromBytes(changetype<Uint8Array>(x));
    } else if (isArray<T>()) {
      const out = Value.array();
      // @ts-ignore: T is an array
      const items = changetype<NonNullable<T>>(x);
      // @ts-ignore: T is an array
      for (let i = 0; i < items.length; i++) out.push(toValue<valueof<T>>(items[i]));
      return out;
    } else if (isDefined(changetype<NonNullable<T>>(x).toValue)) {
      // Any class with `toValue(): Value` (AbilityError, http.Response, your own).
      // @ts-ignore: checked by isDefined
      return changetype<NonNullable<T>>(x).toValue();
    } else {
      ERROR("spore: a result must be an integer, float, bool, string, Uint8Array, Value, an array of these, or have toValue(): Value");
      return Value.null();
    }
  }
}
