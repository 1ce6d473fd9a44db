//! The attribute keeps functions callable natively and accepts the signatures the guide
//! promises. The generated exports only exist on wasm32; the codebase/ modules exercise
//! them through crates/spore-test-programs and the host's tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use spore_guest::{Value, function};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: i32,
    pub y: i32,
}

#[function]
fn nothing() {}

#[function]
fn unit_result(fail: bool) -> Result<(), String> {
    if fail {
        Err("asked to".to_owned())
    } else {
        Ok(())
    }
}

#[function]
pub fn swap(mut point: Point) -> Point {
    std::mem::swap(&mut point.x, &mut point.y);
    point
}

#[function]
fn counts(words: Vec<String>, r#type: Option<u8>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for word in words {
        *counts.entry(word).or_default() += usize::from(r#type.unwrap_or(1));
    }
    counts
}

// Names that the generated glue must not shadow.
#[function]
fn len(input: String, args: u8) -> usize {
    input.len() + usize::from(args)
}

#[function]
fn args(ptr: i32) -> impl Serialize {
    ptr
}

type Answer<T> = std::result::Result<T, Value>;

#[function]
fn aliased(value: Value) -> Answer<Value> {
    Err(value)
}

#[test]
fn annotated_functions_stay_callable() {
    nothing();
    assert_eq!(unit_result(true), Err("asked to".to_owned()));
    assert_eq!(swap(Point { x: 1, y: 2 }), Point { x: 2, y: 1 });
    let counts = counts(vec!["a".into(), "b".into(), "a".into()], None);
    assert_eq!(counts["a"], 2);
    assert_eq!(aliased(Value::Null), Err(Value::Null));
    assert_eq!(len("abc".to_owned(), 1), 4);
    let _ = args(0);
}
