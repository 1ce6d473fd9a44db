//! The local HTTP API (docs/api.md): what the CLI uses when a node runs on its home.
//!
//! `guard` admits a request before any route sees it (the `Host` it names, the token it
//! carries); `handlers` holds one named function per route; `extract` reads requests
//! (bodies within their limits, JSON, queries); `error` is the one way every failure is
//! answered: the error record with the status of its kind, for the node's errors,
//! refused requests and unknown routes alike. The server loop under it is
//! `super::server`.

mod error;
mod extract;
mod guard;
mod handlers;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use spore_node::Node;

use crate::cli::backend::NodeFile;
pub use guard::Guard;

/// What the API serves: the node, what it wrote into `node.json`, and its HTTP routes
/// when it serves them (`--http`).
pub struct Served {
    pub node: Arc<Node>,
    pub file: NodeFile,
    pub gateway: Option<Arc<super::gateway::Gateway>>,
}

/// `/metrics` alone, without the token (`spore node run --metrics ADDR`).
pub fn metrics_router(served: Arc<Served>) -> Router {
    Router::new()
        .route("/metrics", get(handlers::metrics))
        .with_state(served)
}

/// Every route of docs/api.md, behind `guard`; anything else is answered with the error
/// record.
pub fn router(served: Arc<Served>, guard: Guard) -> Router {
    Router::new()
        .route("/v1/info", get(handlers::info))
        .route("/v1/status", get(handlers::status))
        .route("/v1/fetches", get(handlers::fetches))
        .route("/v1/publish", post(handlers::publish))
        .route("/v1/invoke", post(handlers::invoke))
        .route("/v1/modules", get(handlers::modules))
        .route("/v1/inspect", get(handlers::inspect))
        .route("/v1/names", get(handlers::names))
        .route("/v1/names/history", get(handlers::name_history))
        .route("/v1/names/set", post(handlers::set_name))
        .route("/v1/names/remove", post(handlers::remove_name))
        .route("/v1/names/mesh", get(handlers::mesh_names))
        .route("/v1/names/publish", post(handlers::publish_name))
        .route("/v1/abilities", get(handlers::abilities))
        .route("/v1/memo/clear", post(handlers::clear_memo))
        .route("/v1/verify", get(handlers::verify))
        .route("/v1/repair", post(handlers::repair))
        .route("/v1/gc", post(handlers::gc))
        .route("/v1/modules/remove", post(handlers::remove_module))
        .route("/v1/routes/reload", post(handlers::reload_routes))
        .route("/metrics", get(handlers::metrics))
        .fallback(handlers::no_route)
        .method_not_allowed_fallback(handlers::wrong_method)
        .with_state(served)
        // Last, so that it wraps every route and both fallbacks: nothing, not even
        // "no such route", is answered to a request the guard refuses.
        .layer(from_fn_with_state(Arc::new(guard), guard::admit))
}
