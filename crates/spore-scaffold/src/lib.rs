//! Starts spore function crates outside the repository: the Rust SDK that the `spore`
//! binary carries and copies into each new crate ([`sdk`]), the crate `spore new` writes
//! ([`template`]), and the TypeScript SDK with the project `spore new --lang ts` writes
//! ([`typescript`]).
//!
//! It knows nothing about homes, nodes or stores (the caller says where the SDK goes),
//! nor about building: that is `spore-build`'s job.

pub mod sdk;
pub mod template;
pub mod typescript;
