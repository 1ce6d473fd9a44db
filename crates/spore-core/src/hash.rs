//! Content hashes and their text forms (`spec/hashes.md`).

use std::fmt;
use std::str::FromStr;

/// The BLAKE3 hash of some bytes: a module, a manifest, any blob.
///
/// Its text form is 64 lowercase hex characters, exactly what `b3sum` prints.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash([u8; 32]);

/// The shortest hash prefix a person may type, like git's abbreviated ids.
pub const MIN_PREFIX_LEN: usize = 6;

/// Why a text is not a hash or a hash prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashParseError {
    #[error("`{text}` is not a hash: expected 64 hex characters, got {len}")]
    Length { text: String, len: usize },
    #[error(
        "`{text}` is not a hash prefix: expected {MIN_PREFIX_LEN} to 64 hex characters, got {len}"
    )]
    PrefixLength { text: String, len: usize },
    #[error("`{text}` is not hex: `{bad}` at position {position}")]
    NotHex {
        text: String,
        bad: char,
        position: usize,
    },
}

impl Hash {
    pub const LEN: usize = 32;

    /// Hashes `bytes`. This is the only way spore names content.
    pub fn of(bytes: &[u8]) -> Self {
        Hash(*blake3::hash(bytes).as_bytes())
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Hash(bytes)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Hash)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// The first `len` hex characters: how spore abbreviates hashes for people.
    pub fn short(&self, len: usize) -> String {
        let mut hex = self.to_hex();
        hex.truncate(len.clamp(MIN_PREFIX_LEN, 64));
        hex
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.short(12))
    }
}

impl FromStr for Hash {
    type Err = HashParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        check_hex(text)?;
        if text.len() != 64 {
            return Err(HashParseError::Length {
                text: text.to_owned(),
                len: text.len(),
            });
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("checked hex");
        }
        Ok(Hash(bytes))
    }
}

impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> serde::Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Hash;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a 32-byte BLAKE3 hash as bytes or 64 hex characters")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Hash, E> {
                Hash::from_slice(v).ok_or_else(|| E::invalid_length(v.len(), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Hash, E> {
                v.parse().map_err(E::custom)
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(Visitor)
        } else {
            deserializer.deserialize_bytes(Visitor)
        }
    }
}

/// An abbreviated hash a person typed: 6 to 64 hex characters, case-insensitive.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct HashPrefix(String);

impl From<Hash> for HashPrefix {
    /// A full hash is the longest prefix of itself.
    fn from(hash: Hash) -> HashPrefix {
        HashPrefix(hash.to_hex())
    }
}

impl HashPrefix {
    /// Whether `hash` starts with this prefix.
    pub fn matches(&self, hash: &Hash) -> bool {
        hash.to_hex().starts_with(&self.0)
    }

    /// The prefix as lowercase hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The full hash, when the prefix is not abbreviated at all.
    pub fn as_full(&self) -> Option<Hash> {
        self.0.parse().ok()
    }

    /// The bytes every matching hash starts with (whole hex pairs only), for range scans.
    pub fn leading_bytes(&self) -> Vec<u8> {
        (0..self.0.len() / 2)
            .map(|i| u8::from_str_radix(&self.0[2 * i..2 * i + 2], 16).expect("checked hex"))
            .collect()
    }
}

impl FromStr for HashPrefix {
    type Err = HashParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        check_hex(text)?;
        if !(MIN_PREFIX_LEN..=64).contains(&text.len()) {
            return Err(HashParseError::PrefixLength {
                text: text.to_owned(),
                len: text.len(),
            });
        }
        Ok(HashPrefix(text.to_ascii_lowercase()))
    }
}

impl fmt::Display for HashPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_hex(text: &str) -> Result<(), HashParseError> {
    match text.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        Some((position, bad)) => Err(HashParseError::NotHex {
            text: text.to_owned(),
            bad,
            position,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_hashes_like_b3sum() {
        assert_eq!(
            Hash::of(b"").to_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn hex_round_trips_and_rejects_bad_text() {
        let hash = Hash::of(b"spore");
        assert_eq!(hash.to_hex().parse::<Hash>().unwrap(), hash);
        assert!(matches!(
            "abc".parse::<Hash>(),
            Err(HashParseError::Length { len: 3, .. })
        ));
        let bad = format!("{}g", &hash.to_hex()[..63]);
        assert!(matches!(
            bad.parse::<Hash>(),
            Err(HashParseError::NotHex {
                bad: 'g',
                position: 63,
                ..
            })
        ));
    }

    #[test]
    fn prefixes_are_case_insensitive_and_bounded() {
        let hash = Hash::of(b"spore");
        let prefix: HashPrefix = hash.to_hex()[..8].to_ascii_uppercase().parse().unwrap();
        assert!(prefix.matches(&hash));
        assert!(!prefix.matches(&Hash::of(b"other")));
        assert_eq!(prefix.leading_bytes(), hash.as_bytes()[..4]);
        assert!("abcde".parse::<HashPrefix>().is_err());
        let odd: HashPrefix = hash.to_hex()[..7].parse().unwrap();
        assert_eq!(odd.leading_bytes(), hash.as_bytes()[..3]);
    }
}
