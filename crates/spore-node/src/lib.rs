//! A spore node: one home directory, its codebase and its runtime, wired together
//! behind the operations people use (publish, resolve, invoke, names, inspect).
//!
//! This is the facade the CLI and the HTTP API call; they must not reach past it into
//! the store or the runtime. It must not know about argument parsing, terminals or
//! output formats: it takes and returns typed values.

mod bindings;
mod call_ability;
mod calling;
pub mod config;
mod error;
mod handle;
mod handler;
pub mod home;
mod host;
mod identity;
mod memo;
mod mesh_names;
pub mod metrics;
mod node;
mod peer_limits;
mod placement;
mod placement_cache;
pub mod routes;
pub mod schedules;
mod size;
pub mod subscriptions;
pub mod suggest;
mod topic_gossip;
pub mod trace_bridge;
pub mod trust;

pub use bindings::Shapes;
pub use calling::{Called, Outcome};
pub use config::{ConfigError, NodeConfig};
pub use error::NodeError;
pub use home::Home;
pub use host::NodeHost;
pub use identity::Identity;
pub use mesh_names::Believed;
pub use node::{AbilityInfo, ModuleInfo, Node, NodeOptions, Published, Role, salvage_home};
pub use size::{check_memory, format_size, parse_size};
pub use spore_core::{
    Args, CallRequest, CallStats, Cancel, ErrorKind, Failure, LoadSource, MAX_HOPS, MemoUse, Path,
    PathStep, Placement, TraceId,
};
pub use spore_mesh::{self as mesh, PeerId};
pub use spore_runtime::{
    CallEnv, Compiler, Invocation, InvokeError, Limits, RuntimeConfig, serve_compile,
};
pub use spore_store::{
    Damage, Damaged, GcReport, NameEntry, NameEvent, Removed, RepairReport, SalvageReport,
    VerifyReport,
};
pub use trust::{TrustStore, TrustStoreError};
