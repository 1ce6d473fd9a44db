//! HTTP routes (`spec/http.md`): a method and a path pattern leading to a function,
//! and the table that finds the route of a request. Pure: the HTTP server that serves
//! them is the binary's.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One `[[routes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// An upper-case HTTP method, or `None` for any (`*`).
    pub method: Option<String>,
    pub path: PathPattern,
    /// What the route calls: a name (this home's or a trusted mesh name) or a
    /// reference, resolved at each request, so that moving the name moves the route.
    pub function: String,
    /// The deadline of each request's call, counted from when its head was read.
    pub timeout: Duration,
    /// The largest request body accepted.
    pub max_body_bytes: u64,
}

impl Route {
    /// Whether both routes would take some request: the same method (or either any)
    /// and patterns that match the same paths.
    pub fn conflicts(&self, other: &Route) -> bool {
        self.path.same_shape(&other.path)
            && (self.method == other.method || self.method.is_none() || other.method.is_none())
    }

    /// The method as written in `config.toml`.
    pub fn method_text(&self) -> &str {
        self.method.as_deref().unwrap_or("*")
    }
}

/// A path pattern: `/` and segments, each literal or a `{parameter}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

impl FromStr for PathPattern {
    type Err = String;

    fn from_str(text: &str) -> Result<PathPattern, String> {
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| format!("`{text}` is not a path: it starts with `/`"))?;
        let mut segments = Vec::new();
        let mut seen = Vec::new();
        for segment in rest.split('/').filter(|s| !s.is_empty()) {
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    if !is_param_name(name) {
                        return Err(format!(
                            "`{{{name}}}` is not a parameter: 1 to 64 letters, digits or `_`, not starting with a digit"
                        ));
                    }
                    if seen.contains(&name) {
                        return Err(format!("the parameter `{name}` appears twice"));
                    }
                    seen.push(name);
                    segments.push(Segment::Param(name.to_owned()));
                }
                None if segment.contains(['{', '}', '?', '#']) => {
                    return Err(format!(
                        "`{segment}` is not a path segment: a parameter is written `{{name}}` and takes the whole segment"
                    ));
                }
                None => segments.push(Segment::Literal(segment.to_owned())),
            }
        }
        Ok(PathPattern { segments })
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => write!(f, "/{text}")?,
                Segment::Param(name) => write!(f, "/{{{name}}}")?,
            }
        }
        Ok(())
    }
}

fn is_param_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl PathPattern {
    /// The parameters of `segments` (a request path split at `/`, each segment
    /// percent-decoded) when it matches.
    fn matches(&self, segments: &[Option<String>]) -> Option<BTreeMap<String, String>> {
        if segments.len() != self.segments.len() {
            return None;
        }
        let mut params = BTreeMap::new();
        for (pattern, segment) in self.segments.iter().zip(segments) {
            match (pattern, segment) {
                (Segment::Literal(literal), Some(segment)) if literal == segment => {}
                (Segment::Param(name), Some(segment)) if !segment.is_empty() => {
                    params.insert(name.clone(), segment.clone());
                }
                _ => return None,
            }
        }
        Some(params)
    }

    /// Whether the two match the same paths (parameters named alike or not).
    fn same_shape(&self, other: &PathPattern) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|pair| match pair {
                    (Segment::Literal(a), Segment::Literal(b)) => a == b,
                    (Segment::Param(_), Segment::Param(_)) => true,
                    _ => false,
                })
    }

    /// Sorts literal segments before parameters, position by position.
    fn order_key(&self) -> Vec<u8> {
        self.segments
            .iter()
            .map(|s| matches!(s, Segment::Param(_)) as u8)
            .collect()
    }
}

/// What the table found for a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Found<'a> {
    Route {
        route: &'a Route,
        params: BTreeMap<String, String>,
    },
    /// Routes match the path, for other methods than the request's: these.
    MethodNotAllowed(Vec<String>),
    NotFound,
}

/// The routes of a node, most literal first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    /// The table of `routes`; refused when two have the same method and pattern.
    pub fn new(mut routes: Vec<Route>) -> Result<Routes, String> {
        routes.sort_by_key(|r| r.path.order_key());
        for (i, a) in routes.iter().enumerate() {
            if let Some(b) = routes[i + 1..].iter().find(|b| b.conflicts(a)) {
                return Err(format!(
                    "two routes take {} {}: to {} and to {}",
                    a.method_text(),
                    a.path,
                    a.function,
                    b.function
                ));
            }
        }
        Ok(Routes { routes })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The route of a `method` request for `path` (as sent: percent-encoded).
    pub fn find(&self, method: &str, path: &str) -> Found<'_> {
        let segments: Vec<Option<String>> = path
            .split('/')
            .skip(1)
            .filter(|s| !s.is_empty())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .ok()
                    .map(|s| s.into_owned())
            })
            .collect();
        let mut allowed = Vec::new();
        for route in &self.routes {
            let Some(params) = route.path.matches(&segments) else {
                continue;
            };
            match &route.method {
                Some(m) if m != method => allowed.push(m.clone()),
                _ => return Found::Route { route, params },
            }
        }
        if allowed.is_empty() {
            Found::NotFound
        } else {
            Found::MethodNotAllowed(allowed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str, function: &str) -> Route {
        Route {
            method: (method != "*").then(|| method.to_owned()),
            path: path.parse().unwrap(),
            function: function.into(),
            timeout: Duration::from_secs(1),
            max_body_bytes: 1024,
        }
    }

    fn found(routes: &Routes, method: &str, path: &str) -> Option<(String, Vec<(String, String)>)> {
        match routes.find(method, path) {
            Found::Route { route, params } => {
                Some((route.function.clone(), params.into_iter().collect()))
            }
            _ => None,
        }
    }

    #[test]
    fn a_request_finds_the_most_literal_route_with_its_parameters_decoded() {
        let routes = Routes::new(vec![
            route("GET", "/orders/{id}", "orders.get"),
            route("GET", "/orders/latest", "orders.latest"),
            route("POST", "/orders", "orders.create"),
            route("*", "/", "home"),
        ])
        .unwrap();
        assert_eq!(
            found(&routes, "GET", "/orders/a%20b"),
            Some(("orders.get".into(), vec![("id".into(), "a b".into())]))
        );
        assert_eq!(
            found(&routes, "GET", "/orders/latest").unwrap().0,
            "orders.latest"
        );
        assert_eq!(
            found(&routes, "GET", "/orders/latest/").unwrap().0,
            "orders.latest"
        );
        assert_eq!(found(&routes, "DELETE", "/").unwrap().0, "home");
        assert_eq!(
            routes.find("GET", "/orders"),
            Found::MethodNotAllowed(vec!["POST".into()])
        );
        assert_eq!(routes.find("GET", "/orders/1/items"), Found::NotFound);
        assert_eq!(
            routes.find("GET", "/orders/%FF"),
            Found::NotFound,
            "not UTF-8"
        );
    }

    #[test]
    fn patterns_and_tables_that_cannot_work_are_refused_saying_why() {
        for (bad, why) in [
            ("orders", "starts with `/`"),
            ("/orders/{1d}", "not a parameter"),
            ("/a/{id}/b/{id}", "appears twice"),
            ("/orders/x{id}", "takes the whole segment"),
        ] {
            let error = bad.parse::<PathPattern>().unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
        let error = Routes::new(vec![
            route("GET", "/orders/{id}", "a"),
            route("*", "/orders/{key}", "b"),
        ])
        .unwrap_err();
        assert!(error.contains("two routes take"), "{error}");
        assert_eq!("/".parse::<PathPattern>().unwrap().to_string(), "/");
        assert_eq!(
            "/orders/{id}".parse::<PathPattern>().unwrap().to_string(),
            "/orders/{id}"
        );
    }
}
