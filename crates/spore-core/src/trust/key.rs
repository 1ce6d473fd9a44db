//! ed25519 keys and their text forms (`spec/trust.md`): a public key is
//! `ed25519:` and its 32 bytes in lowercase hex; a secret key (what a key file holds) is
//! `ed25519-secret:` and its 32-byte seed in lowercase hex.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::TrustError;

const PUBLIC_PREFIX: &str = "ed25519:";
const SECRET_PREFIX: &str = "ed25519-secret:";

/// An ed25519 public key: a node's, a publisher's or a mesh's.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The key whose 32 bytes are `bytes`, if they are a valid ed25519 point.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<PublicKey, TrustError> {
        VerifyingKey::from_bytes(&bytes)
            .map(|_| PublicKey(bytes))
            .map_err(|_| TrustError::BadKey("the bytes are not an ed25519 public key".into()))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `signature` is this key's over `message` (strict verification: no
    /// malleable signatures, no small-order keys).
    pub(super) fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
            .is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for PublicKey {
    type Err = TrustError;

    fn from_str(text: &str) -> Result<PublicKey, TrustError> {
        let bytes = key_bytes(text, PUBLIC_PREFIX)?;
        PublicKey::from_bytes(bytes)
    }
}

/// In records (CBOR) a key is its 32 bytes; in human-readable formats (JSON: the API,
/// `--json`) its text form.
impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PublicKey, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            return text.parse().map_err(serde::de::Error::custom);
        }
        let bytes = serde_bytes::ByteBuf::deserialize(deserializer)?;
        let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            serde::de::Error::custom(format!("a public key is 32 bytes, not {}", bytes.len()))
        })?;
        PublicKey::from_bytes(bytes).map_err(serde::de::Error::custom)
    }
}

/// An ed25519 secret key. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// The key made from a 32-byte seed (which must come from a secure random source).
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(&seed))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// The key's text form, `ed25519-secret:` and the seed in hex: what a key file holds.
    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}", hex::encode(self.0.to_bytes()))
    }

    pub(super) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.public())
    }
}

impl FromStr for SecretKey {
    type Err = TrustError;

    fn from_str(text: &str) -> Result<SecretKey, TrustError> {
        key_bytes(text.trim_end(), SECRET_PREFIX).map(SecretKey::from_seed)
    }
}

fn key_bytes(text: &str, prefix: &str) -> Result<[u8; 32], TrustError> {
    let bad = |why: String| TrustError::BadKey(why);
    let hex = text
        .strip_prefix(prefix)
        .ok_or_else(|| bad(format!("a key's text starts with `{prefix}`")))?;
    if hex.len() != 64 || hex.bytes().any(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad(format!(
            "`{prefix}` is followed by 64 lowercase hex characters"
        )));
    }
    let mut bytes = [0; 32];
    hex::decode_to_slice(hex, &mut bytes).map_err(|e| bad(e.to_string()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_text_and_refuse_other_text() {
        let secret = SecretKey::from_seed([7; 32]);
        let public = secret.public();
        assert_eq!(public.to_string().parse::<PublicKey>().unwrap(), public);
        let again: SecretKey = secret.to_text().parse().unwrap();
        assert_eq!(again.public(), public);
        assert!(format!("{secret:?}").contains(&public.to_string()));
        assert!(!format!("{secret:?}").contains(&hex::encode([7; 32])));
        for bad in [
            "",
            "ed25519:",
            &public.to_string().to_uppercase(),
            &public.to_string()[..70],
            &format!("ed25519:{}", "zz".repeat(32)),
            &secret.to_text(),
        ] {
            assert!(bad.parse::<PublicKey>().is_err(), "{bad}");
        }
    }
}
