use crate::config::ConfigError;
use spore_core::name::NameError;
use spore_core::reference::RefParseError;
use spore_core::{ErrorKind, ExportError, ModuleError, Name};
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
    /// The kind of failure, of the one taxonomy (`spec/errors.md`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            NodeError::Home { .. } => ErrorKind::Internal,
            NodeError::InvalidModule(_) | NodeError::UnknownImport { .. } => {
                ErrorKind::InvalidModule
            }
            NodeError::Config(_) | NodeError::Binding { .. } => ErrorKind::BadRequest,
            NodeError::Mesh { kind, .. } => *kind,
            NodeError::Reference(_) | NodeError::Name(_) => ErrorKind::BadRequest,
            NodeError::Export(export) => spore_runtime::export_kind(export),
            NodeError::Store(store) => store.kind(),
            NodeError::Load(load) => load.kind(),
            NodeError::DanglingName { .. } => ErrorKind::NotFound,
            NodeError::Invoke(invoke) => invoke.kind(),
        }
    }
}
