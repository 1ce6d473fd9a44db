//! Starts spore function crates outside the repository: the Rust SDK that the `spore`
//! binary carries and installs under the home ([`sdk`]), and the crate `spore new`
//! writes ([`template`]).
//!
//! It knows nothing about homes, nodes or stores (the caller says where the SDK goes),
//! nor about building: that is `spore-build`'s job.

pub mod sdk;
pub mod template;
