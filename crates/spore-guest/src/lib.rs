//! Write spore functions in Rust.
//!
//! A spore function is an export of a core WebAssembly module that follows the guest
//! ABI in `spec/abi.md`: it receives its arguments as one CBOR array and answers with a
//! status byte and one CBOR item. This crate implements that ABI for a `cdylib` built
//! for `wasm32-unknown-unknown`: annotate ordinary Rust functions with
//! [`#[spore_guest::function]`](function) and the crate provides the exports the host
//! needs (`spore_alloc`, `spore_panic_message`), the argument decoding, the result
//! encoding and the panic reporting.
//!
//! ```
//! #[spore_guest::function]
//! fn add(a: i64, b: i64) -> Result<i64, String> {
//!     a.checked_add(b).ok_or_else(|| format!("{a} + {b} overflows"))
//! }
//!
//! // Still an ordinary function natively.
//! # fn main() {
//! assert_eq!(add(2, 3), Ok(5));
//! # }
//! ```
//!
//! with, in the function crate's `Cargo.toml`:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//! ```
//!
//! This crate is the guest's whole view of spore. It must not know about the host side:
//! no runtime, store, node, network or scheduling concepts, and no particular ability's
//! semantics. Those live in the host crates and in `spec/`; what is shared is only the
//! byte-level contract of `spec/abi.md` and the value model of `spec/values.md`.

pub mod ability;

#[doc(hidden)]
pub mod __private;

pub use spore_guest_macros::function;

/// Any CBOR value, for functions that take or return data of no fixed shape.
pub use ciborium::Value;
