use std::path::PathBuf;
use std::time::Duration;

use spore_core::{Hash, HashPrefix, Name};

/// What can go wrong in the codebase.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("the codebase at {} is in use by another spore process (waited {waited:?}); if a node is running on this home, let it finish or stop it", path.display())]
    Locked { path: PathBuf, waited: Duration },
    #[error("cannot open the codebase at {}: {source}", path.display())]
    Open { path: PathBuf, source: sled::Error },
    #[error("codebase storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("no module with hash {0} in this codebase (list modules with `spore ls`)")]
    ModuleNotFound(Hash),
    #[error("no module hash starts with `{0}` in this codebase (list modules with `spore ls`)")]
    PrefixNotFound(HashPrefix),
    #[error(
        "the prefix `{prefix}` is ambiguous; it matches:\n{}\nType more characters.",
        list(candidates)
    )]
    AmbiguousPrefix {
        prefix: HashPrefix,
        candidates: Vec<Hash>,
    },
    #[error("no name `{0}` in this codebase (list names with `spore names ls`)")]
    NameNotFound(Name),
    #[error(
        "the codebase entry for {hash} is corrupt ({what}); it was not used. Publish the module again to repair it"
    )]
    Corrupt { hash: Hash, what: String },
    #[error("the names table of this codebase is corrupt: {0}")]
    CorruptNames(String),
}

fn list(hashes: &[Hash]) -> String {
    hashes
        .iter()
        .map(|h| format!("  {h}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl StoreError {
    /// The kind of failure (`spec/errors.md`).
    pub fn kind(&self) -> spore_core::ErrorKind {
        use spore_core::ErrorKind;
        match self {
            StoreError::ModuleNotFound(_)
            | StoreError::PrefixNotFound(_)
            | StoreError::NameNotFound(_) => ErrorKind::NotFound,
            StoreError::AmbiguousPrefix { .. } => ErrorKind::BadRequest,
            StoreError::Corrupt { .. } | StoreError::CorruptNames(_) => ErrorKind::Corrupt,
            StoreError::Locked { .. } => ErrorKind::Unavailable,
            StoreError::Open { .. } | StoreError::Sled(_) => ErrorKind::Internal,
        }
    }
}
