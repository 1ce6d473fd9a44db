//! The public HTTP listener (`spore node run --http ADDR`): the routes of `config.toml`
//! (`[[routes]]`), each request a call of the route's function with the request value,
//! answered with what it returns (`spec/http.md`). Apart from the local API: no token,
//! and nothing but the routes.

mod answer;
mod request;

use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use spore_node::routes::{Found, Routes};
use spore_node::{Args, Cancel, ErrorKind, Node};
use tracing::Instrument;

use answer::{failure, failure_response};

/// What the listener serves: the node, and its routes (`spore routes` replaces them
/// while it runs).
pub struct Gateway {
    pub node: Arc<Node>,
    routes: RwLock<Arc<Routes>>,
}

impl Gateway {
    pub fn new(node: Arc<Node>, routes: Routes) -> Gateway {
        Gateway {
            node,
            routes: RwLock::new(Arc::new(routes)),
        }
    }

    /// Serves `routes` from the next request on; requests already routed finish as
    /// they were.
    pub fn replace_routes(&self, routes: Routes) {
        *self.routes.write().expect("routes poisoned") = Arc::new(routes);
    }

    fn routes(&self) -> Arc<Routes> {
        self.routes.read().expect("routes poisoned").clone()
    }
}

pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new().fallback(serve_route).with_state(gateway)
}

/// Finds the request's route, reads its body within the route's limits, and calls the
/// route's function with the request value.
async fn serve_route(State(gateway): State<Arc<Gateway>>, request: Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    let routes = gateway.routes();
    let (route, params) = match routes.find(parts.method.as_str(), parts.uri.path()) {
        Found::Route { route, params } => (route.clone(), params),
        Found::NotFound => {
            return failure_response(
                StatusCode::NOT_FOUND,
                ErrorKind::NotFound,
                format!("no route takes {}", parts.uri.path()),
            );
        }
        Found::MethodNotAllowed(allowed) => {
            let mut response = failure_response(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorKind::BadRequest,
                format!(
                    "{} takes {}, not {}",
                    parts.uri.path(),
                    allowed.join(", "),
                    parts.method
                ),
            );
            if let Ok(allow) = HeaderValue::from_str(&allowed.join(", ")) {
                response.headers_mut().insert(header::ALLOW, allow);
            }
            return response;
        }
    };
    let span = tracing::info_span!("route", method = %parts.method, path = %route.path, function = %route.function);
    call_route(route, params, parts, body, gateway.node.clone())
        .instrument(span)
        .await
}

/// Reads the body of a request `route` takes and calls the route's function.
async fn call_route(
    route: spore_node::routes::Route,
    params: std::collections::BTreeMap<String, String>,
    parts: axum::http::request::Parts,
    body: Body,
    node: Arc<Node>,
) -> Response {
    let deadline = Instant::now() + route.timeout;
    let body = match request::read_body(&parts, body, route.max_body_bytes, deadline).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let value = request::value(&parts, params, body);
    let args = match Args::encode(&[value]) {
        Ok(args) => args,
        Err(e) => {
            return failure_response(
                StatusCode::BAD_REQUEST,
                ErrorKind::BadRequest,
                format!("the request does not make a value: {e}"),
            );
        }
    };
    // A client that hangs up stops the call (`server::hung_up` drops this future).
    let cancel = Cancel::new();
    let _cancel_on_hang_up = CancelOnDrop(cancel.clone());
    let called = tokio::task::spawn_blocking(move || {
        let function = node.function_ref(&route.function)?;
        let request = spore_node::CallRequest {
            deadline,
            ..node.request(function, args)
        };
        node.call_cancellable(request, cancel).result
    })
    .await;
    match called {
        Ok(Ok(outcome)) => answer::returned(&outcome.value),
        Ok(Err(error)) => failure(&error),
        Err(panic) => failure_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Internal,
            format!("the call failed: {panic}"),
        ),
    }
    .into_response()
}

/// Cancels a call when the request serving it is dropped before it answers.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
