//! The kinds of signed record, and the handshake message that carries a certificate
//! (`spec/trust.md`).

use serde::{Deserialize, Serialize};

use super::signed::{Body, Signed};
use super::{PublicKey, TrustError};
use crate::{FunctionRef, Hash, Name};

/// A mesh's statement that a node belongs to it: with which roles, which abilities it
/// may serve to the mesh, and until when. Signed by the mesh key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    /// The mesh: its public key.
    pub mesh: PublicKey,
    /// The node: its identity's public key (the key its libp2p peer id is made from).
    pub node: PublicKey,
    /// Sorted, without repeats; each a label ([`check_label`]).
    pub roles: Vec<String>,
    /// The abilities the node may serve to the mesh; sorted, without repeats, labels.
    pub serves: Vec<String>,
    /// When it was signed, in milliseconds since the Unix epoch.
    pub issued_ms: u64,
    /// When it stops being valid; `None`: never.
    pub expires_ms: Option<u64>,
}

impl Body for Membership {
    const KIND: &'static str = "membership certificate";
    const DOMAIN: &'static str = "spore membership v1";
    const TEXT_PREFIX: &'static str = "spore-membership-1:";

    fn signer(&self) -> &PublicKey {
        &self.mesh
    }

    fn check(&self) -> Result<(), String> {
        check_labels("roles", &self.roles)?;
        check_labels("serves", &self.serves)?;
        match self.expires_ms {
            Some(expires) if expires <= self.issued_ms => {
                Err("it expires before it is issued".into())
            }
            _ => Ok(()),
        }
    }
}

/// How far in the future a certificate's issue time may be, for clocks that disagree.
const CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;

impl Signed<Membership> {
    /// Whether this certificate admits `node` to `mesh` at `now_ms`, given the mesh's
    /// revocations (others' are ignored); if not, which check failed.
    pub fn admits(
        &self,
        mesh: &PublicKey,
        node: &PublicKey,
        now_ms: u64,
        revocations: &[Signed<Revocation>],
    ) -> Result<(), TrustError> {
        let body = self.body();
        if body.mesh != *mesh {
            return Err(TrustError::WrongMesh {
                expected: *mesh,
                found: body.mesh,
            });
        }
        if body.node != *node {
            return Err(TrustError::WrongNode {
                expected: *node,
                found: body.node,
            });
        }
        if body.issued_ms > now_ms.saturating_add(CLOCK_SKEW_MS) {
            return Err(TrustError::NotYetValid {
                issued_ms: body.issued_ms,
                now_ms,
            });
        }
        if let Some(expires_ms) = body.expires_ms
            && expires_ms <= now_ms
        {
            return Err(TrustError::Expired { expires_ms, now_ms });
        }
        let revoked = revocations
            .iter()
            .map(Signed::body)
            .find(|r| r.mesh == *mesh && r.node == body.node && r.revoked_ms >= body.issued_ms);
        match revoked {
            Some(r) => Err(TrustError::Revoked {
                revoked_ms: r.revoked_ms,
                reason: r.reason.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// A mesh's statement that a node's certificates issued at or before `revoked_ms` no
/// longer admit it. Signed by the mesh key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    pub mesh: PublicKey,
    pub node: PublicKey,
    pub revoked_ms: u64,
    /// Why, for people (at most 256 bytes).
    pub reason: String,
}

impl Body for Revocation {
    const KIND: &'static str = "revocation";
    const DOMAIN: &'static str = "spore revocation v1";
    const TEXT_PREFIX: &'static str = "spore-revocation-1:";

    fn signer(&self) -> &PublicKey {
        &self.mesh
    }

    fn check(&self) -> Result<(), String> {
        if self.reason.len() > 256 {
            return Err("its reason is over 256 bytes".into());
        }
        Ok(())
    }
}

/// A publisher's statement that `name` points at `target` (or, with `None`, at nothing:
/// removed), the `seq`-th of its publications of that name, following the one whose
/// record hashes to `previous`. Signed by the publisher's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publication {
    pub publisher: PublicKey,
    pub name: String,
    /// A function reference in its text form (`HASH:export` or `HASH`).
    pub target: Option<String>,
    /// Numbers the publisher's publications of the name from 1.
    pub seq: u64,
    pub at_ms: u64,
    /// The hash of the record numbered `seq - 1`; `None` exactly when `seq` is 1.
    pub previous: Option<Hash>,
}

impl Body for Publication {
    const KIND: &'static str = "publication";
    const DOMAIN: &'static str = "spore publication v1";
    const TEXT_PREFIX: &'static str = "spore-publication-1:";

    fn signer(&self) -> &PublicKey {
        &self.publisher
    }

    fn check(&self) -> Result<(), String> {
        self.name
            .parse::<Name>()
            .map_err(|e| format!("its name is not a name: {e}"))?;
        if let Some(target) = &self.target {
            target
                .parse::<FunctionRef>()
                .map_err(|e| format!("its target is not a function reference: {e}"))?;
        }
        match (self.seq, self.previous) {
            (0, _) => Err("publications are numbered from 1".into()),
            (1, Some(_)) => Err("the first publication of a name follows none".into()),
            (2.., None) => Err("a publication after the first names the one before".into()),
            _ => Ok(()),
        }
    }
}

/// The one message each side of a new connection sends (`/spore/hello/1`): its
/// membership certificate, and the revocations it knows, so that news of one spreads with
/// every connection. Not signed itself: the connection's own handshake (noise) already
/// proves which node sent it, and the certificate must name that node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// A membership certificate's bytes; `None` when the node belongs to no mesh.
    pub certificate: Option<serde_bytes::ByteBuf>,
    /// Revocation records' bytes.
    pub revocations: Vec<serde_bytes::ByteBuf>,
}

/// Checks that `label` can be a role or an ability name: 1 to 64 bytes of lowercase
/// ASCII letters, digits, `-`, `_` and `.`, starting with a letter.
pub fn check_label(label: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&label.len())
        && label.starts_with(|c: char| c.is_ascii_lowercase())
        && label
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{label}` is not a label: 1 to 64 lowercase letters, digits, `-`, `_` or `.`, starting with a letter"
        ))
    }
}

fn check_labels(what: &str, labels: &[String]) -> Result<(), String> {
    for label in labels {
        check_label(label).map_err(|e| format!("{what}: {e}"))?;
    }
    if labels.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(format!("its {what} are not sorted without repeats"));
    }
    Ok(())
}
