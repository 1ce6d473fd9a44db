use crate::config::ConfigError;
use spore_core::name::NameError;
use spore_core::reference::RefParseError;
use spore_core::{ExportError, ModuleError, Name};
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
    /// A failure in the mesh: fetching code, finding a peer, or a call that ran there.
    #[error("{message}")]
    Mesh { kind: ErrorKind, message: String },
    #[error("{file}: the binding of `{ability}` is invalid: {message}")]
    Binding {
        file: String,
        ability: String,
        message: String,
    },
    #[error("the module imports `{import}`, {}", if *ability_known { format!("an operation its ability does not have (see spec/abilities.md, or the operations declared in {config})") } else { format!("which names no ability this node knows; use a built-in ability or declare it in {config}: [abilities.NAME] operations = [...]") })]
    UnknownImport {
        import: String,
        ability_known: bool,
        config: String,
    },
}

/// What kind of failure an error is, for exit codes and HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is wrong: bad reference, ambiguous prefix, bad arguments.
    Usage,
    /// A hash, name or function that does not exist here.
    NotFound,
    /// The function ran and returned an error value.
    Guest,
    /// The function trapped or hit a limit.
    Trap,
    /// A module that is not a valid spore module.
    InvalidModule,
    /// Stored data failed its integrity check.
    Corrupt,
    /// The home is in use or the node is at capacity; trying again may work.
    Unavailable,
    /// Anything else (IO, internal).
    Other,
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
    pub fn kind(&self) -> ErrorKind {
        match self {
            NodeError::Home { .. } => ErrorKind::Other,
            NodeError::InvalidModule(_) | NodeError::UnknownImport { .. } => {
                ErrorKind::InvalidModule
            }
            NodeError::Config(_) | NodeError::Binding { .. } => ErrorKind::Usage,
            NodeError::Mesh { kind, .. } => *kind,
            NodeError::Reference(_) | NodeError::Name(_) => ErrorKind::Usage,
            NodeError::Export(ExportError::Unspecified { .. }) => ErrorKind::Usage,
            NodeError::Export(_) => ErrorKind::NotFound,
            NodeError::Store(store) | NodeError::Load(LoadError::Store(store)) => store_kind(store),
            NodeError::Load(_) => ErrorKind::InvalidModule,
            NodeError::DanglingName { .. } => ErrorKind::NotFound,
            NodeError::Invoke(invoke) => match invoke {
                InvokeError::Guest { .. } => ErrorKind::Guest,
                InvokeError::BadArguments { .. } => ErrorKind::Usage,
                InvokeError::UnboundAbilities { .. } => ErrorKind::NotFound,
                InvokeError::Trap { .. }
                | InvokeError::Timeout { .. }
                | InvokeError::MemoryLimit { .. }
                | InvokeError::StackOverflow { .. }
                | InvokeError::AbiViolation { .. } => ErrorKind::Trap,
                InvokeError::Instantiate { .. } => ErrorKind::Unavailable,
                _ => ErrorKind::Other,
            },
        }
    }
}

fn store_kind(error: &StoreError) -> ErrorKind {
    match error {
        StoreError::ModuleNotFound(_)
        | StoreError::PrefixNotFound(_)
        | StoreError::NameNotFound(_) => ErrorKind::NotFound,
        StoreError::AmbiguousPrefix { .. } => ErrorKind::Usage,
        StoreError::Corrupt { .. } | StoreError::CorruptNames(_) => ErrorKind::Corrupt,
        StoreError::Locked { .. } => ErrorKind::Unavailable,
        _ => ErrorKind::Other,
    }
}
