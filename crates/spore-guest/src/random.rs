//! The `random` ability: bytes from the node's operating-system generator.
//!
//! ```no_run
//! # fn main() -> Result<(), spore_guest::ability::AbilityError> {
//! let nonce = spore_guest::random::bytes(16)?;
//! assert_eq!(nonce.len(), 16);
//! # Ok(())
//! # }
//! ```

use crate::ability::AbilityError;
use crate::bytes::ByteBuf;

spore_guest_macros::ability!(ops = "random" { bytes });

/// `n` random bytes; `n` is at most 65536, larger requests fail with `bad_request`.
pub fn bytes(n: u32) -> Result<Vec<u8>, AbilityError> {
    ops::bytes(&n).map(|ByteBuf(bytes)| bytes)
}
