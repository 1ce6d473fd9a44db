//! The pure heart of spore: content hashes, function references, names, manifests,
//! the value codec, the one call request and the one error taxonomy that every layer
//! carries, frames, and the guest ABI's constants.
//!
//! Everything here is a function of its inputs. This crate must not know about
//! storage, the network, wasmtime or threads: it never performs IO, so every other
//! layer (store, runtime, mesh, CLI) can rely on it without inheriting any effect. The
//! one exception is the monotonic clock, read only to carry a call's deadline across
//! the wire as the time left (`call`). Formats defined here are normative in `spec/`.

pub mod abi;
pub mod call;
pub mod error;
pub mod frame;
pub mod hash;
pub mod manifest;
pub mod name;
pub mod reference;
pub mod signature;
pub mod text;
pub mod topic;
pub mod trust;
pub mod value;

pub use call::{
    Args, CallRequest, CallStats, Cancel, LoadSource, MAX_HOPS, MemoUse, Path, PathStep, Placement,
    SpanId, Tier, TraceId,
};
pub use error::{ErrorKind, Failure};
pub use hash::{Hash, HashPrefix};
pub use manifest::{ExportError, Import, Manifest, ModuleError};
pub use name::Name;
pub use reference::{ExportName, FunctionRef, RefText};
