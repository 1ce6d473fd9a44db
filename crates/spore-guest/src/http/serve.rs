//! Serving HTTP routes (`spec/http.md`): a node started with `--http` calls a route's
//! function with an [`HttpRequest`]; the function answers with an [`HttpResponse`] (or
//! any other value, sent as JSON).
//!
//! ```
//! use spore_guest::http::{HttpRequest, HttpResponse};
//!
//! #[spore_guest::function]
//! fn hello(request: HttpRequest) -> HttpResponse {
//!     match request.param("name") {
//!         Some(name) => HttpResponse::text(200, format!("hello, {name}")),
//!         None => HttpResponse::text(400, "whom should I greet?"),
//!     }
//! }
//! # fn main() {}
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A request to a route, as its function receives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request's path, as sent (percent-encoded).
    pub path: String,
    /// The route's path parameters (`/orders/{id}` gives `id`), decoded.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// The query string's pairs, decoded.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Headers by lower-case name; repeated headers joined with `, `.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default, with = "crate::bytes")]
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The path parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The query parameter `name`.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// The header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The body as text; invalid UTF-8 becomes U+FFFD.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

/// What a route answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    pub status: u16,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, with = "crate::bytes")]
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with `status` and no body.
    pub fn new(status: u16) -> HttpResponse {
        HttpResponse {
            status,
            headers: BTreeMap::new(),
            body: Vec::new(),
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, text: impl Into<String>) -> HttpResponse {
        HttpResponse::new(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(text.into())
    }

    /// The same response with header `name` set to `value`.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> HttpResponse {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// The same response with `body`.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> HttpResponse {
        self.body = body.into();
        self
    }
}
