//! A spore node: one home directory, its codebase and its runtime, wired together
//! behind the operations people use (publish, resolve, invoke, names, inspect).
//!
//! This is the facade the CLI and the HTTP API call; they must not reach past it into
//! the store or the runtime. It must not know about argument parsing, terminals or
//! output formats: it takes and returns typed values.

mod bindings;
mod call;
pub mod config;
mod error;
mod handle;
mod handler;
mod home;
mod memo;
mod node;
mod placement;
mod size;

pub use bindings::Shapes;
pub use config::{ConfigError, NodeConfig};
pub use error::NodeError;
pub use home::Home;
pub use node::{AbilityInfo, InvokeOptions, MemoUse, ModuleInfo, Node, Outcome, Published};
pub use placement::{MAX_HOPS, NodeHost, Placed, Placement};
pub use size::parse_size;
pub use spore_core::ErrorKind;
pub use spore_mesh::{self as mesh, PathStep, PeerId};

pub use spore_runtime::{
    CallEnv, CallStats, Invocation, InvokeError, Limits, LoadSource, RuntimeConfig,
};
pub use spore_store::{NameEntry, NameEvent};
