//! Who is trusted with what (`spec/trust.md`): ed25519 keys and their text forms, and
//! the records a key signs. A mesh key signs membership certificates (a node, its roles,
//! the abilities it may serve, until when) and revocations; a publisher key signs
//! publications (a name bound to a reference, numbered and chained).
//!
//! Every signature covers a domain string naming the kind of record, then the canonical
//! CBOR of the record's body (`spec/values.md`), so that a signature made for one kind of
//! record can never be taken for another. A record has one byte form: one that is not
//! canonical is refused, so its hash names it.
//!
//! What this module must not know: where keys and records are kept, the network, and
//! the clock (the time to judge a record against is always given).

mod chain;
mod key;
mod names;
mod records;
mod signed;

pub use chain::{Accepted, NameChain};
pub use key::{PublicKey, SecretKey};
pub use names::{ChainRun, MAX_CHAIN_MESSAGE_BYTES, NamePattern, NamePolicy, chain_key};
pub use records::{Hello, Membership, Publication, Revocation, check_label};
pub use signed::{Body, MAX_RECORD_BYTES, Signed};

/// Why a key or a record is refused. Each says which check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    #[error("not a key: {0}")]
    BadKey(String),
    #[error("not a {kind}: {why}")]
    Malformed { kind: &'static str, why: String },
    #[error("the {kind}'s signature does not verify (forged or tampered with)")]
    BadSignature { kind: &'static str },
    #[error("the {kind} is signed by {signer}, not by the key it names ({named})")]
    WrongSigner {
        kind: &'static str,
        signer: PublicKey,
        named: PublicKey,
    },
    #[error("the membership certificate is for mesh {found}, not this node's mesh {expected}")]
    WrongMesh {
        expected: PublicKey,
        found: PublicKey,
    },
    #[error(
        "the membership certificate is for node {found}, not the peer that presented it ({expected})"
    )]
    WrongNode {
        expected: PublicKey,
        found: PublicKey,
    },
    #[error("the membership certificate is issued at {issued_ms} ms, later than now ({now_ms} ms)")]
    NotYetValid { issued_ms: u64, now_ms: u64 },
    #[error("the membership certificate expired at {expires_ms} ms (now {now_ms} ms)")]
    Expired { expires_ms: u64, now_ms: u64 },
    #[error("the membership certificate was revoked at {revoked_ms} ms: {reason}")]
    Revoked { revoked_ms: u64, reason: String },
    #[error(
        "a publication of `{name}` numbered {seq} is a replay: {publisher} already published number {latest}"
    )]
    Replayed {
        name: String,
        publisher: PublicKey,
        seq: u64,
        latest: u64,
    },
    #[error("two different publications of `{name}` by {publisher} are numbered {seq}")]
    Conflicting {
        name: String,
        publisher: PublicKey,
        seq: u64,
    },
    #[error(
        "the publication of `{name}` numbered {seq} does not follow the one before it (its `previous` is not that record's hash)"
    )]
    BrokenChain { name: String, seq: u64 },
}

impl TrustError {
    /// The reason's code, as `spec/trust.md` names the checks (`bad_signature`,
    /// `wrong_mesh`, `expired`, ...): for programs, where the message is for people.
    pub fn code(&self) -> &'static str {
        match self {
            TrustError::BadKey(_) => "bad_key",
            TrustError::Malformed { .. } => "malformed",
            TrustError::BadSignature { .. } => "bad_signature",
            TrustError::WrongSigner { .. } => "wrong_signer",
            TrustError::WrongMesh { .. } => "wrong_mesh",
            TrustError::WrongNode { .. } => "wrong_node",
            TrustError::NotYetValid { .. } => "not_yet_valid",
            TrustError::Expired { .. } => "expired",
            TrustError::Revoked { .. } => "revoked",
            TrustError::Replayed { .. } => "replayed",
            TrustError::Conflicting { .. } => "conflicting",
            TrustError::BrokenChain { .. } => "broken_chain",
        }
    }
}

#[cfg(test)]
mod tests;
