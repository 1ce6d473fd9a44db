//! A signed record: a body and its signer's signature over the body's domain string, a
//! zero byte and the body's canonical CBOR; as bytes, the canonical CBOR of the map
//! `{"body": BODY, "signature": 64 bytes}`; as text, the kind's prefix and those bytes
//! in lowercase hex.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{PublicKey, SecretKey, TrustError};
use crate::Hash;
use crate::value;

/// The largest record accepted, in bytes: a certificate with many roles and abilities is
/// well under 2 KiB.
pub const MAX_RECORD_BYTES: usize = 16 * 1024;

/// The body of one kind of signed record.
pub trait Body: Serialize + DeserializeOwned + Clone + fmt::Debug {
    /// The kind, as messages name it.
    const KIND: &'static str;
    /// What the signed message starts with (then a zero byte): no two kinds share it.
    const DOMAIN: &'static str;
    /// The text form's prefix.
    const TEXT_PREFIX: &'static str;

    /// The key that must have signed it.
    fn signer(&self) -> &PublicKey;

    /// Checks what the body's type cannot say (sorted lists, label syntax).
    fn check(&self) -> Result<(), String>;
}

/// A body with a valid signature by its signer; only made by signing or by
/// [`Signed::from_bytes`], which verifies.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed<B> {
    body: B,
    bytes: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<B> {
    body: B,
    signature: serde_bytes::ByteBuf,
}

impl<B: Body> Signed<B> {
    /// Signs `body` with `key`, which must be the key the body names as its signer.
    pub fn sign(body: B, key: &SecretKey) -> Result<Signed<B>, TrustError> {
        let malformed = |why: String| TrustError::Malformed { kind: B::KIND, why };
        body.check().map_err(malformed)?;
        if key.public() != *body.signer() {
            return Err(TrustError::WrongSigner {
                kind: B::KIND,
                signer: key.public(),
                named: *body.signer(),
            });
        }
        let signature = key.sign(&message::<B>(&body)?);
        let wire = Wire {
            body,
            signature: serde_bytes::ByteBuf::from(signature.to_vec()),
        };
        let bytes = value::to_canonical(&wire).map_err(|e| malformed(e.to_string()))?;
        Ok(Signed {
            body: wire.body,
            bytes,
        })
    }

    /// The record `bytes` hold, if they are one record of this kind in canonical form
    /// whose signature verifies.
    pub fn from_bytes(bytes: &[u8]) -> Result<Signed<B>, TrustError> {
        let malformed = |why: String| TrustError::Malformed { kind: B::KIND, why };
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(malformed(format!(
                "{} bytes is over the limit of {MAX_RECORD_BYTES}",
                bytes.len()
            )));
        }
        let wire: Wire<B> = value::decode_as(bytes).map_err(|e| malformed(e.to_string()))?;
        let canonical = value::to_canonical(&wire).map_err(|e| malformed(e.to_string()))?;
        if canonical != bytes {
            return Err(malformed("its CBOR is not in canonical form".into()));
        }
        wire.body.check().map_err(malformed)?;
        let signature: [u8; 64] = wire.signature.as_slice().try_into().map_err(|_| {
            malformed(format!(
                "a signature is 64 bytes, not {}",
                wire.signature.len()
            ))
        })?;
        if !wire
            .body
            .signer()
            .verifies(&message::<B>(&wire.body)?, &signature)
        {
            return Err(TrustError::BadSignature { kind: B::KIND });
        }
        Ok(Signed {
            body: wire.body,
            bytes: bytes.to_vec(),
        })
    }

    /// The record in its text form: the kind's prefix, then its bytes in hex.
    pub fn to_text(&self) -> String {
        format!("{}{}", B::TEXT_PREFIX, hex::encode(&self.bytes))
    }

    /// The record a text form holds (surrounding whitespace ignored), verified.
    pub fn from_text(text: &str) -> Result<Signed<B>, TrustError> {
        let malformed = |why: String| TrustError::Malformed { kind: B::KIND, why };
        let hex = text
            .trim()
            .strip_prefix(B::TEXT_PREFIX)
            .ok_or_else(|| malformed(format!("its text starts with `{}`", B::TEXT_PREFIX)))?;
        if hex.len() > 2 * MAX_RECORD_BYTES {
            return Err(malformed(format!(
                "its text is over {} characters",
                2 * MAX_RECORD_BYTES
            )));
        }
        let bytes = hex::decode(hex).map_err(|e| malformed(format!("its text is not hex: {e}")))?;
        Signed::from_bytes(&bytes)
    }

    pub fn body(&self) -> &B {
        &self.body
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The BLAKE3 hash of the record's bytes: what names it (a publication's `previous`).
    pub fn hash(&self) -> Hash {
        Hash::of(&self.bytes)
    }
}

impl<B: Body> fmt::Debug for Signed<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed").field("body", &self.body).finish()
    }
}

/// What the signature covers: the domain, a zero byte, the body's canonical CBOR.
fn message<B: Body>(body: &B) -> Result<Vec<u8>, TrustError> {
    let encoded = value::to_canonical(body).map_err(|e| TrustError::Malformed {
        kind: B::KIND,
        why: e.to_string(),
    })?;
    let mut message = Vec::with_capacity(B::DOMAIN.len() + 1 + encoded.len());
    message.extend_from_slice(B::DOMAIN.as_bytes());
    message.push(0);
    message.extend_from_slice(&encoded);
    Ok(message)
}
