//! How the API answers a failure: the error record of `spec/errors.md`,
//! `{"error": {kind, message, value?}}`, with the HTTP status of its kind (`crate::kind`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use spore_core::{ErrorKind, Failure};
use spore_node::NodeError;

use crate::kind;

/// A request the API could not answer with a result: the node's error, or the API's own
/// refusal of the request.
#[derive(Debug)]
pub struct ApiError(Failure);

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError(Failure::new(kind, message))
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::BadRequest, message)
    }
}

impl From<NodeError> for ApiError {
    fn from(error: NodeError) -> Self {
        ApiError(error.to_failure())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Failure {
            kind,
            message,
            value,
        } = self.0;
        let mut error = json!({ "kind": kind, "message": message });
        if let Some(value) = value {
            error["value"] = spore_core::value::to_json(&value);
        }
        let status = StatusCode::from_u16(kind::http_status(kind))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(json!({ "error": error }))).into_response()
    }
}
