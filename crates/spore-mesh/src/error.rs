//! The mesh's errors. Each message says what failed, with whom, and why.

use std::fmt;

use libp2p::{Multiaddr, PeerId};

/// Why a mesh operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeshError {
    #[error("cannot build the libp2p transport: {0}")]
    Transport(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    #[error("peer {peer} is unreachable: {reason}")]
    Unreachable { peer: PeerId, reason: String },
    #[error("deadline passed while {during}")]
    Deadline { during: String },
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge { len: usize, limit: usize },
    #[error("protocol error with peer {peer}: {reason}")]
    Protocol { peer: PeerId, reason: String },
    #[error("peer {peer} is not admitted to this node's mesh: {why}")]
    NotAdmitted { peer: PeerId, why: String },
    #[error("cannot publish on gossip: {reason}")]
    Gossip { reason: String },
    #[error("the mesh has shut down")]
    ShutDown,
}

/// Why a fetch failed. Whatever the error, no unverified byte was returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error("no providers found for module {hash} within the deadline")]
    NoProviders { hash: spore_core::Hash },
    #[error("{}", all_failed(hash, failures))]
    AllProvidersFailed {
        hash: spore_core::Hash,
        failures: Vec<ProviderFailure>,
    },
    #[error(
        "deadline passed fetching module {hash}: {received} of {} bytes verified",
        size.map_or("unknown".to_owned(), |s| s.to_string())
    )]
    Deadline {
        hash: spore_core::Hash,
        received: u64,
        size: Option<u64>,
    },
    #[error("assembled module hashes to {actual}, not {hash}, though every range verified")]
    HashMismatch {
        hash: spore_core::Hash,
        actual: spore_core::Hash,
    },
    #[error("the mesh has shut down")]
    ShutDown,
}

fn all_failed(hash: &spore_core::Hash, failures: &[ProviderFailure]) -> String {
    let list = failures
        .iter()
        .map(ProviderFailure::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    match failures.len() {
        1 => format!("the only provider of module {hash} failed: {list}"),
        n => format!("all {n} providers of module {hash} failed: {list}"),
    }
}

/// One provider that could not deliver (part of) a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderFailure {
    pub peer: PeerId,
    pub reason: FailureReason,
}

impl fmt::Display for ProviderFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.peer, self.reason)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FailureReason {
    /// The peer sent bytes that do not hash to the module: it is lying or broken.
    #[error("hash mismatch: its bytes fail verification against the module hash ({0})")]
    HashMismatch(String),
    #[error("it does not hold the module")]
    NotFound,
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("timed out")]
    Timeout,
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl MeshError {
    /// The kind of failure (`spec/errors.md`).
    pub fn kind(&self) -> spore_core::ErrorKind {
        use spore_core::ErrorKind;
        match self {
            MeshError::Transport(_) | MeshError::Listen { .. } => ErrorKind::Internal,
            MeshError::Unreachable { .. } | MeshError::ShutDown => ErrorKind::Unavailable,
            MeshError::Deadline { .. } => ErrorKind::Timeout,
            MeshError::FrameTooLarge { .. } => ErrorKind::TooLarge,
            MeshError::Protocol { .. } | MeshError::Gossip { .. } => ErrorKind::Failed,
            MeshError::NotAdmitted { .. } => ErrorKind::NotAllowed,
        }
    }
}

impl FetchError {
    /// The kind of failure (`spec/errors.md`): a module no provider holds is not found;
    /// one whose providers all failed otherwise is unavailable for now.
    pub fn kind(&self) -> spore_core::ErrorKind {
        use spore_core::ErrorKind;
        match self {
            FetchError::NoProviders { .. } => ErrorKind::NotFound,
            FetchError::AllProvidersFailed { failures, .. }
                if failures
                    .iter()
                    .all(|failure| failure.reason == FailureReason::NotFound) =>
            {
                ErrorKind::NotFound
            }
            FetchError::AllProvidersFailed { .. } | FetchError::ShutDown => ErrorKind::Unavailable,
            FetchError::Deadline { .. } => ErrorKind::Timeout,
            FetchError::HashMismatch { .. } => ErrorKind::Internal,
        }
    }
}
