//! The value codec's behaviour (`spec/values.md`): JSON numbers, canonical CBOR, and what
//! `check` and `decode` refuse.

use ciborium::Value;
use serde_json::json;
use spore_core::value::{
    MAX_DEPTH, ValueError, check, decode, decode_as, encode_canonical, from_json, to_json,
};

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The canonical CBOR, in hex, of the JSON `text`.
fn canonical_of_json(text: &str) -> Result<String, ValueError> {
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    Ok(hex(&encode_canonical(&from_json(&json)?).unwrap()))
}

fn integer(n: i128) -> Value {
    Value::Integer(n.try_into().unwrap())
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[test]
fn json_integers_down_to_minus_two_to_the_64_stay_exact() {
    assert_eq!(
        canonical_of_json("-9223372036854775809").unwrap(),
        "3b8000000000000000"
    );
    assert_eq!(
        canonical_of_json("-18446744073709551616").unwrap(),
        "3bffffffffffffffff"
    );
    assert_eq!(
        canonical_of_json("18446744073709551615").unwrap(),
        "1bffffffffffffffff"
    );
    for n in [-(1i128 << 64), -(1 << 63) - 1, (1 << 64) - 1] {
        assert_eq!(to_json(&integer(n)).to_string(), n.to_string());
    }
}

#[test]
fn json_floats_are_read_to_the_nearest_double() {
    // f32::MAX exactly, so single precision holds it.
    assert_eq!(
        canonical_of_json("3.4028234663852886e38").unwrap(),
        "fa7f7fffff"
    );
    let cases = [
        ("0.1000000000000000055511151231257827", 0.1),
        ("2.2250738585072011e-308", 2.225073858507201e-308),
        // Halfway between two doubles: to the even one.
        ("9007199254740993.0", 9007199254740992.0),
        ("9007199254740995.0", 9007199254740996.0),
        ("1e-400", 0.0),
    ];
    for (text, expected) in cases {
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(from_json(&json).unwrap(), Value::Float(expected), "{text}");
    }
}

#[test]
fn a_json_number_is_an_integer_exactly_when_it_has_no_fraction_and_no_exponent() {
    let cases = [
        ("-0", "00"),
        ("0", "00"),
        ("-0.0", "f98000"),
        ("1.0", "f93c00"),
        ("1e3", "f963d0"),
        ("1E0", "f93c00"),
        ("9007199254740993", "1b0020000000000001"),
        // Integers outside [-2^64, 2^64-1] are the nearest double.
        ("18446744073709551616", "fa5f800000"),
        ("-18446744073709551617", "fadf800000"),
        (
            "340282366920938463463374607431768211457",
            "fb47f0000000000000",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(canonical_of_json(text).unwrap(), expected, "{text}");
    }
}

#[test]
fn json_numbers_beyond_the_doubles_are_refused() {
    for text in [
        "1e400",
        "-1e400",
        "1.8e308",
        &format!("1{}", "0".repeat(400)),
    ] {
        assert!(
            matches!(canonical_of_json(text), Err(ValueError::OutOfRange { .. })),
            "{text}"
        );
    }
    // The largest double, and a number that rounds down to it, are in range.
    assert!(canonical_of_json("1.7976931348623158e308").is_ok());
    assert!(canonical_of_json("1.7976931348623158079e308").is_ok());
    // serde_json keeps the number's text with the exponent's sign written out.
    let error = canonical_of_json("[1, {\"a\": 1e400}]").unwrap_err();
    assert_eq!(
        error.to_string(),
        "the number 1e+400 is beyond the range of a double"
    );
}

#[test]
fn floats_display_so_that_they_read_back_as_floats() {
    for f in [1.0, -0.0, 1e300, 0.1, 1e16, 5e-324, f64::MAX] {
        let shown = to_json(&Value::Float(f)).to_string();
        assert!(shown.contains(['.', 'e']), "{shown}");
        let back = from_json(&serde_json::from_str(&shown).unwrap()).unwrap();
        assert_eq!(back, Value::Float(f), "{shown}");
        if let Value::Float(back) = back {
            assert_eq!(back.to_bits(), f.to_bits(), "{shown}");
        }
    }
    assert_eq!(to_json(&Value::Float(f64::NAN)), json!("NaN"));
    assert_eq!(to_json(&Value::Float(f64::INFINITY)), json!("Infinity"));
    assert_eq!(
        to_json(&Value::Float(f64::NEG_INFINITY)),
        json!("-Infinity")
    );
}

#[test]
fn special_floats_and_extreme_integers_have_one_encoding() {
    let cases = [
        (Value::Float(f64::NAN), "f97e00"),
        (Value::Float(-f64::NAN), "f97e00"),
        (
            Value::Float(f64::from_bits(0x7ff0_0000_0000_0001)),
            "f97e00",
        ),
        (Value::Float(f64::INFINITY), "f97c00"),
        (Value::Float(f64::NEG_INFINITY), "f9fc00"),
        (Value::Float(-0.0), "f98000"),
        (Value::Float(0.0), "f90000"),
        (integer((1 << 64) - 1), "1bffffffffffffffff"),
        (integer(-(1 << 64)), "3bffffffffffffffff"),
    ];
    for (value, expected) in cases {
        assert_eq!(
            hex(&encode_canonical(&value).unwrap()),
            expected,
            "{value:?}"
        );
    }
    // Any NaN that arrives is the one NaN.
    for nan in ["f97e01", "f9fe00", "fa7fc00001", "fb7ff8000000000001"] {
        let value = decode(&unhex(nan)).unwrap();
        assert_eq!(hex(&encode_canonical(&value).unwrap()), "f97e00", "{nan}");
    }
}

#[test]
fn bignums_take_their_preferred_serialization() {
    let cases = [
        ("c24101", "01"),
        ("c240", "00"),
        ("c34100", "20"),
        ("c348ffffffffffffffff", "3bffffffffffffffff"),
        ("c2490000000000000000ff", "18ff"),
        ("c249010000000000000000", "c249010000000000000000"),
        ("c24a00010000000000000000", "c249010000000000000000"),
    ];
    for (input, expected) in cases {
        let value = decode(&unhex(input)).unwrap();
        assert_eq!(hex(&encode_canonical(&value).unwrap()), expected, "{input}");
        let built = Value::Tag(
            unhex(input)[0] as u64 - 0xc0,
            Box::new(Value::Bytes(unhex(&input[4..]))),
        );
        assert_eq!(hex(&encode_canonical(&built).unwrap()), expected, "{input}");
    }
    assert_eq!(
        check(&unhex("c201")),
        Err(ValueError::Malformed {
            offset: 0,
            problem: "a bignum tag (2 or 3) must enclose a byte string"
        })
    );
}

#[test]
fn simple_values_outside_the_data_model_are_named() {
    let cases = [
        ("8201f820", 2, 32),
        ("e0", 0, 0),
        ("f3", 0, 19),
        ("a16161f8ff", 3, 255),
    ];
    for (input, offset, value) in cases {
        let expected = ValueError::SimpleValue { offset, value };
        assert_eq!(check(&unhex(input)), Err(expected.clone()), "{input}");
        assert_eq!(decode(&unhex(input)), Err(expected.clone()), "{input}");
        assert_eq!(decode_as::<Value>(&unhex(input)), Err(expected), "{input}");
    }
    assert_eq!(
        decode(&unhex("8201f820")).unwrap_err().to_string(),
        "CBOR simple value 32 at byte 2 is not a spore value \
         (of the simple values, only false, true, null and undefined are)"
    );
    // `undefined` reads as null and is written as null.
    assert_eq!(decode(&[0xf7]), Ok(Value::Null));
    assert_eq!(encode_canonical(&decode(&[0xf7]).unwrap()).unwrap(), [0xf6]);
}

#[test]
fn malformed_cbor_is_refused_with_what_and_where() {
    let malformed = |input: &str, offset: usize, problem: &str| {
        match check(&unhex(input)) {
            Err(ValueError::Malformed {
                offset: at,
                problem: what,
            }) => {
                assert_eq!((at, what), (offset, problem), "{input}");
            }
            other => panic!("{input}: {other:?}"),
        }
        assert_eq!(
            decode(&unhex(input)),
            check(&unhex(input)).map(|()| Value::Null)
        );
    };
    malformed("821c", 1, "additional information 28 to 30 is reserved");
    malformed("8201ff", 2, "a break outside an indefinite-length item");
    malformed("bf6161ff", 3, "a break outside an indefinite-length item");
    malformed(
        "1f",
        0,
        "additional information 31 is only for strings, arrays, maps and break",
    );
    malformed(
        "f814",
        0,
        "a simple value below 32 must be in the initial byte",
    );
    malformed("62c328", 0, "a text string is not valid UTF-8");
    // A character split between two chunks.
    malformed("7f61c361a9ff", 1, "a text string is not valid UTF-8");
    malformed(
        "5f6161ff",
        1,
        "a chunk of an indefinite-length string must be a definite-length string of the same type",
    );
    malformed(
        "5f5fffff",
        1,
        "a chunk of an indefinite-length string must be a definite-length string of the same type",
    );
}

#[test]
fn truncation_names_the_item_it_cut() {
    for (input, offset) in [
        ("", 0),
        ("18", 0),
        ("8201", 2),
        ("8261", 1),
        ("826161", 3),
        ("a1", 1),
        ("9f01", 2),
        ("5f41", 1),
        ("7bffffffffffffffff", 0),
        ("c2", 1),
    ] {
        assert_eq!(
            check(&unhex(input)),
            Err(ValueError::Truncated { offset }),
            "{input}"
        );
    }
}

#[test]
fn trailing_bytes_are_refused() {
    assert_eq!(
        decode(&[0x01, 0x02, 0x03]),
        Err(ValueError::TrailingBytes {
            offset: 1,
            count: 2
        })
    );
    assert_eq!(
        check(&[0x80, 0x00]),
        Err(ValueError::TrailingBytes {
            offset: 1,
            count: 1
        })
    );
}

#[test]
fn nesting_is_limited_to_max_depth() {
    assert_eq!(MAX_DEPTH, 128);
    let nested = |depth: usize, container: u8| {
        let mut bytes = vec![container; depth];
        bytes.push(0);
        bytes
    };
    // Arrays, and tags, count alike.
    for container in [0x81, 0xc6] {
        assert_eq!(check(&nested(MAX_DEPTH, container)), Ok(()));
        assert!(decode(&nested(MAX_DEPTH, container)).is_ok());
        let too_deep = Err(ValueError::TooDeep {
            offset: MAX_DEPTH,
            limit: MAX_DEPTH,
        });
        assert_eq!(check(&nested(MAX_DEPTH + 1, container)), too_deep);
        assert_eq!(
            decode(&nested(MAX_DEPTH + 1, container)).map(|_| ()),
            too_deep
        );
    }
    // Far too deep for the stack, if anything recursed past the limit.
    assert!(matches!(
        check(&nested(1 << 20, 0x9f)),
        Err(ValueError::TooDeep { .. })
    ));
    // What spore reads it can write, and what it writes it can read.
    let mut value = Value::Null;
    for _ in 0..=MAX_DEPTH {
        value = Value::Array(vec![value]);
    }
    assert!(matches!(
        encode_canonical(&value),
        Err(ValueError::TooDeep { .. })
    ));
}

#[test]
fn duplicate_map_keys_are_refused() {
    let dup = Value::Map(vec![(text("a"), 1.into()), (text("a"), 2.into())]);
    let expected = ValueError::DuplicateKey {
        key: "\"a\"".to_owned(),
    };
    assert_eq!(encode_canonical(&dup), Err(expected.clone()));
    assert_eq!(decode(&unhex("a2616101616102")), Err(expected));
    // The same key in two encodings is the same key.
    assert_eq!(
        decode(&unhex("a20101180102")),
        Err(ValueError::DuplicateKey {
            key: "1".to_owned()
        })
    );
    assert!(check(&unhex("a2616101616102")).is_ok());
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
    for (value, expected) in [
        (integer(23), "17"),
        (integer(24), "1818"),
        (integer(500), "1901f4"),
        (integer(-1), "20"),
        (integer(-500), "3901f3"),
        (Value::Float(1.5), "f93e00"),
        (Value::Float(100000.0), "fa47c35000"),
        (Value::Float(0.1), "fb3fb999999999999a"),
    ] {
        assert_eq!(
            hex(&encode_canonical(&value).unwrap()),
            expected,
            "{value:?}"
        );
    }
}

#[test]
fn indefinite_lengths_are_read_and_written_definite() {
    for (input, expected) in [
        ("9f0102ff", "820102"),
        ("bf616101ff", "a1616101"),
        ("7f6161626263ff", "63616263"),
        ("5f4101ff", "4101"),
        ("7fff", "60"),
    ] {
        let value = decode(&unhex(input)).unwrap();
        assert_eq!(hex(&encode_canonical(&value).unwrap()), expected, "{input}");
    }
}

#[test]
fn json_round_trips_through_cbor() {
    let original = serde_json::from_str(
        r#"{"a": [1, -2, 2.5, "x", null, true], "b": {"c": 18446744073709551615, "d": -18446744073709551616}}"#,
    )
    .unwrap();
    let bytes = encode_canonical(&from_json(&original).unwrap()).unwrap();
    assert_eq!(to_json(&decode(&bytes).unwrap()), original);
}

#[test]
fn cbor_only_values_have_a_json_display() {
    assert_eq!(
        to_json(&Value::Bytes(vec![0xde, 0xad])),
        json!({"$bytes": "dead"})
    );
    let int_keys = Value::Map(vec![(1.into(), text("one"))]);
    assert_eq!(to_json(&int_keys), json!([[1, "one"]]));
    assert_eq!(
        to_json(&Value::Tag(1, Box::new(0.into()))),
        json!({"$tag": 1, "value": 0})
    );
}

#[test]
fn decode_as_reports_a_shape_mismatch() {
    assert_eq!(
        decode_as::<(u8, String)>(&unhex("820161")),
        Err(ValueError::Truncated { offset: 2 })
    );
    assert!(matches!(
        decode_as::<u8>(&unhex("6161")),
        Err(ValueError::Shape(_))
    ));
    assert_eq!(
        decode_as::<(u8, String)>(&unhex("82016161")).unwrap(),
        (1, "a".to_owned())
    );
}

#[test]
fn json_objects_keep_the_last_member_and_nest_less_deeply_than_cbor() {
    let json = serde_json::from_str(r#"{"a": 1, "a": 2}"#).unwrap();
    assert_eq!(
        from_json(&json).unwrap(),
        Value::Map(vec![(text("a"), 2.into())])
    );
    let nested = |depth: usize| format!("{}0{}", "[".repeat(depth), "]".repeat(depth));
    let deepest: serde_json::Value = serde_json::from_str(&nested(MAX_DEPTH - 1)).unwrap();
    assert!(encode_canonical(&from_json(&deepest).unwrap()).is_ok());
    assert!(serde_json::from_str::<serde_json::Value>(&nested(MAX_DEPTH)).is_err());
}
