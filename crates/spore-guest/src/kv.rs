//! The `kv` ability: a key-value store, one namespace per binding.
//!
//! Keys are text of 1 to 1024 bytes; values are any CBOR item (anything `Serialize`),
//! at most the binding's `max_value_bytes` encoded (1 MiB by default). A stored null
//! reads back as absent.
//!
//! ```no_run
//! use spore_guest::kv;
//!
//! # fn main() -> Result<(), spore_guest::ability::AbilityError> {
//! kv::put("greeting", "hello")?;
//! let greeting: Option<String> = kv::get("greeting")?;
//!
//! // An atomic increment: retry while someone else got there first.
//! loop {
//!     let current: Option<u64> = kv::get("count")?;
//!     let next = current.unwrap_or(0) + 1;
//!     if kv::cas("count", current.as_ref(), Some(&next))? {
//!         break;
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ability::AbilityError;

spore_guest_macros::ability!(ops = "kv" { get, put, delete, list, cas });

#[derive(Serialize)]
struct Key<'a> {
    key: &'a str,
}

#[derive(Serialize)]
struct Put<'a, T: ?Sized> {
    key: &'a str,
    value: &'a T,
}

#[derive(Serialize)]
struct List<'a> {
    prefix: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
}

#[derive(Serialize)]
struct Cas<'a, T: ?Sized> {
    key: &'a str,
    expected: Option<&'a T>,
    new: Option<&'a T>,
}

/// The value stored under `key`, or `None` when there is none.
///
/// A value that does not deserialize into `T` is an error of kind `bad_response`;
/// ask for [`Value`](crate::Value) to take whatever is there.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, AbilityError> {
    ops::get(&Key { key })
}

/// Stores `value` under `key`, replacing what was there.
pub fn put<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), AbilityError> {
    ops::put(&Put { key, value })
}

/// Removes `key`; whether it existed.
pub fn delete(key: &str) -> Result<bool, AbilityError> {
    ops::delete(&Key { key })
}

/// The keys starting with `prefix`, in byte order: at most `limit` of them (the host's
/// default, 1000, when `None`; at most 10000).
pub fn list(prefix: &str, limit: Option<u32>) -> Result<Vec<String>, AbilityError> {
    ops::list(&List { prefix, limit })
}

/// Compare-and-swap: sets `key` to `new` only if its current value is `expected`, and
/// says whether it did. `None` as `expected` means "absent"; `None` as `new` deletes.
///
/// Values compare by their canonical CBOR encoding, so `expected` must be the same
/// value as the stored one, not merely an equal Rust value of another type (an integer
/// is not equal to a float). When both are `None`, name the type:
/// `kv::cas::<()>(key, None, None)`.
pub fn cas<T: Serialize + ?Sized>(
    key: &str,
    expected: Option<&T>,
    new: Option<&T>,
) -> Result<bool, AbilityError> {
    ops::cas(&Cas { key, expected, new })
}
