//! The public HTTP listener (`spore node run --http ADDR`): the routes of `config.toml`
//! (`[[routes]]`), each request a call of the route's function with the request value,
//! answered with what it returns (`spec/http.md`). Apart from the local API: no token,
//! and nothing but the routes.

mod answer;
mod arguments;
mod request;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use spore_core::signature::Signature;
use spore_core::{FunctionRef, Hash};
use spore_node::routes::{Found, Routes};
use spore_node::{Args, Cancel, ErrorKind, Node, NodeError};
use tracing::Instrument;

use answer::{failure, failure_response};

/// What the listener serves: the node, and its routes (`spore routes` replaces them
/// while it runs).
pub struct Gateway {
    pub node: Arc<Node>,
    routes: RwLock<Arc<Routes>>,
    /// The signatures of each module a route called (`spec/abi.md`).
    signatures: Mutex<HashMap<Hash, Arc<[Signature]>>>,
}

impl Gateway {
    pub fn new(node: Arc<Node>, routes: Routes) -> Gateway {
        Gateway {
            node,
            routes: RwLock::new(Arc::new(routes)),
            signatures: Mutex::default(),
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

    /// The arguments of a call of `function` for `incoming` ([`arguments_for`]), its
    /// module's signatures read (or fetched) by `deadline` the first time.
    fn arguments(
        &self,
        function: &FunctionRef,
        incoming: &request::Incoming,
        deadline: Instant,
    ) -> Result<Args, NodeError> {
        let signatures = match self.known_signatures(&function.module) {
            Some(signatures) => signatures,
            None => {
                let signatures: Arc<[Signature]> =
                    self.node.signatures(&function.module, deadline)?.into();
                self.signatures
                    .lock()
                    .expect("signatures poisoned")
                    .insert(function.module, signatures.clone());
                signatures
            }
        };
        arguments_for(function, &signatures, incoming)
    }

    /// The signatures of `module` read before (kept for good: a module's signatures
    /// never change).
    fn known_signatures(&self, module: &Hash) -> Option<Arc<[Signature]>> {
        self.signatures
            .lock()
            .expect("signatures poisoned")
            .get(module)
            .cloned()
    }

    /// The route's call, when it can be made without blocking: the name resolved
    /// before and the module's signatures read before. Built on the task that took the
    /// request, it is answered there when the node holds its result in memory
    /// (`Node::answer_from_memory`), else taken as it is to a blocking thread. `None`
    /// (or arguments that do not fill, which the blocking path reports) builds it there.
    fn known_call(
        &self,
        function: &str,
        incoming: &request::Incoming,
        deadline: Instant,
    ) -> Option<spore_node::CallRequest> {
        let function = self.node.known_function_ref(function)?;
        let signatures = self.known_signatures(&function.module)?;
        let args = arguments_for(&function, &signatures, incoming).ok()?;
        Some(spore_node::CallRequest {
            deadline,
            ..self.node.request(function, args)
        })
    }
}

/// The arguments of a call of `function` (of a module with `signatures`) for `incoming`:
/// the request value for a function that takes the request (or whose module says
/// nothing of its parameters), else its parameters filled by name.
fn arguments_for(
    function: &FunctionRef,
    signatures: &[Signature],
    incoming: &request::Incoming,
) -> Result<Args, NodeError> {
    let export = function.export.as_ref().map(|e| e.as_str());
    let signature = match export {
        Some(export) => signatures.iter().find(|s| s.name == export),
        // A reference without a function is to a module's only function.
        None => match signatures {
            [only] => Some(only),
            _ => None,
        },
    };
    let values = match signature.filter(|s| !arguments::takes_request(s)) {
        Some(signature) => arguments::fill(signature, incoming)
            .map_err(|why| NodeError::placement(ErrorKind::BadRequest, why))?,
        None => vec![incoming.value()],
    };
    Args::encode(&values)
        .map_err(|e| NodeError::placement(ErrorKind::BadRequest, format!("the arguments: {e}")))
}

pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new().fallback(serve_route).with_state(gateway)
}

/// Finds the request's route, reads its body within the route's limits, and calls the
/// route's function with the request value.
async fn serve_route(State(gateway): State<Arc<Gateway>>, request: Request<Body>) -> Response {
    let (route, response) = route_request(gateway.clone(), request).await;
    gateway
        .node
        .metrics()
        .http_response(&route, response.status().as_u16());
    response
}

/// The answer to `request`, and the route that took it (`GET /orders/{id}`, or `none`),
/// for the metrics.
async fn route_request(gateway: Arc<Gateway>, request: Request<Body>) -> (String, Response) {
    let (parts, body) = request.into_parts();
    let none = || "none".to_owned();
    let routes = gateway.routes();
    let (route, params) = match routes.find(parts.method.as_str(), parts.uri.path()) {
        Found::Route { route, params } => (route.clone(), params),
        Found::NotFound => {
            return (
                none(),
                failure_response(
                    StatusCode::NOT_FOUND,
                    ErrorKind::NotFound,
                    format!("no route takes {}", parts.uri.path()),
                ),
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
            return (none(), response);
        }
    };
    let span = tracing::info_span!("route", method = %parts.method, path = %route.path, function = %route.function);
    let label = format!("{} {}", route.method_text(), route.path);
    let response = call_route(route, params, parts, body, gateway)
        .instrument(span)
        .await;
    (label, response)
}

/// Reads the body of a request `route` takes and calls the route's function.
async fn call_route(
    route: spore_node::routes::Route,
    params: std::collections::BTreeMap<String, String>,
    parts: axum::http::request::Parts,
    body: Body,
    gateway: Arc<Gateway>,
) -> Response {
    let deadline = Instant::now() + route.timeout;
    let body = match request::read_body(&parts, body, route.max_body_bytes, deadline).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let incoming = request::Incoming::new(&parts, params, body);
    let known = gateway.known_call(&route.function, &incoming, deadline);
    if let Some(outcome) = known
        .as_ref()
        .and_then(|request| gateway.node.answer_from_memory(request))
    {
        return answer::returned(&outcome.value).into_response();
    }
    // A client that hangs up stops the call (`server::hung_up` drops this future).
    let cancel = Cancel::new();
    let _cancel_on_hang_up = CancelOnDrop(cancel.clone());
    // The call's span is a child of the route's, in the log and in exported traces.
    let span = tracing::Span::current();
    let called = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let node = &gateway.node;
        let request = match known {
            Some(request) => request,
            None => {
                let function = node.function_ref(&route.function)?;
                let args = gateway.arguments(&function, &incoming, deadline)?;
                spore_node::CallRequest {
                    deadline,
                    ..node.request(function, args)
                }
            }
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
