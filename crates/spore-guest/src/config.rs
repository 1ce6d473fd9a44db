//! The `config` ability: values from the `[config]` table of the node's configuration.
//!
//! ```no_run
//! # fn main() -> Result<(), spore_guest::ability::AbilityError> {
//! let greeting: String = spore_guest::config::get("greeting")?.unwrap_or_else(|| "hello".into());
//! # Ok(())
//! # }
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ability::AbilityError;

spore_guest_macros::ability!(ops = "config" { get });

#[derive(Serialize)]
struct Get<'a> {
    key: &'a str,
}

/// The value configured under `key`, or `None` when there is none.
///
/// A value that does not deserialize into `T` is an error of kind `bad_response`.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, AbilityError> {
    ops::get(&Get { key })
}
