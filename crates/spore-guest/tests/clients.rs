//! The typed ability clients send the request shapes of spec/abilities.md and read its
//! response shapes. Natively the calls go to the fake providers of
//! `spore_guest::testing`, through the same CBOR encoding as on wasm32.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use spore_guest::ability::{AbilityError, kind};
use spore_guest::http::{self, Request, Response};
use spore_guest::testing::{MemoryKv, with_abilities};
use spore_guest::{Value, call, clock, config, kv, log, random};

/// One call as a provider saw it.
type Seen = (String, String, Value);

/// Runs `body` with every call recorded and answered by `answer`.
fn recording<R>(
    mut answer: impl FnMut(&str, &str, &Value) -> Result<Value, AbilityError> + 'static,
    body: impl FnOnce() -> R,
) -> (R, Vec<Seen>) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&seen);
    let result = with_abilities(
        move |ability, operation, request| {
            let result = answer(ability, operation, &request);
            log.borrow_mut()
                .push((ability.to_owned(), operation.to_owned(), request));
            result
        },
        body,
    );
    let seen = seen.take();
    (result, seen)
}

fn text(text: &str) -> Value {
    Value::Text(text.to_owned())
}

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(key, value)| (text(key), value.clone()))
            .collect(),
    )
}

fn seen(ability: &str, operation: &str, request: Value) -> Seen {
    (ability.to_owned(), operation.to_owned(), request)
}

#[test]
fn log_sends_the_message_and_ignores_failures() {
    let ((), calls) = recording(
        |_, _, _| Err(AbilityError::new(kind::UNAVAILABLE, "no log")),
        || {
            log::debug("d");
            log::info("i");
            log::warn("w");
            log::error("e");
        },
    );
    assert_eq!(
        calls,
        [
            seen("log", "debug", text("d")),
            seen("log", "info", text("i")),
            seen("log", "warn", text("w")),
            seen("log", "error", text("e")),
        ]
    );
}

#[test]
fn clock_and_random() {
    let ((now, bytes), calls) = recording(
        |_, operation, _| match operation {
            "now" => Ok(Value::from(1_700_000_000_123u64)),
            _ => Ok(Value::Bytes(vec![1, 2, 3])),
        },
        || (clock::now(), random::bytes(3)),
    );
    assert_eq!(now, Ok(1_700_000_000_123));
    assert_eq!(bytes, Ok(vec![1, 2, 3]));
    assert_eq!(
        calls,
        [
            seen("clock", "now", Value::Null),
            seen("random", "bytes", Value::from(3)),
        ]
    );
}

#[test]
fn kv_request_shapes() {
    let (_, calls) = recording(
        |_, _, _| Ok(Value::Null),
        || {
            let _ = kv::get::<Value>("a");
            let _ = kv::put("a", &[1, 2]);
            let _ = kv::delete("a");
            let _ = kv::list("p/", None);
            let _ = kv::list("p/", Some(5));
            let _ = kv::cas("a", None, Some(&1));
            let _ = kv::cas::<()>("a", None, None);
        },
    );
    let key = || ("key", text("a"));
    assert_eq!(
        calls,
        [
            seen("kv", "get", map(&[key()])),
            seen(
                "kv",
                "put",
                map(&[key(), ("value", Value::Array(vec![1.into(), 2.into()]))])
            ),
            seen("kv", "delete", map(&[key()])),
            seen("kv", "list", map(&[("prefix", text("p/"))])),
            seen(
                "kv",
                "list",
                map(&[("prefix", text("p/")), ("limit", Value::from(5))])
            ),
            seen(
                "kv",
                "cas",
                map(&[key(), ("expected", Value::Null), ("new", Value::from(1))])
            ),
            seen(
                "kv",
                "cas",
                map(&[key(), ("expected", Value::Null), ("new", Value::Null)])
            ),
        ]
    );
}

#[test]
fn kv_against_the_memory_store() {
    let mut store = MemoryKv::default();
    with_abilities(
        move |_, operation, request| store.call(operation, request),
        || {
            assert_eq!(kv::get::<u64>("n"), Ok(None));
            assert_eq!(kv::cas("n", Some(&1u64), Some(&2)), Ok(false));
            assert_eq!(kv::cas("n", None, Some(&1u64)), Ok(true));
            assert_eq!(kv::cas("n", Some(&1u64), Some(&2)), Ok(true));
            assert_eq!(kv::get::<u64>("n"), Ok(Some(2)));
            kv::put("m", "text").unwrap();
            assert_eq!(kv::list("", None), Ok(vec!["m".to_owned(), "n".to_owned()]));
            assert_eq!(kv::list("", Some(1)), Ok(vec!["m".to_owned()]));
            assert_eq!(kv::delete("m"), Ok(true));
            assert_eq!(kv::delete("m"), Ok(false));
            assert_eq!(kv::cas::<u64>("n", Some(&2), None), Ok(true));
            assert_eq!(kv::get::<u64>("n"), Ok(None));

            kv::put("s", "text").unwrap();
            let error = kv::get::<u64>("s").unwrap_err();
            assert_eq!(error.kind(), kind::BAD_RESPONSE, "{error}");
            assert_eq!(kv::get::<Value>("").unwrap_err().kind(), kind::BAD_REQUEST);
        },
    );
}

#[test]
fn http_bodies_are_byte_strings() {
    let response = map(&[
        ("status", Value::from(404)),
        ("headers", map(&[("content-type", text("text/plain"))])),
        ("body", Value::Bytes(b"gone".to_vec())),
    ]);
    let ((got, posted), calls) = recording(
        move |_, _, _| Ok(response.clone()),
        || {
            let got = http::get("https://example.com/");
            let posted = http::request(
                &Request::new("POST", "https://example.com/items")
                    .header("content-type", "application/json")
                    .body("{}"),
            );
            (got, posted)
        },
    );
    let expected = Response {
        status: 404,
        headers: BTreeMap::from([("content-type".to_owned(), "text/plain".to_owned())]),
        body: b"gone".to_vec(),
    };
    assert_eq!(got.as_ref(), Ok(&expected));
    assert_eq!(posted, Ok(expected.clone()));
    assert!(!expected.is_success());
    assert_eq!(expected.text(), "gone");
    assert_eq!(
        calls,
        [
            seen(
                "http",
                "request",
                map(&[
                    ("url", text("https://example.com/")),
                    ("method", text("GET"))
                ])
            ),
            seen(
                "http",
                "request",
                map(&[
                    ("url", text("https://example.com/items")),
                    ("method", text("POST")),
                    (
                        "headers",
                        map(&[("content-type", text("application/json"))])
                    ),
                    ("body", Value::Bytes(b"{}".to_vec())),
                ])
            ),
        ]
    );
}

#[test]
fn config_get() {
    let (value, calls) = recording(
        |_, _, _| Ok(text("hello")),
        || config::get::<String>("greeting"),
    );
    assert_eq!(value, Ok(Some("hello".to_owned())));
    assert_eq!(
        calls,
        [seen("config", "get", map(&[("key", text("greeting"))]))]
    );
}

#[test]
fn call_sends_an_argument_array() {
    let ((sum, none, error), calls) = recording(
        |_, _, request| match &request.as_map().unwrap()[1].1 {
            Value::Array(args) if args.len() == 2 => Ok(Value::from(5)),
            Value::Array(_) => Ok(Value::Null),
            _ => unreachable!("the client only sends arrays"),
        },
        || {
            let sum = call::<i64>("h:add", (2, 3));
            let none = call::invoke::<()>("h:nothing", ());
            let error = call::invoke::<i64>("h:add", 5).unwrap_err();
            (sum, none, error)
        },
    );
    assert_eq!(sum, Ok(5));
    assert_eq!(none, Ok(()));
    assert_eq!(error.kind(), kind::BAD_REQUEST);
    assert_eq!(
        calls,
        [
            seen(
                "call",
                "invoke",
                map(&[
                    ("function", text("h:add")),
                    ("args", Value::Array(vec![2.into(), 3.into()]))
                ])
            ),
            seen(
                "call",
                "invoke",
                map(&[
                    ("function", text("h:nothing")),
                    ("args", Value::Array(vec![]))
                ])
            ),
        ],
        "the bad call never reached the host"
    );
}

#[test]
fn errors_arrive_with_kind_message_and_value() {
    let returned = AbilityError::new(kind::GUEST_ERROR, "`div` returned an error")
        .with_value(text("division by zero"));
    let answer = returned.clone();
    let (result, _) = recording(
        move |_, _, _| Err(answer.clone()),
        || call::<i64>("h:div", (1, 0)),
    );
    let error = result.unwrap_err();
    assert_eq!(error, returned);
    assert_eq!(error.value(), Some(&text("division by zero")));
    assert_eq!(error.to_string(), "guest_error: `div` returned an error");
}

#[test]
fn native_calls_without_fakes_are_unavailable() {
    let error = clock::now().unwrap_err();
    assert_eq!(error.kind(), kind::UNAVAILABLE);
    assert!(
        error.message().contains("only available inside spore"),
        "{error}"
    );
}

spore_guest::ability!(
    /// A custom ability with a name that is no Rust identifier.
    sensor_hub = "sensor-hub" {
        read,
        read_all = "read-all",
        r#type,
    }
);

#[test]
fn custom_abilities_use_their_wire_names() {
    let (results, calls) = recording(
        |_, _, request| Ok(request.clone()),
        || {
            (
                sensor_hub::read::<_, String>("attic"),
                sensor_hub::read_all::<_, Value>(&()),
                sensor_hub::r#type::<_, u8>(&7u8),
            )
        },
    );
    assert_eq!(results, (Ok("attic".to_owned()), Ok(Value::Null), Ok(7)));
    assert_eq!(
        calls,
        [
            seen("sensor-hub", "read", text("attic")),
            seen("sensor-hub", "read-all", Value::Null),
            seen("sensor-hub", "type", Value::from(7)),
        ]
    );
}
