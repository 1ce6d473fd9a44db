//! Who the API answers (docs/api.md, "Authentication"): one layer before every route,
//! the fallbacks included. A request must name the API's own address in its `Host`
//! header (else 403: a web page whose domain was rebound to this address names its own
//! domain), and carry the node's token (else 401: anyone else who can reach the port,
//! a guest's `http` ability allowed onto 127.0.0.1 among them).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, HOST};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use spore_core::ErrorKind;

use super::error::ApiError;
use crate::api_token::ApiToken;
use crate::daemon::server::AcceptedOn;

/// What the guard admits requests by.
pub struct Guard {
    pub token: ApiToken,
    /// The address the API is bound to, as `node.json` gives it to clients.
    pub bound: SocketAddr,
}

/// The middleware: answers the refusal of a request the guard does not admit, and passes
/// the others on.
pub async fn admit(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    match guard.refusal(&request) {
        Some(refusal) => {
            tracing::debug!(?refusal, "refused an API request");
            refusal.into_response()
        }
        None => next.run(request).await,
    }
}

impl Guard {
    fn refusal(&self, request: &Request) -> Option<ApiError> {
        // The address the client dialed: the bound one, or with an unspecified bind
        // (`0.0.0.0`) the interface the connection came in on.
        let accepted_on = request.extensions().get::<AcceptedOn>().map(|on| on.0);
        let names_this_api = |host: &str| names_api(host, self.bound, accepted_on);
        let wrong_host = |why: &str| {
            // The address the client dialed says more than an unspecified `0.0.0.0`.
            let address = accepted_on.unwrap_or(self.bound);
            ApiError::new(
                ErrorKind::NotAllowed,
                format!(
                    "{why}: this API answers only requests whose `Host` is the address it \
                     listens on, {address} (docs/api.md)"
                ),
            )
        };
        let mut hosts = request.headers().get_all(HOST).iter();
        let host = match (hosts.next(), hosts.next()) {
            (Some(host), None) => host,
            (None, _) => return Some(wrong_host("the request has no `Host` header")),
            (Some(_), Some(_)) => {
                return Some(wrong_host("the request has more than one `Host` header"));
            }
        };
        // A request line in absolute form (`GET http://host/path`) names a host as well:
        // both must be this API.
        let authority_names_this_api = request
            .uri()
            .authority()
            .is_none_or(|authority| names_this_api(authority.as_str()));
        if !(host.to_str().is_ok_and(names_this_api) && authority_names_this_api) {
            return Some(wrong_host("the request names another host"));
        }

        let Some(authorization) = request.headers().get(AUTHORIZATION) else {
            return Some(ApiError::unauthenticated(
                "the request carries no API token: send `Authorization: Bearer TOKEN`, \
                 TOKEN being the contents of `api.token` in the node's home (docs/api.md)",
            ));
        };
        let presented = authorization.to_str().ok().and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(token.trim())
        });
        if !presented.is_some_and(|token| self.token.is(token)) {
            return Some(ApiError::unauthenticated(
                "the API token the request carries is not this node's: send \
                 `Authorization: Bearer TOKEN`, TOKEN being the contents of `api.token` in \
                 the node's home (docs/api.md)",
            ));
        }
        None
    }
}

/// What a `Host` names.
#[derive(Debug, PartialEq)]
enum Named {
    Localhost,
    Ip(IpAddr),
}

/// Whether `host` (a `Host` header, `host[:port]`) names this API, bound to `bound` and
/// dialed at `accepted_on`: the IP address and port of either, or `localhost` with the
/// port when the client dialed a loopback address.
fn names_api(host: &str, bound: SocketAddr, accepted_on: Option<SocketAddr>) -> bool {
    let Some((named, port)) = parse_host(host) else {
        return false;
    };
    [Some(bound), accepted_on]
        .into_iter()
        .flatten()
        .any(|addr| {
            // An IPv4 client of a socket bound to `[::]` arrives as `::ffff:a.b.c.d`.
            let ip = addr.ip().to_canonical();
            addr.port() == port
                && match named {
                    Named::Localhost => ip.is_loopback(),
                    Named::Ip(named) => named.to_canonical() == ip,
                }
        })
}

/// The host and port a `Host` header names: `localhost`, an IPv4 address or a bracketed
/// IPv6 one (a client that dialed an address by name sends the name), and the port,
/// HTTP's default (80) when left out, as clients leave it out.
fn parse_host(text: &str) -> Option<(Named, u16)> {
    let (host, port) = match text.rfind(':') {
        // A colon within brackets is the IPv6 address's, not the port's.
        Some(colon) if !text[colon..].contains(']') => (&text[..colon], Some(&text[colon + 1..])),
        _ => (text, None),
    };
    let port = match port {
        // Digits only: `u16::from_str` would also take a sign.
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            port.parse().ok()?
        }
        Some(_) => return None,
        None => 80,
    };
    let named = if let Some(bracketed) = host.strip_prefix('[') {
        Named::Ip(IpAddr::V6(
            bracketed.strip_suffix(']')?.parse::<Ipv6Addr>().ok()?,
        ))
    } else if host.eq_ignore_ascii_case("localhost") {
        Named::Localhost
    } else {
        Named::Ip(IpAddr::V4(host.parse::<Ipv4Addr>().ok()?))
    };
    Some((named, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_host_names_the_api_by_its_address_or_as_localhost_on_loopback() {
        let loopback = addr("127.0.0.1:4000");
        for host in ["127.0.0.1:4000", "localhost:4000", "LocalHost:4000"] {
            assert!(names_api(host, loopback, Some(loopback)), "{host}");
        }
        for host in [
            "evil.example:4000",
            "evil.example",
            "127.0.0.1:4001",
            "127.0.0.1",
            "localhost",
            "127.0.0.2:4000",
            "127.0.0.1:+4000",
            "127.0.0.1:",
            "127.0.0.1:4000:4000",
            "[127.0.0.1]:4000",
            "localhost.:4000",
            "user@127.0.0.1:4000",
            "",
        ] {
            assert!(!names_api(host, loopback, Some(loopback)), "{host}");
        }

        let v6 = addr("[::1]:4000");
        for host in ["[::1]:4000", "[0:0:0:0:0:0:0:1]:4000", "localhost:4000"] {
            assert!(names_api(host, v6, Some(v6)), "{host}");
        }
        for host in ["::1:4000", "[::1]", "[::2]:4000", "127.0.0.1:4000"] {
            assert!(!names_api(host, v6, Some(v6)), "{host}");
        }

        // Clients leave HTTP's default port out.
        let port_80 = addr("127.0.0.1:80");
        for host in ["127.0.0.1", "localhost", "127.0.0.1:80"] {
            assert!(names_api(host, port_80, Some(port_80)), "{host}");
        }
    }

    #[test]
    fn a_public_address_is_not_localhost() {
        let public = addr("192.0.2.7:4000");
        assert!(names_api("192.0.2.7:4000", public, Some(public)));
        assert!(!names_api("localhost:4000", public, Some(public)));
        assert!(!names_api("127.0.0.1:4000", public, Some(public)));
    }

    #[test]
    fn on_an_unspecified_bind_a_host_names_the_address_the_client_dialed() {
        let bound = addr("0.0.0.0:4000");
        let lan = Some(addr("192.0.2.7:4000"));
        let loopback = Some(addr("127.0.0.1:4000"));
        // The CLI dials what node.json says.
        assert!(names_api("0.0.0.0:4000", bound, loopback));
        assert!(names_api("192.0.2.7:4000", bound, lan));
        assert!(!names_api("192.0.2.8:4000", bound, lan));
        assert!(!names_api("localhost:4000", bound, lan));
        assert!(names_api("localhost:4000", bound, loopback));
        // An IPv4 client of a dual-stack socket.
        let dual = addr("[::]:4000");
        let mapped = Some(addr("[::ffff:192.0.2.7]:4000"));
        assert!(names_api("192.0.2.7:4000", dual, mapped));
        assert!(names_api("[::ffff:192.0.2.7]:4000", dual, mapped));
    }
}
