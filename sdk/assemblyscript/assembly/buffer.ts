// A growable byte buffer for the encoder.

export class ByteWriter {
  private data: Uint8Array = new Uint8Array(64);
  length: i32 = 0;

  private reserve(extra: i32): void {
    const needed = this.length + extra;
    if (needed <= this.data.length) return;
    let size = this.data.length * 2;
    while (size < needed) size *= 2;
    const grown = new Uint8Array(size);
    memory.copy(grown.dataStart, this.data.dataStart, <usize>this.length);
    this.data = grown;
  }

  byte(b: u8): void {
    this.reserve(1);
    unchecked((this.data[this.length++] = b));
  }

  /** `n` bytes of `value`, big-endian. */
  bigEndian(value: u64, n: i32): void {
    this.reserve(n);
    for (let i = n - 1; i >= 0; i--) {
      unchecked((this.data[this.length++] = <u8>(value >> (<u64>(i * 8)))));
    }
  }

  raw(bytes: Uint8Array): void {
    this.rawAt(bytes.dataStart, bytes.length);
  }

  rawAt(ptr: usize, len: i32): void {
    this.reserve(len);
    memory.copy(this.data.dataStart + <usize>this.length, ptr, <usize>len);
    this.length += len;
  }

  /** The bytes written so far, copied. */
  finish(): Uint8Array {
    return this.data.slice(0, this.length);
  }
}
