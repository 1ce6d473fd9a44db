//! How the API answers a failure: the error record of `spec/errors.md`,
//! `{"error": {kind, message, value?, suggestions?}}`, with the HTTP status of its kind (`crate::kind`).

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::WWW_AUTHENTICATE;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use spore_core::{ErrorKind, Failure, Name};
use spore_node::NodeError;

use crate::kind;

/// A request the API could not answer with a result: the node's error, or the API's own
/// refusal of the request.
#[derive(Debug)]
pub struct ApiError {
    failure: Failure,
    /// A request without the node's token: answered 401 with a `WWW-Authenticate`
    /// challenge rather than with its kind's status. Its kind, `not_allowed`, says what
    /// the CLI and scripts match on (a policy refused it); 401 is what HTTP clients
    /// know to mean "send credentials".
    unauthenticated: bool,
    /// For a name that does not exist, the names likely meant (`NodeError::suggestions`):
    /// the record's `suggestions` (`spec/errors.md`).
    suggestions: Vec<Name>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError::from(Failure::new(kind, message))
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::BadRequest, message)
    }

    /// A request that does not carry the node's API token (docs/api.md, "Authentication").
    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError {
            unauthenticated: true,
            ..ApiError::new(ErrorKind::NotAllowed, message)
        }
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        ApiError {
            failure,
            unauthenticated: false,
            suggestions: Vec::new(),
        }
    }
}

impl From<NodeError> for ApiError {
    fn from(error: NodeError) -> Self {
        ApiError {
            suggestions: error.suggestions().to_vec(),
            ..ApiError::from(error.to_failure())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Failure {
            kind,
            message,
            value,
        } = self.failure;
        let mut error = json!({ "kind": kind, "message": message });
        if let Some(value) = value {
            error["value"] = spore_core::value::to_json(&value);
        }
        if !self.suggestions.is_empty() {
            error["suggestions"] = json!(self.suggestions);
        }
        let body = Json(json!({ "error": error }));
        if self.unauthenticated {
            return (
                StatusCode::UNAUTHORIZED,
                [(WWW_AUTHENTICATE, "Bearer")],
                body,
            )
                .into_response();
        }
        let status = StatusCode::from_u16(kind::http_status(kind))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, body).into_response()
    }
}
