//! The value codec (`spec/values.md`): canonical CBOR, and the JSON mapping people use.

use ciborium::Value;

/// Why bytes are not one well-formed CBOR value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    #[error("malformed CBOR: {0}")]
    Malformed(String),
    #[error("{0} unexpected bytes after the CBOR value")]
    TrailingBytes(usize),
    #[error("a CBOR map has the same key twice")]
    DuplicateKey,
}

/// Decodes exactly one CBOR data item; trailing bytes are an error.
pub fn decode(bytes: &[u8]) -> Result<Value, ValueError> {
    let mut rest = bytes;
    let value: Value =
        ciborium::from_reader(&mut rest).map_err(|e| ValueError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(ValueError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

/// Decodes a CBOR data item into a typed value, with the same strictness as [`decode`].
pub fn decode_as<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ValueError> {
    let mut rest = bytes;
    let value: T =
        ciborium::from_reader(&mut rest).map_err(|e| ValueError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(ValueError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

/// Encodes `value` in RFC 8949 core deterministic form: equal values give equal bytes.
pub fn encode_canonical(value: &Value) -> Result<Vec<u8>, ValueError> {
    let mut out = Vec::new();
    write_canonical(value, &mut out)?;
    Ok(out)
}

/// Encodes any serializable type canonically (through [`Value`], so map order is fixed).
pub fn to_canonical<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ValueError> {
    let value = Value::serialized(value).map_err(|e| ValueError::Malformed(e.to_string()))?;
    encode_canonical(&value)
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<(), ValueError> {
    use ciborium::value::Value as V;
    match value {
        V::Array(items) => {
            write_head(out, 4, items.len() as u64);
            for item in items {
                write_canonical(item, out)?;
            }
        }
        V::Map(entries) => {
            let mut encoded = Vec::with_capacity(entries.len());
            for (key, val) in entries {
                let mut key_bytes = Vec::new();
                write_canonical(key, &mut key_bytes)?;
                encoded.push((key_bytes, val));
            }
            encoded.sort_by(|a, b| a.0.cmp(&b.0));
            if encoded.windows(2).any(|pair| pair[0].0 == pair[1].0) {
                return Err(ValueError::DuplicateKey);
            }
            write_head(out, 5, encoded.len() as u64);
            for (key_bytes, val) in encoded {
                out.extend_from_slice(&key_bytes);
                write_canonical(val, out)?;
            }
        }
        V::Tag(tag, inner) => {
            write_head(out, 6, *tag);
            write_canonical(inner, out)?;
        }
        // Scalars: ciborium already writes shortest-form integers, lengths and floats.
        scalar => ciborium::into_writer(scalar, &mut *out)
            .map_err(|e| ValueError::Malformed(e.to_string()))?,
    }
    Ok(())
}

/// Writes a CBOR head: major type `major` (0 to 7) and argument `arg`, in its shortest
/// form (RFC 8949 §3).
pub fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let major = major << 5;
    match arg {
        0..=23 => out.push(major | arg as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, arg as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(arg as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(arg as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&arg.to_be_bytes());
        }
    }
}

/// Converts a JSON value a person typed into the CBOR value a function receives.
pub fn from_json(json: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::Integer(u.into()),
            (None, Some(i)) => Value::Integer(i.into()),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::Text(s.clone()),
        J::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        J::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (Value::Text(k.clone()), from_json(v)))
                .collect(),
        ),
    }
}

/// Converts a CBOR value into JSON for display, as `spec/values.md` specifies.
pub fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::{Value as J, json};
    match value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Integer(i) => {
            let i = i128::from(*i);
            match (u64::try_from(i), i64::try_from(i)) {
                (Ok(u), _) => J::from(u),
                (_, Ok(s)) => J::from(s),
                // Below -2^63 JSON numbers lose precision; a float is the honest display.
                _ => J::from(i as f64),
            }
        }
        Value::Float(f) if f.is_nan() => J::from("NaN"),
        Value::Float(f) if f.is_infinite() => {
            J::from(if *f > 0.0 { "Infinity" } else { "-Infinity" })
        }
        Value::Float(f) => J::from(*f),
        Value::Text(s) => J::String(s.clone()),
        Value::Bytes(b) => json!({ "$bytes": hex(b) }),
        Value::Array(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) if entries.iter().all(|(k, _)| k.is_text()) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (k.as_text().expect("checked").to_owned(), to_json(v)))
                .collect(),
        ),
        Value::Map(entries) => J::Array(
            entries
                .iter()
                .map(|(k, v)| J::Array(vec![to_json(k), to_json(v)]))
                .collect(),
        ),
        Value::Tag(tag, inner) => json!({ "$tag": tag, "value": to_json(inner) }),
        _ => J::Null,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn map_keys_are_sorted_by_encoded_bytes() {
        let a = Value::Map(vec![
            (text("bb"), 1.into()),
            (text("a"), 2.into()),
            (text("c"), 3.into()),
        ]);
        let b = Value::Map(vec![
            (text("c"), 3.into()),
            (text("bb"), 1.into()),
            (text("a"), 2.into()),
        ]);
        let bytes = encode_canonical(&a).unwrap();
        assert_eq!(bytes, encode_canonical(&b).unwrap());
        // {"a": 2, "c": 3, "bb": 1}: shorter keys first.
        assert_eq!(
            bytes,
            [0xa3, 0x61, b'a', 2, 0x61, b'c', 3, 0x62, b'b', b'b', 1]
        );
    }

    #[test]
    fn integers_and_floats_take_their_shortest_form() {
        assert_eq!(
            encode_canonical(&Value::Integer(23.into())).unwrap(),
            [0x17]
        );
        assert_eq!(
            encode_canonical(&Value::Integer(500.into())).unwrap(),
            [0x19, 0x01, 0xf4]
        );
        assert_eq!(
            encode_canonical(&Value::Integer((-1).into())).unwrap(),
            [0x20]
        );
        assert_eq!(
            encode_canonical(&Value::Float(1.5)).unwrap(),
            [0xf9, 0x3e, 0x00]
        );
        assert_eq!(encode_canonical(&Value::Float(0.1)).unwrap().len(), 9);
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let dup = Value::Map(vec![(text("a"), 1.into()), (text("a"), 2.into())]);
        assert_eq!(encode_canonical(&dup), Err(ValueError::DuplicateKey));
    }

    #[test]
    fn decode_is_strict() {
        assert_eq!(decode(&[0x01, 0x02]), Err(ValueError::TrailingBytes(1)));
        assert!(matches!(
            decode(&[0x62, b'a']),
            Err(ValueError::Malformed(_))
        ));
        assert!(matches!(decode(&[]), Err(ValueError::Malformed(_))));
        assert_eq!(decode(&[0x18, 0x64]).unwrap(), Value::Integer(100.into()));
    }

    #[test]
    fn json_round_trips_through_cbor() {
        let original =
            json!({"a": [1, -2, 2.5, "x", null, true], "b": {"c": 18446744073709551615u64}});
        let cbor = from_json(&original);
        let bytes = encode_canonical(&cbor).unwrap();
        assert_eq!(to_json(&decode(&bytes).unwrap()), original);
    }

    #[test]
    fn cbor_only_values_have_a_json_display() {
        assert_eq!(
            to_json(&Value::Bytes(vec![0xde, 0xad])),
            json!({"$bytes": "dead"})
        );
        assert_eq!(to_json(&Value::Float(f64::NAN)), json!("NaN"));
        let int_keys = Value::Map(vec![(1.into(), text("one"))]);
        assert_eq!(to_json(&int_keys), json!([[1, "one"]]));
        assert_eq!(
            to_json(&Value::Tag(1, Box::new(0.into()))),
            json!({"$tag": 1, "value": 0})
        );
    }
}
