//! Human names for function references (`math.add`), as in Unison.

use std::fmt;
use std::str::FromStr;

/// A name: dot-separated segments, each a letter or `_` followed by letters, digits,
/// `_` or `-`; at most [`Name::MAX_LEN`] bytes in all.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Name(String);

/// Why a text is not a valid name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a valid name: {reason} (names look like `math.add`: dot-separated segments of letters, digits, `_` and `-`, each starting with a letter or `_`)"
)]
pub struct NameError {
    pub text: String,
    pub reason: &'static str,
}

impl Name {
    pub const MAX_LEN: usize = 256;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Name {
    type Err = NameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason| {
            Err(NameError {
                text: text.to_owned(),
                reason,
            })
        };
        if text.is_empty() {
            return fail("it is empty");
        }
        if text.len() > Self::MAX_LEN {
            return fail("it is longer than 256 bytes");
        }
        if text.parse::<crate::Hash>().is_ok() {
            return fail(
                "it is a full hash (64 hex characters), which always means the module it hashes",
            );
        }
        for segment in text.split('.') {
            let mut chars = segment.chars();
            match chars.next() {
                None => return fail("it has an empty segment"),
                Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
                    return fail("a segment starts with something other than a letter or `_`");
                }
                Some(_) => {}
            }
            if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return fail(
                    "it contains a character other than letters, digits, `_`, `-` and `.`",
                );
            }
        }
        Ok(Name(text.to_owned()))
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dotted_names() {
        for ok in ["add", "math.add", "_x.y-z.w_1", "Text.render2"] {
            assert_eq!(ok.parse::<Name>().unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in ["", ".a", "a.", "a..b", "1a", "a.2b", "a b", "a:b", "é"] {
            assert!(bad.parse::<Name>().is_err(), "{bad:?} should be refused");
        }
        assert!("a".repeat(257).parse::<Name>().is_err());
        assert!("abcdef0123".repeat(7)[..64].parse::<Name>().is_err());
        assert!("abcdef0123".repeat(7)[..63].parse::<Name>().is_ok());
    }
}
