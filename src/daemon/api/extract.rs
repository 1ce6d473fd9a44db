//! Reading requests: bodies within their limits, JSON bodies and query strings, each
//! refused with the error record (`super::error`) rather than axum's plain text.

use axum::body::{Bytes, HttpBody};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use spore_core::ErrorKind;

use super::error::ApiError;

/// The largest JSON body a route takes. Invocation arguments are the largest JSON the
/// API receives: 8 MiB holds the 4 MiB of arguments a forwarded call may carry
/// (`limits.forwarded.args`) even as base64 `{"$bytes"}` text, while a body is held in
/// memory whole before it is parsed.
pub const MAX_JSON_BODY: u64 = 8 << 20;

/// The largest module `POST /v1/publish` takes. The body is held in memory whole, and
/// compiling it takes several times its size; the largest real modules (a language
/// runtime, a compiler) are tens of MiB. A config key will replace this constant.
pub const MAX_MODULE_BODY: u64 = 128 << 20;

/// A JSON body, deserialized as `T`; it must be sent as `application/json`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        let path = request.uri().path().to_owned();
        let is_json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::bad_request(format!(
                "{path} takes a JSON body, sent with `content-type: application/json`"
            )));
        }
        let bytes = read_body(request, MAX_JSON_BODY).await?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiError::bad_request(format!("the body is not the JSON {path} takes: {e}"))
        })
    }
}

/// The bytes of a module to publish.
pub struct ModuleBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ModuleBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        read_body(request, MAX_MODULE_BODY).await.map(ModuleBody)
    }
}

/// The body of `request`, read only up to `limit` bytes: a declared length over the
/// limit is refused before any of the body is read, and a body without one (chunked)
/// stops being read at the limit.
async fn read_body(request: Request, limit: u64) -> Result<Bytes, ApiError> {
    let path = request.uri().path().to_owned();
    let too_large = || {
        ApiError::new(
            ErrorKind::TooLarge,
            format!(
                "the body is larger than the {limit} bytes ({}) {path} takes",
                spore_node::format_size(limit)
            ),
        )
    };
    let body = request.into_body();
    // The lower bound of the size hint is the declared length (`content-length`).
    if body.size_hint().lower() > limit {
        return Err(too_large());
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(too_large()),
        Err(error) => Err(ApiError::bad_request(format!(
            "the body of the request could not be read: {error}"
        ))),
    }
}

/// A query string, deserialized as `T`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(query)| Query(query))
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/api.md states the limits; the rows must say what the code does.
    #[test]
    fn docs_api_states_the_body_limits_the_code_uses() {
        let doc = include_str!("../../../docs/api.md");
        for (row, limit) in [
            ("| JSON body |", MAX_JSON_BODY),
            ("| module body (`/v1/publish`) |", MAX_MODULE_BODY),
        ] {
            let expected = format!("{row} {} ({limit} bytes) |", spore_node::format_size(limit));
            assert!(doc.contains(&expected), "docs/api.md has no `{expected}`");
        }
    }
}
