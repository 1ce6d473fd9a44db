//! `value::check` runs on every result a function returns, before anything else reads
//! it: it must not allocate, however large or deep the input. Its own test binary,
//! because it needs a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use spore_core::value::{MAX_DEPTH, check, encode_canonical};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: as the caller guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations_of(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn check_does_not_allocate() {
    let json = serde_json::json!({
        "text": "x".repeat(10_000),
        "numbers": (0..10_000).collect::<Vec<_>>(),
        "floats": [0.1, -0.0, 1e300],
        "nested": [[[[{"a": null, "b": true}]]]],
    });
    let mut inputs = vec![encode_canonical(&spore_core::value::from_json(&json).unwrap()).unwrap()];
    // Deepest allowed, with indefinite lengths and chunked strings.
    let mut deep = vec![0x9f; MAX_DEPTH - 1];
    deep.extend([0x7f, 0x61, b'a', 0x62, 0xc3, 0xa9, 0xff]);
    deep.extend(vec![0xff; MAX_DEPTH - 1]);
    inputs.push(deep);
    // Refusals allocate nothing either.
    inputs.push(vec![0x81; 1 << 16]);
    inputs.push(vec![0x82, 0x01, 0xf8, 0x20]);
    for input in &inputs {
        assert_eq!(allocations_of(|| drop(check(input))), 0);
    }
    assert_eq!(check(&inputs[1]), Ok(()));
    // The counter counts.
    assert!(allocations_of(|| drop(spore_core::value::decode(&inputs[0]))) > 0);
}
