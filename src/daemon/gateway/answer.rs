//! What a route answers (`spec/http.md`): the function's response, or its value as
//! JSON, or the failure with the status of its kind.

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ciborium::Value;
use serde_json::json;
use spore_node::{ErrorKind, NodeError};

use crate::kind;

/// The answer to a call that returned `value`.
pub fn returned(value: &Value) -> Response {
    match field(value, "status") {
        Some(_) => response(value).unwrap_or_else(|why| {
            failure_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorKind::Failed,
                format!("the function returned a response that is not one: {why}"),
            )
        }),
        None => Json(spore_core::value::to_json(value)).into_response(),
    }
}

/// The answer to a call that failed: a guest error that names a status (400 to 599)
/// has it, with its `body` if it has one; any other failure the status of its kind.
pub fn failure(error: &NodeError) -> Response {
    let failure = error.to_failure();
    if let Some(value) = &failure.value
        && let Some(status) = field(value, "status").and_then(status_of)
        && status.as_u16() >= 400
    {
        if field(value, "body").is_some() {
            return response(value).unwrap_or_else(|_| failure_body(status, &failure));
        }
        return failure_body(status, &failure);
    }
    let status = StatusCode::from_u16(kind::route_status(failure.kind))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut answer = failure_body(status, &failure);
    if failure.kind == ErrorKind::Busy {
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    answer
}

/// A failure the gateway itself answers (no route, a body over the limit, ...).
pub fn failure_response(
    status: StatusCode,
    kind: ErrorKind,
    message: impl Into<String>,
) -> Response {
    failure_body(status, &spore_node::Failure::new(kind, message))
}

fn failure_body(status: StatusCode, failure: &spore_node::Failure) -> Response {
    let mut error = json!({ "kind": failure.kind, "message": failure.message });
    if let Some(value) = &failure.value {
        error["value"] = spore_core::value::to_json(value);
    }
    (status, Json(json!({ "error": error }))).into_response()
}

/// A `{status, headers?, body?}` value as a response, or what is wrong with it.
fn response(value: &Value) -> Result<Response, String> {
    let Value::Map(entries) = value else {
        return Err("it is not a map".into());
    };
    let mut builder = Response::builder();
    let mut body = Vec::new();
    let mut default_type = "application/octet-stream";
    let mut typed = false;
    for (key, item) in entries {
        match (key.as_text(), item) {
            (Some("status"), status) => {
                builder = builder.status(
                    status_of(status).ok_or("its `status` is not an integer from 100 to 599")?,
                );
            }
            (Some("headers"), Value::Map(headers)) => {
                for (name, value) in headers {
                    let (Some(name), Some(value)) = (name.as_text(), value.as_text()) else {
                        return Err("its `headers` are not text to text".into());
                    };
                    let name =
                        HeaderName::try_from(name).map_err(|e| format!("header `{name}`: {e}"))?;
                    typed |= name == header::CONTENT_TYPE;
                    let value = HeaderValue::try_from(value)
                        .map_err(|e| format!("header `{name}`: {e}"))?;
                    builder = builder.header(name, value);
                }
            }
            (Some("body"), Value::Bytes(bytes)) => body = bytes.clone(),
            (Some("body"), Value::Text(text)) => {
                body = text.clone().into_bytes();
                default_type = "text/plain; charset=utf-8";
            }
            (Some(other), _) => return Err(format!("its `{other}` is not what spec/http.md says")),
            (None, _) => return Err("a key is not text".into()),
        }
    }
    if !typed && !body.is_empty() {
        builder = builder.header(header::CONTENT_TYPE, default_type);
    }
    builder.body(Body::from(body)).map_err(|e| e.to_string())
}

fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value
        .as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

fn status_of(value: &Value) -> Option<StatusCode> {
    let status: i128 = value.as_integer()?.into();
    let status = u16::try_from(status).ok()?;
    (100..=599)
        .contains(&status)
        .then(|| StatusCode::from_u16(status).ok())
        .flatten()
}
