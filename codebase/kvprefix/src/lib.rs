//! A Wasm handler for the `kv` ability (spec/abilities.md, "Custom abilities"): bound
//! as a node's (or another handler's) `kv`, it keeps every key of its callers under
//! `tenant/` in the `kv` it uses itself, so tenants sharing one store cannot see or
//! touch each other's keys.
//!
//! Each export is an operation: it takes the operation's request map as its single
//! argument and returns the response, or the inner `kv`'s error as its own error value
//! (the same `{kind, message}` map, so callers see the inner kind).
//!
//! Its own `kv` must be bound separately (`uses`), or it would call itself:
//!
//! ```toml
//! [abilities.kv]
//! provider = "handler"
//! function = "<kvprefix hash>"
//!
//! [abilities.kv.uses.kv]
//! provider = "kv"
//! namespace = "default"
//! ```

use serde::Deserialize;
use spore_guest::ability::{AbilityError, kind};
use spore_guest::{Value, function, kv};

/// Where this handler keeps its callers' keys in the inner store.
const PREFIX: &str = "tenant/";

/// The request of `get` and `delete`.
#[derive(Debug, Deserialize)]
struct KeyRequest {
    key: String,
}

#[derive(Debug, Deserialize)]
struct PutRequest {
    key: String,
    value: Value,
}

#[derive(Debug, Deserialize)]
struct ListRequest {
    prefix: String,
    #[serde(default)]
    limit: Option<u32>,
}

/// `expected` and `new` are null for "absent".
#[derive(Debug, Deserialize)]
struct CasRequest {
    key: String,
    expected: Option<Value>,
    new: Option<Value>,
}

#[function]
fn get(request: KeyRequest) -> Result<Option<Value>, AbilityError> {
    kv::get(&inner_key(&request.key)?)
}

#[function]
fn put(request: PutRequest) -> Result<(), AbilityError> {
    kv::put(&inner_key(&request.key)?, &request.value)
}

#[function]
fn delete(request: KeyRequest) -> Result<bool, AbilityError> {
    kv::delete(&inner_key(&request.key)?)
}

#[function]
fn list(request: ListRequest) -> Result<Vec<String>, AbilityError> {
    let keys = kv::list(&format!("{PREFIX}{}", request.prefix), request.limit)?;
    Ok(outer_keys(keys))
}

#[function]
fn cas(request: CasRequest) -> Result<bool, AbilityError> {
    kv::cas(
        &inner_key(&request.key)?,
        request.expected.as_ref(),
        request.new.as_ref(),
    )
}

/// The inner store's key for a caller's `key`. Empty keys are refused here, because
/// with the prefix the inner store would accept them and the spec does not.
fn inner_key(key: &str) -> Result<String, AbilityError> {
    if key.is_empty() {
        return Err(AbilityError::new(
            kind::BAD_REQUEST,
            "keys are 1 to 1024 bytes of text; this one is empty",
        ));
    }
    Ok(format!("{PREFIX}{key}"))
}

/// The caller's keys for keys of the inner store. The inner `list` was asked for keys
/// under the prefix, so each has it; one without it would be the inner store's bug and
/// is dropped rather than leaked.
fn outer_keys(keys: Vec<String>) -> Vec<String> {
    keys.into_iter()
        .filter_map(|key| key.strip_prefix(PREFIX).map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use spore_guest::testing::{MemoryKv, with_abilities};

    use super::*;

    fn key(key: &str) -> KeyRequest {
        KeyRequest { key: key.into() }
    }

    #[test]
    fn keys_are_prefixed_and_unprefixed() {
        assert_eq!(inner_key("a/b"), Ok("tenant/a/b".to_owned()));
        assert_eq!(inner_key("").unwrap_err().kind(), kind::BAD_REQUEST);
        assert_eq!(
            outer_keys(vec!["tenant/a".into(), "other/b".into(), "tenant/".into()]),
            ["a", ""]
        );
    }

    #[test]
    fn every_operation_goes_under_the_prefix() {
        let mut memory = MemoryKv::default();
        memory
            .entries
            .insert("secret".into(), Value::from("not yours"));
        let handler =
            move |_: &str, operation: &str, request: Value| memory.call(operation, request);
        with_abilities(handler, || {
            let put_one = PutRequest {
                key: "one".into(),
                value: Value::from(1),
            };
            assert_eq!(put(put_one), Ok(()));
            assert_eq!(get(key("one")), Ok(Some(Value::from(1))));
            assert_eq!(get(key("secret")), Ok(None));
            assert_eq!(
                cas(CasRequest {
                    key: "one".into(),
                    expected: Some(Value::from(1)),
                    new: Some(Value::from(2))
                }),
                Ok(true)
            );
            assert_eq!(
                cas(CasRequest {
                    key: "two".into(),
                    expected: None,
                    new: Some(Value::from(2))
                }),
                Ok(true)
            );
            assert_eq!(
                list(ListRequest {
                    prefix: String::new(),
                    limit: None
                }),
                Ok(vec!["one".into(), "two".into()])
            );
            assert_eq!(
                list(ListRequest {
                    prefix: "t".into(),
                    limit: Some(5)
                }),
                Ok(vec!["two".into()])
            );
            assert_eq!(delete(key("one")), Ok(true));
            assert_eq!(delete(key("secret")), Ok(false));
            assert_eq!(
                kv::list("", None),
                Ok(vec!["secret".into(), "tenant/two".into()])
            );
        });
    }

    #[test]
    fn requests_decode_from_the_spec_maps() {
        let map = |entries: &[(&str, Value)]| {
            Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| (Value::from(*k), v.clone()))
                    .collect(),
            )
        };
        let cas: CasRequest = map(&[
            ("key", "k".into()),
            ("expected", Value::Null),
            ("new", 3.into()),
        ])
        .deserialized()
        .unwrap();
        assert_eq!((cas.expected, cas.new), (None, Some(Value::from(3))));
        let list: ListRequest = map(&[("prefix", "p".into())]).deserialized().unwrap();
        assert_eq!(list.limit, None);
    }

    #[test]
    fn inner_errors_are_returned_as_they_are() {
        let handler =
            |_: &str, _: &str, _: Value| Err(AbilityError::new(kind::TOO_LARGE, "value too big"));
        with_abilities(handler, || {
            let put_big = PutRequest {
                key: "big".into(),
                value: Value::Null,
            };
            let error = put(put_big).unwrap_err();
            assert_eq!(
                (error.kind(), error.message()),
                (kind::TOO_LARGE, "value too big")
            );
        });
    }
}
