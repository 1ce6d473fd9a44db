//! Where a command runs: on the home directly, or through the local HTTP API of a node
//! that is running on the home (it holds the home's lock). Both give the same results.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::json;
use spore_core::Name;
use spore_node::{AbilityInfo, Believed, ModuleInfo, NameEntry, Node, NodeError, Published};
use ureq::http::header::AUTHORIZATION;

use crate::api_token::ApiToken;
use crate::housekeeping;
use crate::report::{self, InvokeCall};

/// A failure reported by a running node's API, with the kind it classified it as.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    pub kind: spore_node::ErrorKind,
    pub message: String,
    pub value: Option<serde_json::Value>,
    /// The names the node suggests for one it does not know (`spec/errors.md`).
    pub suggestions: Vec<String>,
}

pub enum Backend {
    Local(Arc<Node>),
    Remote(Remote),
}

/// A client of a running node's API.
pub struct Remote {
    base: String,
    agent: ureq::Agent,
    /// The `Authorization` header every request carries (docs/api.md, "Authentication").
    authorization: String,
}

/// What a running node writes into its home, so that the CLI can find it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct NodeFile {
    pub pid: u32,
    pub api: String,
    /// Where the HTTP routes are served, when they are (`--http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// Where `/metrics` is served without the token, when it is (`--metrics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    pub peer_id: String,
    pub listen: Vec<String>,
}

pub const NODE_FILE: &str = "node.json";

impl Backend {
    /// A running node's API when one serves `home`, else the home itself.
    pub fn for_home(home: &spore_node::Home) -> anyhow::Result<Backend> {
        if let Some(remote) = Remote::find(home.root())? {
            tracing::debug!(api = %remote.base, "using the running node");
            return Ok(Backend::Remote(remote));
        }
        // A command runs one call at a time: its instance pool is sized for that.
        let options = spore_node::NodeOptions {
            compiler: super::compiler(),
            role: spore_node::Role::Command,
        };
        Ok(Backend::Local(Node::open_with(home.clone(), options)?))
    }

    pub fn publish(&self, bytes: &[u8], name: Option<&Name>) -> anyhow::Result<Published> {
        match self {
            Backend::Local(node) => local(node, node.publish(bytes, name)),
            Backend::Remote(remote) => {
                let mut request = remote.request_post("/v1/publish");
                if let Some(name) = name {
                    request = request.query("name", name.as_str());
                }
                remote.read(request.content_type("application/wasm").send(bytes))
            }
        }
    }

    pub fn invoke(&self, call: &InvokeCall) -> anyhow::Result<serde_json::Value> {
        match self {
            Backend::Local(node) => local(
                node,
                report::invoke(node, call, spore_node::Cancel::never()),
            ),
            Backend::Remote(remote) => remote.post("/v1/invoke", call),
        }
    }

    pub fn modules(&self) -> anyhow::Result<Vec<ModuleInfo>> {
        match self {
            Backend::Local(node) => local(node, node.modules()),
            Backend::Remote(remote) => remote.get("/v1/modules", &[]),
        }
    }

    pub fn inspect(&self, reference: &str) -> anyhow::Result<ModuleInfo> {
        match self {
            Backend::Local(node) => local(node, node.inspect(reference)),
            Backend::Remote(remote) => remote.get("/v1/inspect", &[("reference", reference)]),
        }
    }

    pub fn set_name(&self, name: &Name, reference: &str) -> anyhow::Result<NameEntry> {
        match self {
            Backend::Local(node) => local(node, node.set_name(name, reference)),
            Backend::Remote(remote) => remote.post(
                "/v1/names/set",
                &json!({ "name": name, "reference": reference }),
            ),
        }
    }

    pub fn remove_name(&self, name: &Name) -> anyhow::Result<NameEntry> {
        match self {
            Backend::Local(node) => local(node, node.remove_name(name)),
            Backend::Remote(remote) => remote.post("/v1/names/remove", &json!({ "name": name })),
        }
    }

    pub fn names(&self) -> anyhow::Result<Vec<(Name, NameEntry)>> {
        match self {
            Backend::Local(node) => local(node, node.names()),
            Backend::Remote(remote) => remote.get("/v1/names", &[]),
        }
    }

    /// The mesh names the node believes.
    pub fn mesh_names(&self) -> anyhow::Result<Vec<Believed>> {
        match self {
            Backend::Local(node) => Ok(node.mesh_names()),
            Backend::Remote(remote) => remote.get("/v1/names/mesh", &[]),
        }
    }

    /// Signs and spreads a publication of `name` (`Node::publish_name`).
    pub fn publish_name(
        &self,
        name: &Name,
        reference: Option<&str>,
        key: &str,
    ) -> anyhow::Result<Believed> {
        match self {
            Backend::Local(node) => local(node, node.publish_name(name, reference, key)),
            Backend::Remote(remote) => remote.post(
                "/v1/names/publish",
                &json!({ "name": name, "reference": reference, "key": key }),
            ),
        }
    }

    pub fn name_history(&self, name: &Name) -> anyhow::Result<Vec<NameEntry>> {
        match self {
            Backend::Local(node) => local(node, node.name_history(name)),
            Backend::Remote(remote) => remote.get("/v1/names/history", &[("name", name.as_str())]),
        }
    }

    /// The configuration file in force and every known ability.
    pub fn abilities(&self) -> anyhow::Result<(String, Vec<AbilityInfo>)> {
        match self {
            Backend::Local(node) => {
                Ok((node.config_file().display().to_string(), node.abilities()))
            }
            Backend::Remote(remote) => {
                let body: serde_json::Value = remote.get("/v1/abilities", &[])?;
                Ok((
                    body["config"].as_str().unwrap_or_default().to_owned(),
                    serde_json::from_value(body["abilities"].clone())?,
                ))
            }
        }
    }

    pub fn clear_memo(&self) -> anyhow::Result<usize> {
        match self {
            Backend::Local(node) => local(node, node.clear_memo()),
            Backend::Remote(remote) => {
                let body: serde_json::Value = remote.post("/v1/memo/clear", &json!({}))?;
                Ok(body["cleared"].as_u64().unwrap_or(0) as usize)
            }
        }
    }

    /// Checks every record (with `repair`, drops what is damaged); the answer of
    /// `crate::housekeeping::verify`.
    pub fn verify(&self, repair: bool) -> anyhow::Result<serde_json::Value> {
        match self {
            Backend::Local(node) => local(node, housekeeping::verify(node, repair)),
            Backend::Remote(remote) if repair => remote.post("/v1/repair", &json!({})),
            Backend::Remote(remote) => remote.get("/v1/verify", &[]),
        }
    }

    pub fn gc(&self) -> anyhow::Result<serde_json::Value> {
        match self {
            Backend::Local(node) => local(node, housekeeping::gc(node)),
            Backend::Remote(remote) => remote.post("/v1/gc", &json!({})),
        }
    }

    pub fn remove_module(&self, reference: &str, force: bool) -> anyhow::Result<serde_json::Value> {
        match self {
            Backend::Local(node) => local(node, housekeeping::remove(node, reference, force)),
            Backend::Remote(remote) => remote.post(
                "/v1/modules/remove",
                &json!({ "reference": reference, "force": force }),
            ),
        }
    }
}

/// What a node of this home answered, a mistyped name with the names likely meant, as
/// the API answers it (`Node::suggest`).
fn local<T>(node: &Node, answer: Result<T, NodeError>) -> anyhow::Result<T> {
    answer.map_err(|error| node.suggest(error).into())
}

impl Remote {
    /// The API of the node recorded in `home`, if it answers; an error if it answers but
    /// will not serve this client: its token is unreadable, or not the one it takes.
    pub fn find(home: &Path) -> anyhow::Result<Option<Remote>> {
        let Some(file) = std::fs::read_to_string(home.join(NODE_FILE))
            .ok()
            .and_then(|text| serde_json::from_str::<NodeFile>(&text).ok())
        else {
            return Ok(None);
        };
        // The token is needed only if the node answers: one that died leaves node.json
        // behind, and a home whose node is gone is used directly whatever its token.
        let token = ApiToken::read(home);
        let remote = Remote {
            authorization: token
                .as_ref()
                .map(ApiToken::authorization)
                .unwrap_or_default(),
            ..Remote::unauthenticated(&file.api)
        };
        let probe = remote
            .request_get("/v1/info")
            .config()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .call();
        let Ok(mut answer) = probe else {
            return Ok(None);
        };
        token?;
        match answer.status().as_u16() {
            200..=299 => Ok(Some(remote)),
            // The node refused this client (its token, or the address): say why, as the
            // node put it, rather than fail later on the home it holds.
            401 | 403 => {
                let text = answer.body_mut().read_to_string().unwrap_or_default();
                Err(Remote::refusal(text).into())
            }
            _ => Ok(None),
        }
    }

    /// The API of the node running on `home`, for the commands that only a running node
    /// can answer (`spore node info`, `spore node status`).
    pub fn running(home: &spore_node::Home) -> anyhow::Result<Remote> {
        let text =
            std::fs::read_to_string(home.root().join(NODE_FILE)).map_err(|_| RemoteError {
                kind: spore_node::ErrorKind::NotFound,
                message: format!(
                    "no node is running on {}; start one with `spore node run`",
                    home.root().display()
                ),
                value: None,
                suggestions: Vec::new(),
            })?;
        let file: NodeFile = serde_json::from_str(&text)?;
        Ok(Remote::new(&file.api, ApiToken::read(home.root())?))
    }

    /// The fetches the node has in flight (`GET /v1/fetches`). Asked with a short
    /// timeout: the progress bars that poll it must not hang on a node that does.
    pub fn fetches(&self) -> anyhow::Result<Vec<crate::daemon::FetchStatus>> {
        let request = self
            .request_get("/v1/fetches")
            .config()
            .timeout_global(Some(Duration::from_secs(2)))
            .build();
        self.read(request.call())
    }

    /// A client of the API at `api` that presents `token`.
    pub fn new(api: &str, token: ApiToken) -> Remote {
        Remote {
            authorization: token.authorization(),
            ..Remote::unauthenticated(api)
        }
    }

    fn unauthenticated(api: &str) -> Remote {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            // Invocations carry their own deadlines; this only bounds a node that hangs.
            .timeout_global(Some(Duration::from_secs(600)))
            .build();
        Remote {
            base: format!("http://{api}"),
            agent: ureq::Agent::new_with_config(config),
            authorization: String::new(),
        }
    }

    /// A GET of `path`, with the token.
    fn request_get(&self, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.agent
            .get(format!("{}{path}", self.base))
            .header(AUTHORIZATION, &self.authorization)
    }

    /// A POST to `path`, with the token.
    fn request_post(&self, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.agent
            .post(format!("{}{path}", self.base))
            .header(AUTHORIZATION, &self.authorization)
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<T> {
        let mut request = self.request_get(path);
        for (key, value) in query {
            request = request.query(*key, *value);
        }
        self.read(request.call())
    }

    pub fn post<T: DeserializeOwned, B: serde::Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let body = serde_json::to_vec(body)?;
        self.read(
            self.request_post(path)
                .content_type("application/json")
                .send(&body[..]),
        )
    }

    fn read<T: DeserializeOwned>(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<T> {
        let mut response = response.map_err(|e| RemoteError {
            kind: spore_node::ErrorKind::Unavailable,
            message: format!("the node's API at {} did not answer: {e}", self.base),
            value: None,
            suggestions: Vec::new(),
        })?;
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_string()?;
        if status.is_success() {
            return Ok(serde_json::from_str(&text)?);
        }
        Err(Remote::refusal(text).into())
    }

    /// The error an answer that is not a success reports, from its error record.
    fn refusal(text: String) -> RemoteError {
        let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        RemoteError {
            kind: spore_node::ErrorKind::from_name(
                body["error"]["kind"].as_str().unwrap_or_default(),
            ),
            message: body["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or(text),
            value: body["error"].get("value").cloned(),
            suggestions: serde_json::from_value(body["error"]["suggestions"].clone())
                .unwrap_or_default(),
        }
    }
}
