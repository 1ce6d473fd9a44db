//! Canonical encoding (`spec/values.md`): RFC 8949 §4.2.1 core deterministic encoding,
//! plus the choices spore makes where that leaves room (one NaN, bignums in preferred
//! serialization, `undefined` never written).

use ciborium::Value;

use super::float::write_float;
use super::head::{Major, write_head};
use super::{MAX_DEPTH, ValueError};

pub(super) fn write(value: &Value, depth: usize, out: &mut Vec<u8>) -> Result<(), ValueError> {
    let enter = || {
        if depth == MAX_DEPTH {
            return Err(ValueError::TooDeep {
                offset: out.len(),
                limit: MAX_DEPTH,
            });
        }
        Ok(depth + 1)
    };
    match value {
        Value::Integer(n) => write_integer(i128::from(*n), out),
        Value::Float(f) => write_float(out, *f),
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Null => out.push(0xf6),
        Value::Bytes(bytes) => {
            write_head(out, Major::Bytes, bytes.len() as u64);
            out.extend_from_slice(bytes);
        }
        Value::Text(text) => {
            write_head(out, Major::Text, text.len() as u64);
            out.extend_from_slice(text.as_bytes());
        }
        Value::Array(items) => {
            let inner = enter()?;
            write_head(out, Major::Array, items.len() as u64);
            for item in items {
                write(item, inner, out)?;
            }
        }
        Value::Map(entries) => {
            let inner = enter()?;
            let sorted = sorted_entries(entries, inner)?;
            write_head(out, Major::Map, sorted.len() as u64);
            for (key, value) in sorted {
                out.extend_from_slice(&key);
                write(value, inner, out)?;
            }
        }
        Value::Tag(tag, content) => {
            let inner = enter()?;
            match bignum(*tag, content) {
                Some(Bignum::Integer(n)) => write_integer(n, out),
                Some(Bignum::Large(significant)) => {
                    write_head(out, Major::Tag, *tag);
                    write_head(out, Major::Bytes, significant.len() as u64);
                    out.extend_from_slice(significant);
                }
                None => {
                    write_head(out, Major::Tag, *tag);
                    write(content, inner, out)?;
                }
            }
        }
        // ciborium's `Value` is non-exhaustive; every variant it has today is above.
        other => return Err(ValueError::Unserializable(format!("{other:?}"))),
    }
    Ok(())
}

fn write_integer(n: i128, out: &mut Vec<u8>) {
    // ciborium's `Integer` holds exactly [-2^64, 2^64-1], so the argument fits 64 bits.
    if n >= 0 {
        write_head(out, Major::Unsigned, n as u64);
    } else {
        write_head(out, Major::Negative, (-1 - n) as u64);
    }
}

/// The entries of a map with their keys encoded, in canonical order: bytewise by the
/// keys' encodings. Two keys with the same encoding are the same key, refused.
pub(super) fn sorted_entries(
    entries: &[(Value, Value)],
    depth: usize,
) -> Result<Vec<(Vec<u8>, &Value)>, ValueError> {
    let mut sorted = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let mut encoded = Vec::new();
        write(key, depth, &mut encoded)?;
        sorted.push((encoded, key, value));
    }
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(ValueError::DuplicateKey {
            key: super::to_json(pair[0].1).to_string(),
        });
    }
    Ok(sorted
        .into_iter()
        .map(|(encoded, _, value)| (encoded, value))
        .collect())
}

/// A bignum (tag 2 or 3 on a byte string, RFC 8949 §3.4.3) in preferred serialization.
pub(super) enum Bignum<'a> {
    /// It fits an integer, and is one.
    Integer(i128),
    /// It does not: its bytes without leading zeros.
    Large(&'a [u8]),
}

/// `tag` on `content` as a bignum; `None` if it is not one.
pub(super) fn bignum(tag: u64, content: &Value) -> Option<Bignum<'_>> {
    let (2 | 3, Value::Bytes(bytes)) = (tag, content) else {
        return None;
    };
    let significant = &bytes[bytes.iter().take_while(|&&b| b == 0).count()..];
    if significant.len() > 8 {
        return Some(Bignum::Large(significant));
    }
    let magnitude = i128::from(significant.iter().fold(0u64, |n, &b| n << 8 | u64::from(b)));
    Some(Bignum::Integer(if tag == 2 {
        magnitude
    } else {
        -1 - magnitude
    }))
}
