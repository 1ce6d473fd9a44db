//! Functions behind HTTP routes (`spec/http.md`): each takes the request a route
//! receives; they answer with a response, a plain value (sent as JSON), or an error
//! that chooses its status.

use spore_guest::http::{HttpRequest, HttpResponse};
use spore_guest::{function, kv, log};

/// What the request was, as JSON: method, path, parameters, query and body text.
#[function]
fn echo(request: HttpRequest) -> HttpResponse {
    log::info(&format!("echo {} {}", request.method, request.path));
    let described = serde_json::json!({
        "method": request.method,
        "path": request.path,
        "params": request.params,
        "query": request.query,
        "body": request.text(),
        "content_type": request.header("Content-Type"),
    });
    HttpResponse::new(200)
        .header("content-type", "application/json")
        .body(described.to_string())
}

/// Greets the `name` path parameter.
#[function]
fn hello(request: HttpRequest) -> HttpResponse {
    greeting(request.param("name"))
}

fn greeting(name: Option<&str>) -> HttpResponse {
    match name {
        Some(name) => HttpResponse::text(200, format!("hello, {name}")),
        None => HttpResponse::text(400, "whom should I greet?"),
    }
}

/// Refuses, choosing its status: an error that is a response.
#[function]
fn teapot(_request: HttpRequest) -> Result<HttpResponse, HttpResponse> {
    Err(HttpResponse::text(418, "short and stout"))
}

/// Fails without choosing a status.
#[function]
fn broken(_request: HttpRequest) -> Result<HttpResponse, String> {
    Err("the frobnicator is out of order".into())
}

/// Never answers: its route's deadline ends it.
#[function]
fn stall(_request: HttpRequest) -> HttpResponse {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Counts the requests for the `page` path parameter in `kv`: a plain value, sent as
/// JSON.
#[function]
fn hits(request: HttpRequest) -> Result<u64, String> {
    let page = request.param("page").ok_or("the route has no {page}")?;
    let key = format!("hits/{page}");
    let count: u64 = kv::get(&key).map_err(|e| e.to_string())?.unwrap_or(0) + 1;
    kv::put(&key, &count).map_err(|e| e.to_string())?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_greeting_needs_a_name() {
        assert_eq!(greeting(Some("ada")).body, b"hello, ada");
        assert_eq!(greeting(None).status, 400);
    }
}
