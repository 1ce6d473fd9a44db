// What a function returns when it can fail: `Result<T, E>`, as in the Rust SDK. An
// `err` is the function's error value (status 0x01 in spec/abi.md); ability clients
// return `Result<T, AbilityError>`.

import { zero } from "./convert";

export class Result<T, E> {
  private constructor(
    public readonly isOk: bool,
    private readonly _value: T,
    private readonly _error: E,
  ) {}

  static ok<T, E>(value: T): Result<T, E> {
    return new Result<T, E>(true, value, zero<E>());
  }

  static err<T, E>(error: E): Result<T, E> {
    return new Result<T, E>(false, zero<T>(), error);
  }

  get isErr(): bool {
    return !this.isOk;
  }

  /** The value; traps (with a message) on an error. */
  get value(): T {
    assert(this.isOk, "Result.value on an error");
    return this._value;
  }

  /** The error; traps (with a message) on a value. */
  get error(): E {
    assert(!this.isOk, "Result.error on a value");
    return this._error;
  }

  /** The value, or `fallback` on an error. */
  valueOr(fallback: T): T {
    return this.isOk ? this._value : fallback;
  }
}
