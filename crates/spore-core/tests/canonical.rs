//! Properties of canonical CBOR that memoization and manifest hashes rely on.

use ciborium::Value;
use proptest::prelude::*;
use spore_core::value::{ValueError, check, decode, encode_canonical};

fn values() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| Value::Integer(i.into())),
        any::<u64>().prop_map(|u| Value::Integer(u.into())),
        any::<f64>()
            .prop_filter("NaN has many encodings", |f| !f.is_nan())
            .prop_map(Value::Float),
        ".{0,12}".prop_map(Value::Text),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{0,6}", inner, 0..6).prop_map(|entries| {
                Value::Map(
                    entries
                        .into_iter()
                        .map(|(k, v)| (Value::Text(k), v))
                        .collect(),
                )
            }),
        ]
    })
}

/// The same value with every map's entries reversed.
fn reversed(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .rev()
                .map(|(k, v)| (reversed(k), reversed(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

proptest! {
    #[test]
    fn map_order_does_not_change_the_bytes(value in values()) {
        prop_assert_eq!(encode_canonical(&value).unwrap(), encode_canonical(&reversed(&value)).unwrap());
    }

    #[test]
    fn canonical_bytes_are_a_fixed_point(value in values()) {
        let bytes = encode_canonical(&value).unwrap();
        let again = encode_canonical(&decode(&bytes).unwrap()).unwrap();
        prop_assert_eq!(bytes, again);
    }

    /// Damaged bytes: `decode` refuses exactly what `check` refuses, with the same
    /// error; beyond that only a duplicate key, which `check` does not look for.
    #[test]
    fn check_and_decode_refuse_alike(
        value in values(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let mut bytes = encode_canonical(&value).unwrap();
        let at = at.index(bytes.len());
        if cut {
            bytes.truncate(at);
        } else {
            bytes[at] = byte;
        }
        match (check(&bytes), decode(&bytes)) {
            (Err(checked), decoded) => prop_assert_eq!(Err(checked), decoded),
            (Ok(()), Ok(_) | Err(ValueError::DuplicateKey { .. })) => {}
            (Ok(()), Err(other)) => prop_assert!(false, "check passed, decode refused: {other}"),
        }
    }
}
