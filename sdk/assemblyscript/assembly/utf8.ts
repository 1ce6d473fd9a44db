// Strict UTF-8 validation (RFC 3629): spore refuses text that is not valid UTF-8
// (spec/values.md), where String.UTF8.decode would quietly replace it.

/** Whether the `len` bytes at `ptr` are valid UTF-8. */
export function validUtf8(ptr: usize, len: i32): bool {
  let i = 0;
  while (i < len) {
    const b0 = <u32>load<u8>(ptr + <usize>i);
    if (b0 < 0x80) {
      i++;
      continue;
    }
    let need = 0;
    let min: u32 = 0;
    let cp: u32 = 0;
    if ((b0 & 0xe0) == 0xc0) {
      need = 1;
      min = 0x80;
      cp = b0 & 0x1f;
    } else if ((b0 & 0xf0) == 0xe0) {
      need = 2;
      min = 0x800;
      cp = b0 & 0x0f;
    } else if ((b0 & 0xf8) == 0xf0) {
      need = 3;
      min = 0x10000;
      cp = b0 & 0x07;
    } else return false;
    if (i + need >= len) return false; // the sequence is cut short
    for (let k = 1; k <= need; k++) {
      const b = <u32>load<u8>(ptr + <usize>(i + k));
      if ((b & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += need + 1;
  }
  return true;
}
