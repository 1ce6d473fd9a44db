//! JSON clients write `1` for `1.0`: wherever a function or an ability response expects
//! a float (f32 or f64), at any depth, an integer it holds exactly is accepted; one it
//! does not hold is refused with a message that says so.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use spore_guest::__private::{invoke, reply};
use spore_guest::Value;
use spore_guest::ability::{AbilityError, kind, parse_response};

fn cbor<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).unwrap();
    bytes
}

/// Calls a one-parameter function that takes a `T` and returns it, with `argument`:
/// what it returned, or the reason it refused the argument.
fn echo<T: Serialize + DeserializeOwned>(argument: Value) -> Result<Value, String> {
    let reply = invoke(&cbor(&[argument]), "echo", &["x"], |args| {
        let x: T = args.take()?;
        Ok(reply(&x))
    });
    let value: Value = ciborium::from_reader(&reply[1..]).unwrap();
    match (reply[0], value) {
        (0x00, value) => Ok(value),
        (0x02, Value::Text(reason)) => Err(reason),
        other => panic!("unexpected reply {other:?}"),
    }
}

/// An ability response with status 0 and `result`, decoded as a `T`.
fn response<T: DeserializeOwned>(result: Value) -> Result<T, AbilityError> {
    let mut bytes = vec![0x00];
    bytes.extend(cbor(&result));
    parse_response(&bytes)
}

fn int(n: i128) -> Value {
    Value::Integer(n.try_into().unwrap())
}

fn float(f: f64) -> Value {
    Value::Float(f)
}

fn array(items: Vec<Value>) -> Value {
    Value::Array(items)
}

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(key, value)| (Value::Text((*key).to_owned()), value.clone()))
            .collect(),
    )
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Reading {
    value: f64,
    calibration: Option<f32>,
    history: Vec<f64>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Circle(f64),
    Rectangle { width: f64, height: f32 },
    Triangle(f64, f64, f64),
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Meters(f64);

#[test]
fn an_integer_is_a_float_where_a_function_takes_one() {
    assert_eq!(echo::<f64>(int(1)), Ok(float(1.0)));
    assert_eq!(echo::<f64>(int(-3)), Ok(float(-3.0)));
    assert_eq!(echo::<f32>(int(7)), Ok(float(7.0)));
    assert_eq!(echo::<Option<f64>>(int(2)), Ok(float(2.0)));
    assert_eq!(echo::<Option<f64>>(Value::Null), Ok(Value::Null));
    assert_eq!(echo::<Meters>(int(5)), Ok(float(5.0)));
    assert_eq!(
        echo::<Vec<f64>>(array(vec![int(1), float(2.5), int(-3)])),
        Ok(array(vec![float(1.0), float(2.5), float(-3.0)]))
    );
    assert_eq!(
        echo::<(f64, i64, f32)>(array(vec![int(1), int(2), int(3)])),
        Ok(array(vec![float(1.0), int(2), float(3.0)]))
    );
    assert_eq!(
        echo::<BTreeMap<String, Vec<Option<f64>>>>(map(&[("a", array(vec![int(1), Value::Null]))])),
        Ok(map(&[("a", array(vec![float(1.0), Value::Null]))]))
    );
}

#[test]
fn struct_fields_and_enum_variants_take_integers_too() {
    let reading = map(&[
        ("value", int(20)),
        ("calibration", int(-1)),
        ("history", array(vec![int(19), float(19.5)])),
    ]);
    assert_eq!(
        echo::<Reading>(reading),
        Ok(map(&[
            ("value", float(20.0)),
            ("calibration", float(-1.0)),
            ("history", array(vec![float(19.0), float(19.5)])),
        ]))
    );
    assert_eq!(
        echo::<Shape>(map(&[("Circle", int(2))])),
        Ok(map(&[("Circle", float(2.0))]))
    );
    assert_eq!(
        echo::<Shape>(map(&[(
            "Rectangle",
            map(&[("width", int(3)), ("height", int(4))])
        )])),
        Ok(map(&[(
            "Rectangle",
            map(&[("width", float(3.0)), ("height", float(4.0))])
        )]))
    );
    assert_eq!(
        echo::<Shape>(map(&[(
            "Triangle",
            array(vec![int(3), int(4), float(5.0)])
        )])),
        Ok(map(&[(
            "Triangle",
            array(vec![float(3.0), float(4.0), float(5.0)])
        )]))
    );
}

#[test]
fn an_integer_no_float_holds_exactly_is_refused() {
    let two_to_53 = 1i128 << 53;
    assert_eq!(echo::<f64>(int(two_to_53)), Ok(float(9007199254740992.0)));
    assert_eq!(
        echo::<f64>(int(two_to_53 + 1)),
        Err(
            "argument 1 (`x`) of `echo`: integer 9007199254740993 is not exactly \
             representable as f64"
                .to_owned()
        )
    );
    assert_eq!(echo::<f32>(int(1 << 24)), Ok(float(16777216.0)));
    assert_eq!(
        echo::<f32>(int((1 << 24) + 1)),
        Err(
            "argument 1 (`x`) of `echo`: integer 16777217 is not exactly \
             representable as f32"
                .to_owned()
        )
    );
    let refused = echo::<Vec<f64>>(array(vec![int(1), int(-two_to_53 - 1)])).unwrap_err();
    assert!(
        refused.ends_with("integer -9007199254740993 is not exactly representable as f64"),
        "{refused}"
    );
    // The ends of CBOR's integers: -2^64 is a double, 2^64-1 is not.
    assert_eq!(
        echo::<f64>(int(-(1 << 64))),
        Ok(float(-18446744073709551616.0))
    );
    assert!(echo::<f64>(int((1 << 64) - 1)).is_err());
}

#[test]
fn everything_else_reads_as_before() {
    assert_eq!(echo::<f64>(float(0.1)), Ok(float(0.1)));
    assert_eq!(echo::<i64>(int(3)), Ok(int(3)));
    assert_eq!(echo::<Value>(int(3)), Ok(int(3)));
    assert_eq!(
        echo::<Vec<Value>>(array(vec![int(1), float(1.0)])),
        Ok(array(vec![int(1), float(1.0)]))
    );
    // A tag around a float is looked through, as ciborium does.
    assert_eq!(
        echo::<f64>(Value::Tag(1, Box::new(float(1.5)))),
        Ok(float(1.5))
    );
    assert_eq!(
        echo::<f64>(Value::Text("one".into())),
        Err("argument 1 (`x`) of `echo`: invalid type: string \"one\", expected f64".to_owned())
    );
    assert!(
        echo::<i64>(float(1.0)).is_err(),
        "no leniency the other way"
    );
}

#[test]
fn ability_responses_take_integers_as_floats() {
    assert_eq!(response::<f64>(int(21)), Ok(21.0));
    assert_eq!(
        response::<Reading>(map(&[
            ("value", int(20)),
            ("calibration", Value::Null),
            ("history", array(vec![int(1)])),
        ])),
        Ok(Reading {
            value: 20.0,
            calibration: None,
            history: vec![1.0],
        })
    );
    let error = response::<Vec<f32>>(array(vec![int(16777217)])).unwrap_err();
    assert_eq!(error.kind(), kind::BAD_RESPONSE);
    assert!(
        error
            .message()
            .ends_with("integer 16777217 is not exactly representable as f32"),
        "{error}"
    );
}
