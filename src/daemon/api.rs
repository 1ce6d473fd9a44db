//! The local HTTP API (docs/api.md): what the CLI uses when a node runs on its home.
//! Every handler runs the node operation on the blocking pool: the node is synchronous.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use spore_core::Name;
use spore_node::{Node, NodeError};

use crate::cli::backend::NodeFile;
use crate::kind;
use crate::report::{self, InvokeCall};

pub struct State {
    pub node: Arc<Node>,
    pub file: NodeFile,
}

type Shared = Arc<State>;

pub fn router(state: Shared) -> Router {
    let route = |state: &Shared| state.clone();
    Router::new()
        .route(
            "/v1/info",
            get({
                let s = route(&state);
                move || async move { info(&s) }
            }),
        )
        .route(
            "/v1/publish",
            post({
                let s = route(&state);
                move |Query(q): Query<HashMap<String, String>>, body: Bytes| async move {
                    blocking(&s, move |node| {
                        let name = q
                            .get("name")
                            .map(|n| n.parse::<Name>())
                            .transpose()
                            .map_err(NodeError::from)?;
                        Ok(json!(node.publish(&body, name.as_ref())?))
                    })
                    .await
                }
            }),
        )
        .route(
            "/v1/invoke",
            post({
                let s = route(&state);
                move |Json(call): Json<InvokeCall>| async move {
                    // A client that hangs up stops the call: hyper drops this future, and
                    // with it the guard.
                    let cancel = spore_node::Cancel::new();
                    let _cancel_on_hang_up = CancelOnDrop(cancel.clone());
                    blocking(&s, move |node| report::invoke(node, &call, cancel)).await
                }
            }),
        )
        .route(
            "/v1/modules",
            get({
                let s = route(&state);
                move || async move { blocking(&s, |node| Ok(json!(node.modules()?))).await }
            }),
        )
        .route(
            "/v1/inspect",
            get({
                let s = route(&state);
                move |Query(q): Query<HashMap<String, String>>| async move {
                    blocking(&s, move |node| {
                        Ok(json!(
                            node.inspect(q.get("reference").map_or("", String::as_str))?
                        ))
                    })
                    .await
                }
            }),
        )
        .route(
            "/v1/names",
            get({
                let s = route(&state);
                move || async move { blocking(&s, |node| Ok(json!(node.names()?))).await }
            }),
        )
        .route(
            "/v1/names/history",
            get({
                let s = route(&state);
                move |Query(q): Query<HashMap<String, String>>| async move {
                    blocking(&s, move |node| {
                        let name: Name = q.get("name").map_or("", String::as_str).parse()?;
                        Ok(json!(node.name_history(&name)?))
                    })
                    .await
                }
            }),
        )
        .route(
            "/v1/names/set",
            post({
                let s = route(&state);
                move |Json(body): Json<serde_json::Value>| async move {
                    blocking(&s, move |node| {
                        let name: Name = body["name"].as_str().unwrap_or_default().parse()?;
                        Ok(json!(node.set_name(
                            &name,
                            body["reference"].as_str().unwrap_or_default()
                        )?))
                    })
                    .await
                }
            }),
        )
        .route(
            "/v1/names/remove",
            post({
                let s = route(&state);
                move |Json(body): Json<serde_json::Value>| async move {
                    blocking(&s, move |node| {
                        let name: Name = body["name"].as_str().unwrap_or_default().parse()?;
                        Ok(json!(node.remove_name(&name)?))
                    })
                    .await
                }
            }),
        )
        .route(
            "/v1/abilities",
            get({
                let s = route(&state);
                move || async move {
                    blocking(&s, |node| {
                        Ok(json!({ "config": node.config_file(), "abilities": node.abilities() }))
                    })
                    .await
                }
            }),
        )
        .route(
            "/v1/memo/clear",
            post({
                let s = route(&state);
                move || async move {
                    blocking(&s, |node| Ok(json!({ "cleared": node.clear_memo()? }))).await
                }
            }),
        )
        .route(
            "/v1/verify",
            get({
                let s = route(&state);
                move || async move {
                    blocking(&s, |node| {
                        let (checked, failures) = node.verify()?;
                        let corrupt: Vec<_> = failures
                            .iter()
                            .map(|(h, e)| json!({ "hash": h, "error": e.to_string() }))
                            .collect();
                        Ok(json!({ "checked": checked, "corrupt": corrupt }))
                    })
                    .await
                }
            }),
        )
        // Modules of any size may be published; invocations carry their own limits.
        .layer(DefaultBodyLimit::max(512 << 20))
}

fn info(state: &State) -> Response {
    Json(json!({
        "peer_id": state.file.peer_id,
        "listen": state.file.listen,
        "api": state.file.api,
        "pid": state.file.pid,
        "home": state.node.home().root(),
    }))
    .into_response()
}

/// Runs a node operation off the async threads and turns its error into the API's
/// error body with the status of its kind.
async fn blocking<F>(state: &Shared, operation: F) -> Response
where
    F: FnOnce(&Node) -> Result<serde_json::Value, NodeError> + Send + 'static,
{
    let node = state.node.clone();
    match tokio::task::spawn_blocking(move || operation(&node)).await {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(error)) => error_response(&error),
        Err(panic) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": { "kind": "internal", "message": format!("the operation failed: {panic}") } }))).into_response(),
    }
}

fn error_response(error: &NodeError) -> Response {
    let kind = error.kind();
    let mut body = json!({ "error": { "kind": kind, "message": error.to_string() } });
    if let Some(value) = kind::guest_value(error) {
        body["error"]["value"] = value;
    }
    let status =
        StatusCode::from_u16(kind::http_status(kind)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

/// Cancels a call when the request serving it is dropped before it answers.
struct CancelOnDrop(spore_node::Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
