//! The JSON mapping people type and read (`spec/values.md`, "JSON").
//!
//! Numbers are read from their text (serde_json keeps it, with its
//! `arbitrary_precision` feature), so that every integer in [-2^64, 2^64-1] is exact and
//! every other number is the nearest double.

use ciborium::Value;
use serde_json::Value as Json;

use super::ValueError;

/// Converts a JSON value a person typed into the CBOR value a function receives.
pub fn from_json(json: &Json) -> Result<Value, ValueError> {
    Ok(match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => number(n.as_str())?,
        Json::String(s) => Value::Text(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(from_json).collect::<Result<_, _>>()?),
        Json::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| Ok((Value::Text(k.clone()), from_json(v)?)))
                .collect::<Result<_, ValueError>>()?,
        ),
    })
}

/// A JSON number's text as a value: an integer when it has no fraction and no exponent
/// and lies in [-2^64, 2^64-1], else the nearest double.
fn number(text: &str) -> Result<Value, ValueError> {
    let integral = !text.contains(['.', 'e', 'E']);
    if integral
        && let Some(n) = text
            .parse::<i128>()
            .ok()
            .and_then(|n| ciborium::value::Integer::try_from(n).ok())
    {
        return Ok(Value::Integer(n));
    }
    // `str::parse` rounds correctly to the nearest double; JSON's number syntax is a
    // subset of what it accepts, and a number beyond the doubles reads as infinity.
    text.parse::<f64>()
        .ok()
        .filter(|float| float.is_finite())
        .map(Value::Float)
        .ok_or_else(|| ValueError::OutOfRange {
            number: text.to_owned(),
        })
}

/// Converts a CBOR value into JSON for display.
pub fn to_json(value: &Value) -> Json {
    use serde_json::json;
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Integer(i) => Json::Number(
            serde_json::Number::from_i128(i128::from(*i))
                .expect("arbitrary_precision holds every integer"),
        ),
        Value::Float(f) if f.is_nan() => Json::from("NaN"),
        Value::Float(f) if f.is_infinite() => {
            Json::from(if *f > 0.0 { "Infinity" } else { "-Infinity" })
        }
        Value::Float(f) => Json::from(*f),
        Value::Text(s) => Json::String(s.clone()),
        Value::Bytes(b) => json!({ "$bytes": hex(b) }),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) if entries.iter().all(|(k, _)| k.is_text()) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.as_text().expect("checked").to_owned(), to_json(v)))
                .collect(),
        ),
        Value::Map(entries) => Json::Array(
            entries
                .iter()
                .map(|(k, v)| Json::Array(vec![to_json(k), to_json(v)]))
                .collect(),
        ),
        Value::Tag(tag, inner) => json!({ "$tag": tag, "value": to_json(inner) }),
        // ciborium's `Value` is non-exhaustive; every variant it has today is above.
        _ => Json::Null,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
