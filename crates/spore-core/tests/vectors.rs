//! The test vectors in `spec/vectors/`: the specification and the code must agree.

use serde_json::Value as Json;
use spore_core::{Hash, Manifest, RefText};

fn vectors(file: &str) -> Json {
    let path = format!("{}/../../spec/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

#[test]
fn hash_vectors() {
    let doc = vectors("hashes.json");
    let all = doc["vectors"].as_array().unwrap();
    assert!(all.len() >= 3);
    for vector in all {
        let input = match (vector["utf8"].as_str(), vector["pattern"].as_u64()) {
            (Some(text), _) => text.as_bytes().to_vec(),
            (None, Some(n)) => (0..n).map(|i| (i % 251) as u8).collect(),
            _ => panic!("vector without input: {vector}"),
        };
        let expected = vector["hash"].as_str().unwrap();
        assert_eq!(Hash::of(&input).to_hex(), expected);
        assert_eq!(expected.parse::<Hash>().unwrap(), Hash::of(&input));
    }
}

#[test]
fn reference_vectors() {
    let doc = vectors("references.json");
    for vector in doc["valid"].as_array().unwrap() {
        let text = vector["text"].as_str().unwrap();
        let parsed: RefText = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        let (kind, prefix, export) = match &parsed {
            RefText::Name(_) => ("name", None, None),
            RefText::NameOrHash(_, prefix) => ("name_or_hash", Some(prefix.as_str()), None),
            RefText::Hash { prefix, export } => (
                "hash",
                Some(prefix.as_str()),
                export.as_ref().map(|e| e.as_str()),
            ),
        };
        assert_eq!(kind, vector["kind"].as_str().unwrap(), "{text}");
        assert_eq!(prefix, vector["prefix"].as_str(), "{text}");
        assert_eq!(export, vector["export"].as_str(), "{text}");
    }
    for vector in doc["invalid"].as_array().unwrap() {
        let text = vector["text"].as_str().unwrap();
        assert!(
            text.parse::<RefText>().is_err(),
            "{text:?} should be refused: {}",
            vector["why"]
        );
    }
}

#[test]
fn manifest_vectors() {
    let doc = vectors("manifest.json");
    for vector in doc["vectors"].as_array().unwrap() {
        let module = unhex(vector["module_hex"].as_str().unwrap());
        let wat: Vec<&str> = vector["wat"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert_eq!(
            wat::parse_str(wat.join("\n")).unwrap(),
            module,
            "module_hex is the WAT's encoding"
        );
        assert_eq!(
            Hash::of(&module).to_hex(),
            vector["module_hash"].as_str().unwrap()
        );
        let manifest = Manifest::derive(&module).unwrap();
        for (function, reach) in vector["reach"].as_object().unwrap() {
            let reach: Vec<String> = serde_json::from_value(reach.clone()).unwrap();
            assert_eq!(manifest.reach(&function.parse().unwrap()), reach, "reach of {function}");
        }
        let expected = unhex(vector["manifest_hex"].as_str().unwrap());
        assert_eq!(manifest.to_bytes(), expected, "canonical manifest bytes");
        assert_eq!(
            manifest.hash().to_hex(),
            vector["manifest_hash"].as_str().unwrap()
        );
        assert_eq!(Manifest::from_bytes(&expected).unwrap(), manifest);
    }
}
