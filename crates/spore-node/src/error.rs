use crate::config::ConfigError;
use spore_core::manifest::OverLimit;
use spore_core::name::NameError;
use spore_core::reference::RefParseError;
use spore_core::{ErrorKind, ExportError, Failure, ModuleError, Name};
use spore_runtime::{InvokeError, LoadError};
use spore_store::StoreError;

/// Any failure of a node operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error("cannot create the spore home at {path}: {source}")]
    Home {
        path: String,
        source: std::io::Error,
    },
    #[error("the module was refused: {0}")]
    InvalidModule(#[from] ModuleError),
    #[error("the module was refused: {over}; the limit is `limits.module.{}` in {config}", over.limit.key())]
    ModuleLimit { over: OverLimit, config: String },
    #[error("{function} asks for {} of memory, over this node's most of {} (`limits.max_memory` in {config})", crate::format_size(*requested), crate::format_size(*max))]
    MemoryOverMax {
        function: String,
        requested: u64,
        max: u64,
        config: String,
    },
    #[error(transparent)]
    Reference(#[from] RefParseError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Invoke(InvokeError),
    #[error("`{name}` points at {target}, which this codebase does not hold")]
    DanglingName { name: Name, target: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The mesh failed: a peer could not be reached or answered late.
    #[error(transparent)]
    Mesh(Box<spore_mesh::MeshError>),
    /// Code could not be fetched from the mesh.
    #[error(transparent)]
    Fetch(Box<spore_mesh::FetchError>),
    /// No place to run the call: no peer binds what it needs, a bad or unreachable pin.
    #[error("{0}")]
    Placement(Box<Failure>),
    /// The call failed on the peer it was forwarded to; the failure keeps its kind.
    #[error("{} (on peer {peer})", failure.message)]
    Remote { peer: String, failure: Box<Failure> },
    #[error("{file}: the binding of `{ability}` is invalid: {message}")]
    Binding {
        file: String,
        ability: String,
        message: String,
    },
    /// A key, a record or a trust file refused or unreadable.
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustStoreError),
    #[error("the module imports `{import}`, {}", if *ability_known { format!("an operation its ability does not have (see spec/abilities.md, or the operations declared in {config})") } else { format!("which names no ability this node knows; use a built-in ability or declare it in {config}: [abilities.NAME] operations = [...]") })]
    UnknownImport {
        import: String,
        ability_known: bool,
        config: String,
    },
}

// Boxed: a peer id is some 80 bytes, and errors travel by value on every call's return
// path.
impl From<spore_mesh::MeshError> for NodeError {
    fn from(error: spore_mesh::MeshError) -> Self {
        NodeError::Mesh(Box::new(error))
    }
}

impl From<spore_mesh::FetchError> for NodeError {
    fn from(error: spore_mesh::FetchError) -> Self {
        NodeError::Fetch(Box::new(error))
    }
}

impl From<InvokeError> for NodeError {
    fn from(error: InvokeError) -> Self {
        match error {
            InvokeError::Load(load) => NodeError::Load(load),
            InvokeError::Export(export) => NodeError::Export(export),
            other => NodeError::Invoke(other),
        }
    }
}

impl NodeError {
    /// A call that cannot be placed: a bad or unreachable pin, no node binding what it
    /// needs, a malformed request at the edge.
    pub fn placement(kind: ErrorKind, message: impl Into<String>) -> NodeError {
        NodeError::Placement(Box::new(Failure::new(kind, message)))
    }

    /// Whether this is the codebase's index failing its own checks as a whole (then only
    /// `Codebase::salvage` can open the home again).
    pub fn is_damaged_index(&self) -> bool {
        matches!(
            self,
            NodeError::Store(spore_store::StoreError::Corrupt {
                item: spore_store::Damaged::Index(_),
                ..
            })
        )
    }

    /// The kind of failure, of the one taxonomy (`spec/errors.md`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            NodeError::Home { .. } => ErrorKind::Internal,
            NodeError::InvalidModule(_) | NodeError::UnknownImport { .. } => {
                ErrorKind::InvalidModule
            }
            NodeError::ModuleLimit { .. } | NodeError::MemoryOverMax { .. } => ErrorKind::TooLarge,
            NodeError::Config(_) | NodeError::Binding { .. } => ErrorKind::BadRequest,
            NodeError::Mesh(mesh) => mesh.kind(),
            NodeError::Fetch(fetch) => fetch.kind(),
            NodeError::Placement(failure) | NodeError::Remote { failure, .. } => failure.kind,
            NodeError::Reference(_) | NodeError::Name(_) => ErrorKind::BadRequest,
            NodeError::Export(export) => spore_runtime::export_kind(export),
            NodeError::Store(store) => store.kind(),
            NodeError::Load(load) => load.kind(),
            NodeError::DanglingName { .. } => ErrorKind::NotFound,
            NodeError::Invoke(invoke) => invoke.kind(),
            NodeError::Trust(trust) => trust.kind(),
        }
    }

    /// For a name that does not exist, the names a person likely meant
    /// ([`Node::suggest`](crate::Node::suggest) fills them).
    pub fn suggestions(&self) -> &[Name] {
        match self {
            NodeError::Store(StoreError::NameNotFound { suggestions, .. }) => suggestions,
            _ => &[],
        }
    }

    /// Whether the call stopped before any of it ran, here or on a peer: a placement
    /// decision (a policy, the hop limit, no peer binding what it needs, none that
    /// would take it). Every [`NodeError::Placement`] is made before anything runs.
    pub fn ran_nothing(&self) -> bool {
        matches!(self, NodeError::Placement(_))
    }

    /// The error as it travels to a peer, the HTTP API or `--json` (`spec/errors.md`):
    /// its kind, its message, and for a guest error the value the function returned.
    pub fn to_failure(&self) -> Failure {
        Failure {
            kind: self.kind(),
            message: self.to_string(),
            value: match self {
                NodeError::Invoke(InvokeError::Guest { error, .. }) => Some(error.clone()),
                _ => None,
            },
        }
    }
}
