//! The request value a route's function receives (`spec/http.md`), and reading the body
//! within the route's limits.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::Response;
use ciborium::Value;
use http_body_util::{BodyExt, Limited};
use spore_node::ErrorKind;

use super::answer::failure_response;

/// The body of a request, at most `max` bytes, read by `deadline`: refused with 413
/// before a byte is read when its declared length is over, or as soon as it grows past
/// `max`; 408 when it is not all there by the deadline.
pub async fn read_body(
    parts: &Parts,
    body: Body,
    max: u64,
    deadline: Instant,
) -> Result<Vec<u8>, Response> {
    let too_large = || {
        failure_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::TooLarge,
            format!("the request body is over this route's limit of {max} bytes"),
        )
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max) {
        return Err(too_large());
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let read = tokio::time::timeout_at(deadline.into(), Limited::new(body, limit).collect());
    match read.await {
        Ok(Ok(collected)) => Ok(collected.to_bytes().to_vec()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(error)) => Err(failure_response(
            StatusCode::BAD_REQUEST,
            ErrorKind::BadRequest,
            format!("the request body could not be read: {error}"),
        )),
        Err(_) => Err(failure_response(
            StatusCode::REQUEST_TIMEOUT,
            ErrorKind::Timeout,
            "the request body did not arrive within the route's deadline",
        )),
    }
}

/// A request as a route's function sees it.
pub struct Incoming {
    pub method: String,
    pub path: String,
    pub params: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Incoming {
    pub fn new(parts: &Parts, params: BTreeMap<String, String>, body: Vec<u8>) -> Incoming {
        let query: BTreeMap<String, String> = parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &parts.headers {
            let Ok(value) = value.to_str() else { continue };
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|held| {
                    held.push_str(", ");
                    held.push_str(value);
                })
                .or_insert_with(|| value.to_owned());
        }
        Incoming {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            params,
            query,
            headers,
            body,
        }
    }

    /// The request value: `{method, path, params, query, headers, body}`.
    pub fn value(&self) -> Value {
        let text_map = |pairs: &BTreeMap<String, String>| {
            Value::Map(
                pairs
                    .iter()
                    .map(|(k, v)| (Value::Text(k.clone()), Value::Text(v.clone())))
                    .collect(),
            )
        };
        Value::Map(vec![
            (
                Value::Text("method".into()),
                Value::Text(self.method.clone()),
            ),
            (Value::Text("path".into()), Value::Text(self.path.clone())),
            (Value::Text("params".into()), text_map(&self.params)),
            (Value::Text("query".into()), text_map(&self.query)),
            (Value::Text("headers".into()), text_map(&self.headers)),
            (Value::Text("body".into()), Value::Bytes(self.body.clone())),
        ])
    }
}
