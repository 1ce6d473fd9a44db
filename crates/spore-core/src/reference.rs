//! Function references (`spec/references.md`): a module hash plus an export name.

use std::fmt;
use std::str::FromStr;

use crate::hash::{Hash, HashParseError, HashPrefix};
use crate::name::{Name, NameError};

/// The name of a spore function inside its module (a Wasm export name).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ExportName(String);

/// Why a text is not a valid export name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a valid export name: expected 1 to 128 of `A-Z a-z 0-9 _`, not starting with a digit, and not starting with `spore_`"
)]
pub struct ExportNameError(pub String);

impl ExportName {
    pub const MAX_LEN: usize = 128;
    /// What a valid export name is, for messages.
    pub const RULE: &'static str =
        "1 to 128 of `A-Z a-z 0-9 _`, not starting with a digit, and not starting with `spore_`";

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ExportName {
    type Err = ExportNameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && !text.starts_with(|c: char| c.is_ascii_digit())
            && !text.starts_with(crate::abi::RESERVED_PREFIX)
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(ExportName(text.to_owned()))
        } else {
            Err(ExportNameError(text.to_owned()))
        }
    }
}

impl fmt::Display for ExportName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An exact reference to a function: `HASH:export`, or `HASH` for a module whose
/// only function is meant.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct FunctionRef {
    pub module: Hash,
    pub export: Option<ExportName>,
}

impl FunctionRef {
    pub fn new(module: Hash, export: ExportName) -> Self {
        FunctionRef {
            module,
            export: Some(export),
        }
    }
}

impl fmt::Display for FunctionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.export {
            Some(export) => write!(f, "{}:{}", self.module, export),
            None => write!(f, "{}", self.module),
        }
    }
}

/// Why a text is not a function reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefParseError {
    #[error(transparent)]
    Hash(#[from] HashParseError),
    #[error(transparent)]
    Export(#[from] ExportNameError),
    #[error(transparent)]
    Name(#[from] NameError),
    /// `math.add:add`: a name already points at one function, so it takes no `:export`.
    #[error(
        "`{name}:{export}`: a name points at one function and takes no `:{export}`; \
         give the name alone (`{name}`), or a hash with `:{export}`"
    )]
    NameWithExport { name: Name, export: ExportName },
}

impl FromStr for FunctionRef {
    type Err = RefParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (hash, export) = split_export(text)?;
        Ok(FunctionRef {
            module: hash.parse()?,
            export,
        })
    }
}

impl serde::Serialize for FunctionRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for FunctionRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a person typed to point at a function, before it is resolved against a
/// codebase. `math.add`, `3f9a1c`, `3f9a1c:add` and full hashes are all references.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RefText {
    /// Only a name can mean this (it contains a character that is not hex, or is short).
    Name(Name),
    /// A hash or hash prefix, with an export when one was given after `:`.
    Hash {
        prefix: HashPrefix,
        export: Option<ExportName>,
    },
    /// Both a valid name and a valid prefix (`facade`): the name wins when it exists.
    NameOrHash(Name, HashPrefix),
}

impl FromStr for RefText {
    type Err = RefParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some((before, export)) = text.split_once(':') {
            let export: ExportName = export.parse()?;
            return match before.parse::<HashPrefix>() {
                Ok(prefix) => Ok(RefText::Hash {
                    prefix,
                    export: Some(export),
                }),
                // A name already points at one function: say so, rather than that it is
                // not hex.
                Err(hash_error) => match before.parse::<Name>() {
                    Ok(name) => Err(RefParseError::NameWithExport { name, export }),
                    Err(_) => Err(hash_error.into()),
                },
            };
        }
        // A full hash is always a hash, whatever its first character: names may not look
        // like one (`Name`), so a name can never shadow a module.
        if let Ok(hash) = text.parse::<Hash>() {
            return Ok(RefText::Hash {
                prefix: HashPrefix::from(hash),
                export: None,
            });
        }
        match (text.parse::<Name>(), text.parse::<HashPrefix>()) {
            (Ok(name), Ok(prefix)) => Ok(RefText::NameOrHash(name, prefix)),
            (Ok(name), Err(_)) => Ok(RefText::Name(name)),
            (Err(_), Ok(prefix)) => Ok(RefText::Hash {
                prefix,
                export: None,
            }),
            // A text of hex digits gets the hash error (it was probably meant as one);
            // anything else the name error.
            (Err(name_error), Err(hash_error)) => {
                if text.chars().all(|c| c.is_ascii_hexdigit()) {
                    Err(hash_error.into())
                } else {
                    Err(name_error.into())
                }
            }
        }
    }
}

fn split_export(text: &str) -> Result<(&str, Option<ExportName>), ExportNameError> {
    match text.split_once(':') {
        Some((hash, export)) => Ok((hash, Some(export.parse()?))),
        None => Ok((text, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash() -> Hash {
        Hash::of(b"module")
    }

    #[test]
    fn function_refs_round_trip() {
        let with_export = FunctionRef::new(hash(), "add".parse().unwrap());
        assert_eq!(with_export.to_string(), format!("{}:add", hash()));
        assert_eq!(
            with_export.to_string().parse::<FunctionRef>().unwrap(),
            with_export
        );
        let bare = FunctionRef {
            module: hash(),
            export: None,
        };
        assert_eq!(bare.to_string().parse::<FunctionRef>().unwrap(), bare);
    }

    #[test]
    fn ref_text_distinguishes_names_and_prefixes() {
        assert!(matches!("math.add".parse(), Ok(RefText::Name(_))));
        assert!(matches!("add".parse(), Ok(RefText::Name(_))));
        assert!(matches!("facade".parse(), Ok(RefText::NameOrHash(..))));
        assert!(matches!(
            "012345".parse(),
            Ok(RefText::Hash { export: None, .. })
        ));
        let with_export: RefText = "0123ab:render".parse().unwrap();
        assert!(
            matches!(with_export, RefText::Hash { export: Some(e), .. } if e.as_str() == "render")
        );
    }

    #[test]
    fn a_name_given_an_export_is_told_to_drop_it() {
        let error = "text.markdown:render".parse::<RefText>().unwrap_err();
        assert!(
            matches!(&error, RefParseError::NameWithExport { name, export }
                if name.as_str() == "text.markdown" && export.as_str() == "render"),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "`text.markdown:render`: a name points at one function and takes no `:render`; \
             give the name alone (`text.markdown`), or a hash with `:render`"
        );
        // Neither a name nor hex before the `:`: the hash's error, as before.
        assert!(matches!(
            "not hex!:render".parse::<RefText>(),
            Err(RefParseError::Hash(_))
        ));
    }

    #[test]
    fn a_64_hex_text_is_always_a_hash_even_when_it_could_be_a_name() {
        let hash = "e".repeat(64);
        assert!(
            hash.parse::<Name>().is_err(),
            "names may not look like a hash"
        );
        match hash.parse::<RefText>().unwrap() {
            RefText::Hash { prefix, export } => {
                assert_eq!(prefix.as_full().unwrap().to_hex(), hash);
                assert_eq!(export, None);
            }
            other => panic!("{hash} read as {other:?}"),
        }
        // Shorter hex that is also a name stays ambiguous: the name wins if it exists.
        assert!(matches!("facade".parse(), Ok(RefText::NameOrHash(..))));
    }

    #[test]
    fn ref_text_errors_are_precise() {
        assert!(matches!(
            "0123:add".parse::<RefText>(),
            Err(RefParseError::Hash(_))
        ));
        assert!(matches!(
            "012345:9x".parse::<RefText>(),
            Err(RefParseError::Export(_))
        ));
        assert!(matches!(
            "012345:spore_alloc".parse::<RefText>(),
            Err(RefParseError::Export(_))
        ));
        assert!(matches!(
            "math..add".parse::<RefText>(),
            Err(RefParseError::Name(_))
        ));
        assert!(matches!(
            "0123".parse::<RefText>(),
            Err(RefParseError::Hash(_))
        ));
    }
}
