//! Functions that misbehave on purpose, to test how the host contains them: endless
//! loops, memory hogs, stack overflows, panics and returned errors.

use std::hint::black_box;

use spore_guest::{Value, function};

/// Never returns; only the host's deadline ends it.
#[function]
fn spin() {
    let mut counter = 0u64;
    loop {
        // Opaque to the optimizer, so the loop cannot be proven side-effect free.
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Allocates `mib` MiB and writes to every 4 KiB page of it, so the memory is really
/// grown; returns the number of bytes allocated.
#[function]
fn hog(mib: u32) -> u64 {
    let len = (mib as usize) << 20;
    let mut block = black_box(Vec::<u8>::with_capacity(len));
    block.resize(len, 0);
    for page in block.chunks_mut(4096) {
        page[0] = black_box(1);
    }
    black_box(&block).len() as u64
}

/// Recurses `depth` times without tail calls; a big depth exhausts the Wasm stack.
#[function]
fn recurse(depth: u64) -> u64 {
    descend(depth)
}

#[inline(never)]
fn descend(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    // black_box on the result keeps the addition after the call, so the recursion
    // cannot become a loop.
    black_box(descend(black_box(depth - 1))) + 1
}

/// Panics with `msg`: a trap whose message the host recovers via `spore_panic_message`.
#[function]
fn boom(msg: String) {
    panic!("{msg}");
}

/// Returns `msg` as the function's error value.
#[function]
fn fail(msg: String) -> Result<(), String> {
    Err(msg)
}

/// Returns its argument unchanged, whatever CBOR it is.
#[function]
fn echo(value: Value) -> Value {
    value
}
