//! The `http` ability: an outbound HTTP client limited to an allowlist of hosts
//! (`spec/abilities.md`, "http").
//!
//! Every URL is checked against the binding's allowlist before anything touches the
//! network, so a function can neither connect to nor resolve a host its node did not
//! allow. Redirects are never followed: a 3xx arrives as a response and the function
//! may request its `location`, which is checked like any other URL. Following them
//! here would let an allowed host send the client anywhere.
//!
//! The client is blocking (`ureq`), which suits providers: they run on the thread of
//! the calling guest, which waits anyway.

use std::fmt;
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_runtime::{AbilityContext, AbilityError, ErrorKind, Provider, field, text_field};
use ureq::http::{self, HeaderName, HeaderValue, Method, Uri};

/// How an `http` binding is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Reachable hosts: `host` (any port), `host:port`, or `*.host` (any subdomain of
    /// `host`, not `host` itself). IPv6 addresses are written in brackets: `[::1]:8080`.
    pub allow: Vec<String>,
    /// The longest a request may take, connecting and reading the whole body included.
    /// Calls also end at the caller's deadline when that comes first.
    pub timeout: Duration,
    /// Responses with a longer body fail with `too_large`.
    pub max_response_bytes: u64,
}

impl HttpSettings {
    /// A request's own cap, when the binding sets none.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The largest response, when the binding sets none.
    pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 4 << 20;
}

impl Default for HttpSettings {
    fn default() -> HttpSettings {
        HttpSettings {
            allow: Vec::new(),
            timeout: Self::DEFAULT_TIMEOUT,
            max_response_bytes: Self::DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// A malformed `http` binding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpConfigError {
    #[error("bad http allowlist entry `{entry}`: {reason}")]
    BadAllowEntry { entry: String, reason: String },
}

/// The `http` provider. Cheap to share: one connection pool serves every caller.
pub struct HttpProvider {
    settings: HttpSettings,
    rules: Vec<AllowRule>,
    agent: ureq::Agent,
}

impl HttpProvider {
    /// Checks the allowlist and builds the client. Nothing is resolved or connected yet.
    pub fn new(settings: HttpSettings) -> Result<HttpProvider, HttpConfigError> {
        let rules = settings
            .allow
            .iter()
            .map(|entry| AllowRule::parse(entry))
            .collect::<Result<Vec<_>, _>>()?;
        let config = ureq::Agent::config_builder()
            // A status is a response for the guest to judge, never an error here.
            .http_status_as_error(false)
            .max_redirects(0)
            // The allowlist names the hosts the node connects to; a proxy from the
            // environment would make that a lie in both directions.
            .proxy(None)
            .timeout_global(Some(settings.timeout))
            .build();
        Ok(HttpProvider {
            agent: ureq::Agent::new_with_config(config),
            rules,
            settings,
        })
    }

    /// What [`Provider::call`] does, for callers with a deadline but no
    /// `AbilityContext` (tools and tests).
    pub fn call_until(
        &self,
        deadline: Instant,
        operation: &str,
        request: Value,
    ) -> Result<Value, AbilityError> {
        match operation {
            "request" => self.request(deadline, &request),
            other => Err(AbilityError::new(
                ErrorKind::NotFound,
                format!("the http provider has no operation `{other}`"),
            )),
        }
    }

    fn request(&self, deadline: Instant, request: &Value) -> Result<Value, AbilityError> {
        let url = text_field(request, "url")?;
        let uri: Uri = url
            .parse()
            .map_err(|e| AbilityError::bad_request(format!("`{url}` is not a URL: {e}")))?;
        self.check_allowed(url, &uri)?;

        let method = match field(request, "method") {
            None | Some(Value::Null) => Method::GET,
            Some(Value::Text(text)) => parse_method(text)?,
            Some(_) => {
                return Err(AbilityError::bad_request(
                    "`method` must be text, like \"GET\"",
                ));
            }
        };
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers(request)? {
            builder = builder.header(name, value);
        }
        let body = match field(request, "body") {
            None | Some(Value::Null) => None,
            Some(Value::Bytes(bytes)) => Some(bytes.clone()),
            Some(Value::Text(text)) => Some(text.clone().into_bytes()),
            Some(_) => return Err(AbilityError::bad_request("`body` must be a byte string")),
        };

        let timeout = self
            .settings
            .timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        if timeout.is_zero() {
            return Err(timed_out(url, timeout));
        }
        let result = match body {
            None => self.send(builder.body(()), timeout),
            Some(body) => self.send(builder.body(body), timeout),
        };
        let mut response = result.map_err(|e| self.ureq_error(url, timeout, e))?;

        let status = response.status().as_u16();
        let headers = response_headers(response.headers());
        let limit = self.settings.max_response_bytes;
        if response
            .body()
            .content_length()
            .is_some_and(|length| length > limit)
        {
            return Err(self.too_large(url));
        }
        // ureq fails a body that merely reaches its limit, so it gets one byte more and
        // the comparison below decides.
        let body = response
            .body_mut()
            .with_config()
            .limit(limit.saturating_add(1))
            .read_to_vec()
            .map_err(|e| self.ureq_error(url, timeout, e))?;
        if body.len() as u64 > limit {
            return Err(self.too_large(url));
        }

        Ok(Value::Map(vec![
            (Value::Text("status".into()), Value::Integer(status.into())),
            (Value::Text("headers".into()), headers),
            (Value::Text("body".into()), Value::Bytes(body)),
        ]))
    }

    fn send<B: ureq::AsSendBody>(
        &self,
        request: Result<http::Request<B>, http::Error>,
        timeout: Duration,
    ) -> Result<http::Response<ureq::Body>, ureq::Error> {
        let request = self
            .agent
            .configure_request(request?)
            .timeout_global(Some(timeout))
            .build();
        self.agent.run(request)
    }

    fn check_allowed(&self, url: &str, uri: &Uri) -> Result<(), AbilityError> {
        let default_port = match uri.scheme_str() {
            Some("http") => 80,
            Some("https") => 443,
            Some(other) => {
                return Err(AbilityError::new(
                    ErrorKind::NotAllowed,
                    format!("`{url}`: only http and https URLs can be requested, not {other}"),
                ));
            }
            None => {
                return Err(AbilityError::bad_request(format!(
                    "`{url}` is not an absolute http(s) URL"
                )));
            }
        };
        let Some(host) = uri.host().filter(|host| !host.is_empty()) else {
            return Err(AbilityError::bad_request(format!("`{url}` names no host")));
        };
        let host = normalize_host(host);
        let port = uri.port_u16().unwrap_or(default_port);
        if self.rules.iter().any(|rule| rule.matches(&host, port)) {
            return Ok(());
        }
        let authority = format!("{}:{port}", bracket(&host));
        Err(AbilityError::new(
            ErrorKind::NotAllowed,
            format!(
                "`{authority}` is not on this node's http allowlist; to allow it, add \"{}\" (any port) \
                 or \"{authority}\" to the `allow` key of the http binding",
                bracket(&host)
            ),
        ))
    }

    fn ureq_error(&self, url: &str, timeout: Duration, error: ureq::Error) -> AbilityError {
        match error {
            ureq::Error::Timeout(_) => timed_out(url, timeout),
            ureq::Error::Io(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                timed_out(url, timeout)
            }
            ureq::Error::BodyExceedsLimit(_) => self.too_large(url),
            ureq::Error::Http(e) => {
                AbilityError::bad_request(format!("cannot build a request for `{url}`: {e}"))
            }
            ureq::Error::BadUri(e) => {
                AbilityError::bad_request(format!("`{url}` cannot be requested: {e}"))
            }
            ureq::Error::HostNotFound => AbilityError::new(
                ErrorKind::Failed,
                format!("`{url}`: the host name does not resolve"),
            ),
            other => AbilityError::new(
                ErrorKind::Failed,
                format!("request to `{url}` failed: {other}"),
            ),
        }
    }

    fn too_large(&self, url: &str) -> AbilityError {
        AbilityError::new(
            ErrorKind::TooLarge,
            format!(
                "the response from `{url}` is larger than this binding's max_response_bytes ({})",
                Bytes(self.settings.max_response_bytes)
            ),
        )
    }
}

impl Provider for HttpProvider {
    fn call(
        &self,
        cx: &AbilityContext,
        operation: &str,
        request: Value,
    ) -> Result<Value, AbilityError> {
        let _span = tracing::debug_span!(
            "ability",
            ability = "http",
            operation,
            invocation = cx.invocation
        )
        .entered();
        self.call_until(cx.deadline, operation, request)
    }

    fn describe(&self) -> String {
        format!(
            "http client, allow [{}], timeout {}, max response {}",
            self.settings.allow.join(", "),
            Seconds(self.settings.timeout),
            Bytes(self.settings.max_response_bytes)
        )
    }
}

fn timed_out(url: &str, timeout: Duration) -> AbilityError {
    AbilityError::new(
        ErrorKind::Timeout,
        format!(
            "the request to `{url}` did not complete within {}",
            Seconds(timeout)
        ),
    )
}

fn parse_method(text: &str) -> Result<Method, AbilityError> {
    // CONNECT is left out: it turns the client into a tunnel to wherever the proxy
    // target points, which the allowlist does not see.
    const METHODS: [&str; 8] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
    ];
    let upper = text.to_ascii_uppercase();
    if !METHODS.contains(&upper.as_str()) {
        return Err(AbilityError::bad_request(format!(
            "unsupported HTTP method `{text}`; use one of {}",
            METHODS.join(", ")
        )));
    }
    Method::from_bytes(upper.as_bytes())
        .map_err(|e| AbilityError::bad_request(format!("method `{text}`: {e}")))
}

fn headers(request: &Value) -> Result<Vec<(HeaderName, HeaderValue)>, AbilityError> {
    let entries = match field(request, "headers") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Map(entries)) => entries,
        Some(_) => {
            return Err(AbilityError::bad_request(
                "`headers` must be a map of text to text",
            ));
        }
    };
    entries
        .iter()
        .map(|(name, value)| {
            let (Some(name), Some(value)) = (name.as_text(), value.as_text()) else {
                return Err(AbilityError::bad_request(
                    "`headers` must be a map of text to text",
                ));
            };
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                AbilityError::bad_request(format!("`{name}` is not a valid header name"))
            })?;
            // The client derives these from the URL and body; letting a guest set
            // `host` would reach virtual hosts the allowlist does not name.
            if [
                http::header::HOST,
                http::header::CONTENT_LENGTH,
                http::header::TRANSFER_ENCODING,
            ]
            .contains(&header)
            {
                return Err(AbilityError::bad_request(format!(
                    "the `{header}` header is set by the client and cannot be given"
                )));
            }
            let value = HeaderValue::from_str(value).map_err(|_| {
                AbilityError::bad_request(format!("the value of header `{name}` is not valid"))
            })?;
            Ok((header, value))
        })
        .collect()
}

/// Response headers as a map; repeated headers are joined with `, ` as HTTP allows.
fn response_headers(headers: &http::HeaderMap) -> Value {
    let mut entries: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        // `HeaderName`s are already lowercase.
        match entries
            .iter_mut()
            .find(|(existing, _)| existing == name.as_str())
        {
            Some((_, joined)) => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            None => entries.push((name.as_str().to_owned(), value)),
        }
    }
    Value::Map(
        entries
            .into_iter()
            .map(|(name, value)| (Value::Text(name), Value::Text(value)))
            .collect(),
    )
}

/// One allowlist entry, parsed.
#[derive(Debug, Clone)]
struct AllowRule {
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone)]
enum HostPattern {
    Exact(String),
    /// `*.example.org` is stored as `.example.org`, so a suffix match needs no
    /// further care about label boundaries.
    Subdomains(String),
}

impl AllowRule {
    fn parse(entry: &str) -> Result<AllowRule, HttpConfigError> {
        let bad = |reason: &str| HttpConfigError::BadAllowEntry {
            entry: entry.to_owned(),
            reason: reason.to_owned(),
        };
        if entry.contains("://") || entry.contains('/') {
            return Err(bad(
                "write only the host, or host:port, without a scheme or path",
            ));
        }
        let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
            let (address, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("missing `]` after an IPv6 address"))?;
            if address.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("not an IPv6 address in brackets"));
            }
            match after {
                "" => (address, None),
                _ => (
                    address,
                    Some(
                        after
                            .strip_prefix(':')
                            .ok_or_else(|| bad("expected `:port` after `]`"))?,
                    ),
                ),
            }
        } else {
            match entry.split_once(':') {
                Some((_, port)) if port.contains(':') => {
                    return Err(bad("write IPv6 addresses in brackets, like [::1]:8080"));
                }
                Some((host, port)) => (host, Some(port)),
                None => (entry, None),
            }
        };
        let port = match port {
            None => None,
            Some(port) => Some(
                port.parse::<u16>()
                    .ok()
                    .filter(|&port| port != 0)
                    .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
            ),
        };
        let host = normalize_host(host);
        let (pattern, name) = match host.strip_prefix("*.") {
            Some(domain) => (HostPattern::Subdomains(format!(".{domain}")), domain),
            None => (HostPattern::Exact(host.clone()), host.as_str()),
        };
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':');
        if name.is_empty() || name.starts_with('.') || !name.chars().all(valid_char) {
            return Err(bad(
                "not a host name; the only wildcard is a leading `*.` for any subdomain",
            ));
        }
        Ok(AllowRule {
            host: pattern,
            port,
        })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        let host_matches = match &self.host {
            HostPattern::Exact(exact) => exact == host,
            HostPattern::Subdomains(suffix) => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
        };
        host_matches && self.port.is_none_or(|allowed| allowed == port)
    }
}

/// Lowercase, without IPv6 brackets or a trailing root dot, so that the spellings of
/// one host compare equal.
fn normalize_host(host: &str) -> String {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// A duration as people write it in configuration: `10s`, `1.5s`, `250ms`.
struct Seconds(Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis.is_multiple_of(1000) {
            write!(f, "{}s", millis / 1000)
        } else if millis >= 1000 {
            write!(f, "{}s", self.0.as_secs_f64())
        } else {
            write!(f, "{millis}ms")
        }
    }
}

/// A byte count in the largest binary unit that divides it: `4 MiB`, `1500 bytes`.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        match UNITS
            .iter()
            .find(|(size, _)| self.0 >= *size && self.0.is_multiple_of(*size))
        {
            Some((size, unit)) => write!(f, "{} {unit}", self.0 / size),
            None => write!(f, "{} bytes", self.0),
        }
    }
}
