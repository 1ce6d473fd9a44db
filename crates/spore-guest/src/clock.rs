//! The `clock` ability: wall-clock time.
//!
//! ```no_run
//! # fn main() -> Result<(), spore_guest::ability::AbilityError> {
//! let now_ms = spore_guest::clock::now()?;
//! # Ok(())
//! # }
//! ```

use crate::ability::AbilityError;

spore_guest_macros::ability!(ops = "clock" { now });

/// The node's wall-clock time, in milliseconds since the Unix epoch.
pub fn now() -> Result<u64, AbilityError> {
    ops::now(&())
}
