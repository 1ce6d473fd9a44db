//! The test vectors in `spec/vectors/`: the specification and the code must agree.

use serde_json::Value as Json;
use spore_core::value::{ValueError, check, decode, encode_canonical, from_json, to_json};
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
            assert_eq!(
                manifest.reach(&function.parse().unwrap()),
                reach,
                "reach of {function}"
            );
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

/// The name `values.json` gives an error, and the byte offset and simple value it names.
fn refusal(error: &ValueError) -> (&'static str, Option<u64>, Option<u64>) {
    let at = |offset: &usize| Some(*offset as u64);
    match error {
        ValueError::OutOfRange { .. } => ("out_of_range", None, None),
        ValueError::DuplicateKey { .. } => ("duplicate_key", None, None),
        ValueError::Truncated { offset } => ("truncated", at(offset), None),
        ValueError::Malformed { offset, .. } => ("malformed", at(offset), None),
        ValueError::TrailingBytes { offset, .. } => ("trailing_bytes", at(offset), None),
        ValueError::TooDeep { offset, .. } => ("too_deep", at(offset), None),
        ValueError::SimpleValue { offset, value } => {
            ("simple_value", at(offset), Some(u64::from(*value)))
        }
        other => panic!("no vector names {other:?}"),
    }
}

/// JSON values compared as `values.json` says: numbers by value, and an integer (a
/// number without fraction or exponent) only equals an integer.
fn same_json(shown: &Json, expected: &Json) -> bool {
    match (shown, expected) {
        (Json::Number(a), Json::Number(b)) => {
            let integral = |text: &str| !text.contains(['.', 'e', 'E']);
            let (a, b) = (a.as_str(), b.as_str());
            match (integral(a), integral(b)) {
                (true, true) => a.parse::<i128>().unwrap() == b.parse::<i128>().unwrap(),
                (false, false) => {
                    a.parse::<f64>().unwrap().to_bits() == b.parse::<f64>().unwrap().to_bits()
                }
                _ => false,
            }
        }
        (Json::Array(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_json(a, b))
        }
        (Json::Object(a), Json::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(key, a)| b.get(key).is_some_and(|b| same_json(a, b)))
        }
        (a, b) => a == b,
    }
}

fn assert_displays(value: &ciborium::Value, vector: &Json) {
    let shown = to_json(value);
    let Some(display) = vector["display"].as_str() else {
        return;
    };
    let expected: Json = serde_json::from_str(display).unwrap();
    assert!(
        same_json(&shown, &expected),
        "{vector}: displayed as {shown}"
    );
}

#[test]
fn value_vectors() {
    let doc = vectors("values.json");
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
    for vector in doc["from_json"].as_array().unwrap() {
        let json: Json = serde_json::from_str(vector["json"].as_str().unwrap()).unwrap();
        let value = from_json(&json).unwrap_or_else(|e| panic!("{vector}: {e}"));
        let cbor = encode_canonical(&value).unwrap();
        assert_eq!(hex(&cbor), vector["cbor"].as_str().unwrap(), "{vector}");
        assert_eq!(check(&cbor), Ok(()), "{vector}");
        assert_displays(&decode(&cbor).unwrap(), vector);
    }
    for vector in doc["from_cbor"].as_array().unwrap() {
        let input = unhex(vector["cbor"].as_str().unwrap());
        assert_eq!(check(&input), Ok(()), "{vector}");
        let value = decode(&input).unwrap_or_else(|e| panic!("{vector}: {e}"));
        let canonical = encode_canonical(&value).unwrap();
        assert_eq!(
            hex(&canonical),
            vector["canonical"].as_str().unwrap(),
            "{vector}"
        );
        let again = encode_canonical(&decode(&canonical).unwrap()).unwrap();
        assert_eq!(
            again, canonical,
            "{vector}: canonical bytes are a fixed point"
        );
        assert_displays(&value, vector);
    }
    let refused = doc["refused"].as_array().unwrap();
    assert!(refused.len() >= 10);
    for vector in refused {
        let error = match (vector["json"].as_str(), vector["cbor"].as_str()) {
            (Some(text), None) => from_json(&serde_json::from_str(text).unwrap()).unwrap_err(),
            (None, Some(cbor)) => {
                let input = unhex(cbor);
                let error = decode(&input).unwrap_err();
                match &error {
                    // `check` does not look for duplicate keys (spec/values.md).
                    ValueError::DuplicateKey { .. } => assert_eq!(check(&input), Ok(())),
                    _ => assert_eq!(check(&input).unwrap_err(), error, "{vector}"),
                }
                error
            }
            _ => panic!("a refusal without input: {vector}"),
        };
        let expected = (
            vector["error"].as_str().unwrap(),
            vector["offset"].as_u64(),
            vector["simple_value"].as_u64(),
        );
        assert_eq!(refusal(&error), expected, "{vector}: {error}");
    }
}

mod trust {
    use super::{unhex, vectors};
    use serde_json::Value as Json;
    use spore_core::trust::{
        Body, ChainRun, Hello, Membership, PublicKey, Publication, Revocation, SecretKey, Signed,
        TrustError,
    };

    /// Checks that `bytes` are a record of kind `B` equal to the vector's.
    fn valid<B: Body>(vector: &Json, bytes: &[u8]) {
        let record = Signed::<B>::from_bytes(bytes).unwrap_or_else(|e| panic!("{vector}: {e}"));
        assert_eq!(record.as_bytes(), bytes);
        assert_eq!(record.to_text(), vector["text"].as_str().unwrap());
        assert_eq!(
            Signed::<B>::from_text(&record.to_text())
                .unwrap()
                .as_bytes(),
            bytes
        );
        assert_eq!(record.hash().to_hex(), vector["hash"].as_str().unwrap());
    }

    fn error<B: Body>(bytes: &[u8]) -> TrustError {
        Signed::<B>::from_bytes(bytes).expect_err("an invalid record is refused")
    }

    #[test]
    fn trust_key_vectors() {
        let doc = vectors("trust.json");
        for key in doc["keys"].as_array().unwrap() {
            let secret: SecretKey = key["secret"].as_str().unwrap().parse().unwrap();
            let public: PublicKey = key["public"].as_str().unwrap().parse().unwrap();
            assert_eq!(secret.public(), public, "{key}");
            assert_eq!(secret.to_text(), key["secret"].as_str().unwrap());
            assert_eq!(public.to_string(), key["public"].as_str().unwrap());
        }
    }

    #[test]
    fn trust_record_vectors() {
        let doc = vectors("trust.json");
        let all = doc["valid"].as_array().unwrap();
        assert!(all.len() >= 6);
        let mut certificates = Vec::new();
        let mut revocations = Vec::new();
        for vector in all {
            let bytes = unhex(vector["bytes"].as_str().unwrap());
            match vector["kind"].as_str().unwrap() {
                "membership" => {
                    valid::<Membership>(vector, &bytes);
                    certificates.push(Some(Signed::<Membership>::from_bytes(&bytes).unwrap()));
                    revocations.push(None);
                }
                "revocation" => {
                    valid::<Revocation>(vector, &bytes);
                    certificates.push(None);
                    revocations.push(Some(Signed::<Revocation>::from_bytes(&bytes).unwrap()));
                }
                "publication" => {
                    valid::<Publication>(vector, &bytes);
                    certificates.push(None);
                    revocations.push(None);
                }
                other => panic!("unknown kind {other}"),
            }
        }
        for vector in doc["invalid"].as_array().unwrap() {
            let bytes = unhex(vector["bytes"].as_str().unwrap());
            let found = match vector["kind"].as_str().unwrap() {
                "membership" => error::<Membership>(&bytes),
                "publication" => error::<Publication>(&bytes),
                "revocation" => error::<Revocation>(&bytes),
                other => panic!("unknown kind {other}"),
            };
            assert_eq!(
                found.code(),
                vector["error"].as_str().unwrap(),
                "{vector}: {found}"
            );
        }
        for check in doc["checks"].as_array().unwrap() {
            let index = check["certificate"].as_u64().unwrap() as usize;
            let certificate = certificates[index].as_ref().unwrap();
            let revoked: Vec<_> = check["revocations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| revocations[i.as_u64().unwrap() as usize].clone().unwrap())
                .collect();
            let result = certificate.admits(
                &check["mesh"].as_str().unwrap().parse().unwrap(),
                &check["node"].as_str().unwrap().parse().unwrap(),
                check["now_ms"].as_u64().unwrap(),
                &revoked,
            );
            let said = result.as_ref().map_or_else(TrustError::code, |()| "ok");
            assert_eq!(said, check["result"].as_str().unwrap(), "{check}");
        }
        let mut chain = spore_core::trust::NameChain::default();
        for step in doc["chain"].as_array().unwrap() {
            let record = Signed::<Publication>::from_bytes(&unhex(step["bytes"].as_str().unwrap()))
                .unwrap_or_else(|e| panic!("{step}: {e}"));
            let said = match chain.accept(record) {
                Ok(spore_core::trust::Accepted::Appended) => "appended",
                Ok(spore_core::trust::Accepted::AlreadyHeld) => "already_held",
                Err(refusal) => refusal.code(),
            };
            assert_eq!(said, step["result"].as_str().unwrap(), "{step}");
        }
        let publications: Vec<Signed<Publication>> = doc["chain"].as_array().unwrap()[..4]
            .iter()
            .filter(|step| step["result"] == "appended")
            .map(|step| Signed::from_bytes(&unhex(step["bytes"].as_str().unwrap())).unwrap())
            .collect();
        for vector in doc["chain_messages"].as_array().unwrap() {
            let bytes = unhex(vector["cbor"].as_str().unwrap());
            let held = vector["held"].as_u64().unwrap() as usize;
            let mut chain = spore_core::trust::NameChain::default();
            for record in &publications[..held] {
                chain.accept(record.clone()).unwrap();
            }
            let said = ChainRun::from_bytes(&bytes)
                .and_then(|run| {
                    assert_eq!(run.to_bytes(), bytes, "{vector}");
                    chain.accept_run(&run)
                })
                .map_or_else(|e| serde_json::json!(e.code()), |n| serde_json::json!(n));
            assert_eq!(said, vector["result"], "{vector}");
        }
        for vector in doc["dht_keys"].as_array().unwrap() {
            let publisher: PublicKey = vector["publisher"].as_str().unwrap().parse().unwrap();
            let key = spore_core::trust::chain_key(&publisher, vector["name"].as_str().unwrap());
            assert_eq!(
                hex::encode(key),
                vector["key"].as_str().unwrap(),
                "{vector}"
            );
        }
        for vector in doc["policies"].as_array().unwrap() {
            let rules = vector["policy"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(pattern, keys)| {
                    let keys = keys
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|k| k.as_str().unwrap().parse().unwrap())
                        .collect();
                    (pattern.parse().unwrap(), keys)
                })
                .collect();
            let policy = spore_core::trust::NamePolicy::new(rules);
            let found: Vec<String> = policy
                .publishers_for(vector["name"].as_str().unwrap())
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(serde_json::json!(found), vector["publishers"], "{vector}");
        }
        for hello in doc["hellos"].as_array().unwrap() {
            let bytes = unhex(hello["cbor"].as_str().unwrap());
            let decoded: Hello = spore_core::value::decode_as(&bytes).unwrap();
            assert_eq!(
                spore_core::value::to_canonical(&decoded).unwrap(),
                bytes,
                "{hello}"
            );
            if let Some(certificate) = &decoded.certificate {
                Signed::<Membership>::from_bytes(certificate).unwrap();
            }
        }
    }
}
