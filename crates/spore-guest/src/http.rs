//! The `http` ability: an outbound HTTP client.
//!
//! Only hosts on the binding's allowlist are reachable; anything else fails with
//! `not_allowed` before a connection is made. Any HTTP status is a [`Response`], not an
//! error; errors are `not_allowed`, `timeout`, `too_large` (the body exceeds the
//! binding's `max_response_bytes`), `failed` (DNS, connection, protocol) and
//! `bad_request`.
//!
//! ```no_run
//! use spore_guest::http::{self, Request};
//!
//! # fn main() -> Result<(), spore_guest::ability::AbilityError> {
//! let page = http::get("https://example.com/")?;
//! if page.is_success() {
//!     let html = page.text();
//! }
//!
//! let created = http::request(
//!     &Request::new("POST", "https://api.example.com/items")
//!         .header("content-type", "application/json")
//!         .body(r#"{"name":"spore"}"#),
//! )?;
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ability::AbilityError;

mod serve;
pub use serve::{HttpRequest, HttpResponse};

spore_guest_macros::ability!(ops = "http" { request });

/// An HTTP request: the `{url, method?, headers?, body?}` map of spec/abilities.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub url: String,
    /// `GET`, `POST`, ...
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::bytes::option"
    )]
    pub body: Option<Vec<u8>>,
}

fn default_method() -> String {
    "GET".to_owned()
}

impl Request {
    /// A request with `method` for `url`, without headers or body.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Request {
        Request {
            url: url.into(),
            method: method.into(),
            headers: BTreeMap::new(),
            body: None,
        }
    }

    /// A `GET` of `url`.
    pub fn get(url: impl Into<String>) -> Request {
        Request::new("GET", url)
    }

    /// The same request with header `name` set to `value`.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// The same request with `body`.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Some(body.into());
        self
    }
}

/// An HTTP response, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    #[serde(with = "crate::bytes")]
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text; invalid UTF-8 becomes U+FFFD (the charset is not consulted).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, AbilityError> {
    request(&Request::get(url))
}

/// Sends `request`.
pub fn request(request: &Request) -> Result<Response, AbilityError> {
    ops::request(request)
}
