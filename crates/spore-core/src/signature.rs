//! Function signatures a module carries in its `spore.signatures` custom sections
//! (`spec/abi.md`, "Signatures"): what people see in `spore inspect`, and what an HTTP
//! route uses to fill a typed function's arguments by name. Informative only: nothing
//! trusts them for safety.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The custom section's name.
pub const SECTION: &str = "spore.signatures";

/// One function's parameters and result, as its source declared them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub name: String,
    pub params: Vec<Param>,
    pub returns: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    /// `int`, `float`, `bool`, `text`, `request` or `any` (an unknown kind is `any`).
    pub kind: String,
}

impl Param {
    /// What values the parameter takes; a kind this code does not know is [`Kind::Any`].
    pub fn kind(&self) -> Kind {
        match self.kind.as_str() {
            "int" => Kind::Int,
            "float" => Kind::Float,
            "bool" => Kind::Bool,
            "text" => Kind::Text,
            "request" => Kind::Request,
            _ => Kind::Any,
        }
    }
}

/// What values a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
    Bool,
    Text,
    Request,
    Any,
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        for (i, param) in self.params.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}: {}", param.name, param.ty)?;
        }
        f.write_str(")")?;
        if !self.returns.is_empty() {
            write!(f, " -> {}", self.returns)?;
        }
        Ok(())
    }
}

/// The signatures of `module`'s functions, sorted by name; the first record of a name
/// counts. Sections or records that do not decode are passed over, with what follows.
pub fn signatures(module: &[u8]) -> Vec<Signature> {
    let mut bytes = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        match payload {
            Ok(wasmparser::Payload::CustomSection(section)) if section.name() == SECTION => {
                bytes.extend_from_slice(section.data());
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let mut found: Vec<Signature> = Vec::new();
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        let before = rest.len();
        match ciborium::from_reader::<Signature, _>(&mut rest) {
            Ok(signature) => {
                if !found.iter().any(|s| s.name == signature.name) {
                    found.push(signature);
                }
            }
            // A record that does not decode leaves the reader somewhere inside it: what
            // follows cannot be found.
            Err(_) => break,
        }
        if rest.len() == before {
            break;
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_shows_as_its_source_wrote_it() {
        let signature = Signature {
            name: "add".into(),
            params: vec![
                Param {
                    name: "a".into(),
                    ty: "i64".into(),
                    kind: "int".into(),
                },
                Param {
                    name: "b".into(),
                    ty: "i64".into(),
                    kind: "int".into(),
                },
            ],
            returns: "Result<i64, String>".into(),
        };
        assert_eq!(
            signature.to_string(),
            "add(a: i64, b: i64) -> Result<i64, String>"
        );
        assert_eq!(signature.params[0].kind(), Kind::Int);
        let none = Signature {
            name: "f".into(),
            params: vec![],
            returns: String::new(),
        };
        assert_eq!(none.to_string(), "f()");
    }
}
