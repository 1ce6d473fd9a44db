//! `[[routes]]` of `config.toml`: the HTTP routes a node serves with `--http`
//! (`spec/http.md`).

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::Locator;
use super::raw::SizeValue;
use crate::config::ConfigError;
use crate::config::defaults as default;
use crate::routes::{Route, Routes};

/// One `[[routes]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    method: Spanned<String>,
    path: Spanned<String>,
    function: Spanned<String>,
    timeout: Option<Spanned<String>>,
    max_body: Option<Spanned<SizeValue>>,
}

impl Locator<'_> {
    /// What a route or a schedule calls: a name or a reference, not checked further
    /// here (it is resolved at each call, so it may name what is published later).
    pub(super) fn function(&self, raw: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
        let function = raw.get_ref().trim();
        if function.is_empty() {
            return Err(self.error(
                raw.span(),
                key,
                "the function to call: a name or a hash with `:function`",
            ));
        }
        Ok(function.to_owned())
    }

    /// Every `[[routes]]` entry, checked; a route's deadline is `limits.timeout` unless
    /// it says otherwise.
    pub(super) fn routes(
        &self,
        raw: Vec<Spanned<RawRoute>>,
        default_timeout: Duration,
    ) -> Result<Routes, ConfigError> {
        let mut routes = Vec::new();
        for (i, raw) in raw.into_iter().enumerate() {
            let span = raw.span();
            let raw = raw.into_inner();
            let key = |field: &str| format!("routes[{i}].{field}");
            let method = raw.method.get_ref();
            let method = if method == "*" {
                None
            } else if !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()) {
                Some(method.clone())
            } else {
                return Err(self.error(
                    raw.method.span(),
                    &key("method"),
                    format!("`{method}` is not a method: an HTTP method in capitals (\"GET\", \"POST\", ...) or \"*\""),
                ));
            };
            let path = raw
                .path
                .get_ref()
                .parse()
                .map_err(|why: String| self.error(raw.path.span(), &key("path"), why))?;
            let function = self.function(&raw.function, &key("function"))?;
            let route = Route {
                method,
                path,
                function,
                timeout: self.duration(raw.timeout, &key("timeout"), default_timeout)?,
                max_body_bytes: self.size(
                    raw.max_body,
                    &key("max_body"),
                    default::ROUTE_MAX_BODY,
                )?,
            };
            if let Some(earlier) = routes.iter().find(|r: &&Route| r.conflicts(&route)) {
                return Err(self.error(
                    span,
                    &format!("routes[{i}]"),
                    format!(
                        "{} {} is taken already, by the route to {}",
                        route.method_text(),
                        route.path,
                        earlier.function
                    ),
                ));
            }
            routes.push(route);
        }
        Routes::new(routes).map_err(|why| self.error(0..0, "routes", why))
    }
}
