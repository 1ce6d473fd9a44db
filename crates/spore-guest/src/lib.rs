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
//! Arguments are deserialized with serde from their CBOR. Where a float (`f32`, `f64`)
//! is expected, at any depth, an integer is accepted if the float holds it exactly, as
//! JSON clients write `1` for `1.0`; `2^53 + 1` for an `f64` is refused. Ability results
//! are read the same way.
//!
//! # Abilities
//!
//! A function reaches the world only through *abilities* (`spec/abilities.md`), each a
//! set of operations imported from the host. The built-in ones have typed clients:
//!
//! | module     | operations                                                  |
//! |------------|-------------------------------------------------------------|
//! | [`log`]    | [`debug`](log::debug), [`info`](log::info), [`warn`](log::warn), [`error`](log::error) |
//! | [`clock`]  | [`now`](clock::now)                                         |
//! | [`random`] | [`bytes`](random::bytes)                                    |
//! | [`kv`]     | [`get`](kv::get), [`put`](kv::put), [`delete`](kv::delete), [`list`](kv::list), [`cas`](kv::cas) |
//! | [`http`]   | [`get`](http::get), [`request`](http::request)              |
//! | [`topic`]  | [`publish`](topic::publish); subscribers get a [`Delivery`](topic::Delivery) |
//! | [`config`] | [`get`](config::get)                                        |
//! | [`call`](mod@call) | [`invoke`](call::invoke), also as [`call()`]                |
//!
//! and [`ability!`] declares a custom ability. A module imports exactly the operations
//! its code calls, and a node runs its functions only if it binds every ability they
//! import. Failures are values ([`AbilityError`](ability::AbilityError)), never traps.
//!
//! ```no_run
//! use spore_guest::{function, kv};
//!
//! /// Counts the visits of `page`.
//! #[function]
//! fn hit(page: String) -> Result<u64, String> {
//!     let key = format!("visits/{page}");
//!     let count = kv::get::<u64>(&key).map_err(|e| e.to_string())?.unwrap_or(0) + 1;
//!     kv::put(&key, &count).map_err(|e| e.to_string())?;
//!     Ok(count)
//! }
//! ```
//!
//! Natively (in `cargo test`) there is no host: ability calls fail with kind
//! `unavailable`, unless [`testing::with_abilities`] fakes them.
//!
//! # Scope
//!
//! This crate is the guest's whole view of spore. It must not know about the host side:
//! no runtime, store, node, network or scheduling concepts. What is shared is only the
//! byte-level contract of `spec/abi.md`, the value model of `spec/values.md` and the
//! request and response shapes of `spec/abilities.md`.

// So that the code `ability!` generates (`::spore_guest::...`) works in this crate too.
extern crate self as spore_guest;

pub mod ability;
pub mod call;
pub mod clock;
pub mod config;
pub mod http;
pub mod kv;
pub mod log;
pub mod random;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod topic;

#[doc(hidden)]
pub mod __private;
mod bytes;
mod floats;

pub use call::invoke as call;
pub use spore_guest_macros::function;

/// Declares a custom ability: a module with one function per operation.
///
/// `ability!(sensor { read, calibrate })` generates a module `sensor` with
///
/// ```ignore
/// pub fn read<Request, Response>(request: &Request) -> Result<Response, AbilityError>
/// where
///     Request: Serialize + ?Sized,
///     Response: DeserializeOwned;
/// ```
///
/// (and `calibrate` alike), each importing its operation on `wasm32` (import module
/// `sensor`, field `read`) and calling it as [`ability::call`] does: the request is
/// encoded as one CBOR item, the result decoded into `Response`, a failure returned as
/// an [`AbilityError`](ability::AbilityError). The node must bind the ability (an
/// external provider process, a Wasm handler, ...) and declare the same operations in
/// its configuration; publishing checks every import against the declared shapes.
///
/// ```
/// use serde::Deserialize;
///
/// spore_guest::ability!(
///     /// The temperature sensors of the house.
///     pub sensor {
///         /// Reads one sensor: the request is its id.
///         read,
///         calibrate,
///     }
/// );
///
/// #[derive(Deserialize)]
/// struct Reading {
///     value: f64,
///     unit: String,
/// }
///
/// fn attic() -> Result<f64, spore_guest::ability::AbilityError> {
///     let reading: Reading = sensor::read("attic")?;
///     Ok(reading.value)
/// }
/// ```
///
/// Syntax: outer attributes (doc comments) and a visibility for the module, then the
/// module's name and the operations in braces, each optionally with attributes. The
/// ability and operation names are the identifiers; names that are not Rust
/// identifiers (ability words may contain `-`) are given as strings:
///
/// ```
/// spore_guest::ability!(pub(crate) sensor_hub = "sensor-hub" { read_all = "read-all" });
///
/// let result: Result<Vec<f64>, _> = sensor_hub::read_all(&());
/// // A native build has no host.
/// assert_eq!(result.unwrap_err().kind(), spore_guest::ability::kind::UNAVAILABLE);
/// ```
///
/// Names must be ability words (`[a-z][a-z0-9_-]*`, at most 64 bytes) and operations
/// distinct, or the macro refuses them:
///
/// ```compile_fail
/// spore_guest::ability!(Sensor { read });
/// ```
///
/// ```compile_fail
/// spore_guest::ability!(sensor { read, read });
/// ```
///
/// Only the operations a module actually calls
/// become imports. Natively the functions fail with kind `unavailable`, or go to the
/// fake providers of [`testing`].
pub use spore_guest_macros::ability;

/// Any CBOR value, for functions that take or return data of no fixed shape.
pub use ciborium::Value;
