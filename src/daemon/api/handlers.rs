//! One function per route of docs/api.md. Each runs its node operation on the blocking
//! pool (the node is synchronous) and answers its result as JSON, or the error record.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{Method, Uri};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use spore_core::{ErrorKind, Name};
use spore_node::{AbilityInfo, Believed, ModuleInfo, NameEntry, Node, NodeError, Published};

use super::Served;
use super::error::ApiError;
use super::extract::{JsonBody, ModuleBody, Query};
use crate::housekeeping;
use crate::report::{self, InvokeCall};

type Answer<T> = Result<Json<T>, ApiError>;

pub async fn info(State(served): State<Arc<Served>>) -> Json<Value> {
    let mesh = match served.node.mesh() {
        Some(mesh) => match mesh.certificate() {
            Some(certificate) => {
                let body = certificate.body();
                json!({
                    "key": body.mesh.to_string(),
                    "roles": body.roles,
                    "serves": body.serves,
                    "expires_ms": body.expires_ms,
                    "members_connected": mesh.member_peers().await.len(),
                })
            }
            None => Value::Null,
        },
        None => Value::Null,
    };
    Json(json!({
        "peer_id": served.file.peer_id,
        "listen": served.file.listen,
        "api": served.file.api,
        "pid": served.file.pid,
        "home": served.node.home().root(),
        "mesh": mesh,
        "version": crate::version::VERSION,
    }))
}

#[derive(Deserialize)]
pub struct PublishQuery {
    name: Option<Name>,
}

pub async fn publish(
    State(served): State<Arc<Served>>,
    Query(query): Query<PublishQuery>,
    ModuleBody(module): ModuleBody,
) -> Answer<Published> {
    blocking(&served, move |node| {
        node.publish(&module, query.name.as_ref())
    })
    .await
}

pub async fn invoke(
    State(served): State<Arc<Served>>,
    JsonBody(call): JsonBody<InvokeCall>,
) -> Answer<Value> {
    // A client that hangs up stops the call: the server drops this future when it
    // notices (`server::hung_up`), and with it the guard.
    let cancel = spore_node::Cancel::new();
    let _cancel_on_hang_up = CancelOnDrop(cancel.clone());
    blocking(&served, move |node| report::invoke(node, &call, cancel)).await
}

pub async fn modules(State(served): State<Arc<Served>>) -> Answer<Vec<ModuleInfo>> {
    blocking(&served, Node::modules).await
}

#[derive(Deserialize)]
pub struct InspectQuery {
    reference: String,
}

pub async fn inspect(
    State(served): State<Arc<Served>>,
    Query(query): Query<InspectQuery>,
) -> Answer<ModuleInfo> {
    blocking(&served, move |node| node.inspect(&query.reference)).await
}

pub async fn names(State(served): State<Arc<Served>>) -> Answer<Vec<(Name, NameEntry)>> {
    blocking(&served, Node::names).await
}

/// The mesh names the node believes, with who signed each.
pub async fn mesh_names(State(served): State<Arc<Served>>) -> Answer<Vec<Believed>> {
    blocking(&served, |node| Ok(node.mesh_names())).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishName {
    name: Name,
    /// `None`: the publication removes the name.
    reference: Option<String>,
    /// The name of the home's key that signs.
    key: String,
}

pub async fn publish_name(
    State(served): State<Arc<Served>>,
    JsonBody(body): JsonBody<PublishName>,
) -> Answer<Believed> {
    blocking(&served, move |node| {
        node.publish_name(&body.name, body.reference.as_deref(), &body.key)
    })
    .await
}

#[derive(Deserialize)]
pub struct NameQuery {
    name: Name,
}

pub async fn name_history(
    State(served): State<Arc<Served>>,
    Query(query): Query<NameQuery>,
) -> Answer<Vec<NameEntry>> {
    blocking(&served, move |node| node.name_history(&query.name)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetName {
    name: Name,
    reference: String,
}

pub async fn set_name(
    State(served): State<Arc<Served>>,
    JsonBody(body): JsonBody<SetName>,
) -> Answer<NameEntry> {
    blocking(&served, move |node| {
        node.set_name(&body.name, &body.reference)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveName {
    name: Name,
}

pub async fn remove_name(
    State(served): State<Arc<Served>>,
    JsonBody(body): JsonBody<RemoveName>,
) -> Answer<NameEntry> {
    blocking(&served, move |node| node.remove_name(&body.name)).await
}

#[derive(Serialize)]
pub struct Abilities {
    config: std::path::PathBuf,
    abilities: Vec<AbilityInfo>,
}

pub async fn abilities(State(served): State<Arc<Served>>) -> Answer<Abilities> {
    blocking(&served, |node| {
        Ok(Abilities {
            config: node.config_file().to_owned(),
            abilities: node.abilities(),
        })
    })
    .await
}

pub async fn clear_memo(State(served): State<Arc<Served>>) -> Answer<Value> {
    blocking(&served, |node| Ok(json!({ "cleared": node.clear_memo()? }))).await
}

pub async fn verify(State(served): State<Arc<Served>>) -> Answer<Value> {
    blocking(&served, |node| housekeeping::verify(node, false)).await
}

pub async fn repair(State(served): State<Arc<Served>>) -> Answer<Value> {
    blocking(&served, |node| housekeeping::verify(node, true)).await
}

pub async fn gc(State(served): State<Arc<Served>>) -> Answer<Value> {
    blocking(&served, housekeeping::gc).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveModule {
    reference: String,
    #[serde(default)]
    force: bool,
}

pub async fn remove_module(
    State(served): State<Arc<Served>>,
    JsonBody(body): JsonBody<RemoveModule>,
) -> Answer<Value> {
    blocking(&served, move |node| {
        housekeeping::remove(node, &body.reference, body.force)
    })
    .await
}

/// A path that is no route of the API.
pub async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        format!(
            "`{method} {}` is not a route of spore's API (docs/api.md)",
            uri.path()
        ),
    )
}

/// A route asked with a method it does not take; axum adds the `Allow` header.
pub async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::bad_request(format!(
        "{} does not take {method}; the `allow` header says what it takes (docs/api.md)",
        uri.path()
    ))
}

/// Runs a node operation off the async threads.
async fn blocking<T, F>(served: &Served, operation: F) -> Answer<T>
where
    T: Send + 'static,
    F: FnOnce(&Node) -> Result<T, NodeError> + Send + 'static,
{
    let node = served.node.clone();
    // What a client mistyped is answered with what it likely meant.
    let run = move || operation(&node).map_err(|error| node.suggest(error));
    match tokio::task::spawn_blocking(run).await {
        Ok(answer) => Ok(Json(answer?)),
        Err(panic) => Err(ApiError::new(
            ErrorKind::Internal,
            format!("the operation failed: {panic}"),
        )),
    }
}

/// What the node is doing now (`spore node status`).
pub async fn status(State(served): State<Arc<Served>>) -> Json<super::super::status::NodeStatus> {
    Json(super::super::status::of(&served.node, served.file.peer_id.clone()).await)
}

/// The modules the node is fetching from the mesh now, the oldest first: what the
/// CLI's progress bars poll while a call waits.
pub async fn fetches(
    State(served): State<Arc<Served>>,
) -> Json<Vec<super::super::status::FetchStatus>> {
    Json(super::super::status::fetches(&served.node))
}

/// The node's metrics in the OpenMetrics text format, which Prometheus reads.
pub async fn metrics(State(served): State<Arc<Served>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let metrics = served.node.metrics();
    metrics.set_provider_restarts(served.node.provider_restarts());
    if let Some(mesh) = served.node.mesh() {
        let reachability = mesh.reachability();
        metrics.set_hole_punches(reachability.holes_punched, reachability.hole_punches_failed);
        metrics.set_peers(
            mesh.connected_peers().await.len(),
            mesh.member_peers().await.len(),
        );
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
        .into_response()
}

/// Reads `config.toml` again and serves its `[[routes]]` from the next request on
/// (`spore routes add|rm`); the rest of the configuration takes a restart.
pub async fn reload_routes(State(served): State<Arc<Served>>) -> Answer<Value> {
    let home = served.node.home().root().to_owned();
    let config = tokio::task::spawn_blocking(move || spore_node::NodeConfig::load_or_create(&home))
        .await
        .map_err(|panic| {
            ApiError::new(
                ErrorKind::Internal,
                format!("reading the configuration failed: {panic}"),
            )
        })?
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let count = config.routes.iter().count();
    match &served.gateway {
        Some(gateway) => {
            gateway.replace_routes(config.routes);
            tracing::info!(routes = count, "HTTP routes reloaded");
            Ok(Json(json!({ "serving": true, "routes": count })))
        }
        None => Ok(Json(json!({ "serving": false, "routes": count }))),
    }
}

/// Cancels a call when the request serving it is dropped before it answers.
struct CancelOnDrop(spore_node::Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
