//! Where a command runs: on the home directly, or through the local HTTP API of a node
//! that is running on the home (it holds the home's lock). Both give the same results.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::json;
use spore_core::Name;
use spore_node::{AbilityInfo, ModuleInfo, NameEntry, Node, Published};

use crate::housekeeping;
use crate::report::{self, InvokeCall};

/// A failure reported by a running node's API, with the kind it classified it as.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    pub kind: spore_node::ErrorKind,
    pub message: String,
    pub value: Option<serde_json::Value>,
}

pub enum Backend {
    Local(Arc<Node>),
    Remote(Remote),
}

/// A client of a running node's API.
pub struct Remote {
    base: String,
    agent: ureq::Agent,
}

/// What a running node writes into its home, so that the CLI can find it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct NodeFile {
    pub pid: u32,
    pub api: String,
    pub peer_id: String,
    pub listen: Vec<String>,
}

pub const NODE_FILE: &str = "node.json";

impl Backend {
    /// A running node's API when one serves `home`, else the home itself.
    pub fn for_home(home: &spore_node::Home) -> anyhow::Result<Backend> {
        if let Some(remote) = Remote::find(home.root()) {
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
            Backend::Local(node) => Ok(node.publish(bytes, name)?),
            Backend::Remote(remote) => {
                let mut request = remote.agent.post(format!("{}/v1/publish", remote.base));
                if let Some(name) = name {
                    request = request.query("name", name.as_str());
                }
                remote.read(request.content_type("application/wasm").send(bytes))
            }
        }
    }

    pub fn invoke(&self, call: &InvokeCall) -> anyhow::Result<serde_json::Value> {
        match self {
            Backend::Local(node) => Ok(report::invoke(node, call, spore_node::Cancel::never())?),
            Backend::Remote(remote) => remote.post("/v1/invoke", call),
        }
    }

    pub fn modules(&self) -> anyhow::Result<Vec<ModuleInfo>> {
        match self {
            Backend::Local(node) => Ok(node.modules()?),
            Backend::Remote(remote) => remote.get("/v1/modules", &[]),
        }
    }

    pub fn inspect(&self, reference: &str) -> anyhow::Result<ModuleInfo> {
        match self {
            Backend::Local(node) => Ok(node.inspect(reference)?),
            Backend::Remote(remote) => remote.get("/v1/inspect", &[("reference", reference)]),
        }
    }

    pub fn set_name(&self, name: &Name, reference: &str) -> anyhow::Result<NameEntry> {
        match self {
            Backend::Local(node) => Ok(node.set_name(name, reference)?),
            Backend::Remote(remote) => remote.post(
                "/v1/names/set",
                &json!({ "name": name, "reference": reference }),
            ),
        }
    }

    pub fn remove_name(&self, name: &Name) -> anyhow::Result<NameEntry> {
        match self {
            Backend::Local(node) => Ok(node.remove_name(name)?),
            Backend::Remote(remote) => remote.post("/v1/names/remove", &json!({ "name": name })),
        }
    }

    pub fn names(&self) -> anyhow::Result<Vec<(Name, NameEntry)>> {
        match self {
            Backend::Local(node) => Ok(node.names()?),
            Backend::Remote(remote) => remote.get("/v1/names", &[]),
        }
    }

    pub fn name_history(&self, name: &Name) -> anyhow::Result<Vec<NameEntry>> {
        match self {
            Backend::Local(node) => Ok(node.name_history(name)?),
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
            Backend::Local(node) => Ok(node.clear_memo()?),
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
            Backend::Local(node) => Ok(housekeeping::verify(node, repair)?),
            Backend::Remote(remote) if repair => remote.post("/v1/repair", &json!({})),
            Backend::Remote(remote) => remote.get("/v1/verify", &[]),
        }
    }

    pub fn gc(&self) -> anyhow::Result<serde_json::Value> {
        match self {
            Backend::Local(node) => Ok(housekeeping::gc(node)?),
            Backend::Remote(remote) => remote.post("/v1/gc", &json!({})),
        }
    }

    pub fn remove_module(&self, reference: &str, force: bool) -> anyhow::Result<serde_json::Value> {
        match self {
            Backend::Local(node) => Ok(housekeeping::remove(node, reference, force)?),
            Backend::Remote(remote) => remote.post(
                "/v1/modules/remove",
                &json!({ "reference": reference, "force": force }),
            ),
        }
    }
}

impl Remote {
    /// The API of the node recorded in `home`, if it answers.
    fn find(home: &Path) -> Option<Remote> {
        let text = std::fs::read_to_string(home.join(NODE_FILE)).ok()?;
        let file: NodeFile = serde_json::from_str(&text).ok()?;
        let remote = Remote::new(&file.api);
        // A node that died leaves its file behind; only a node that answers counts.
        let probe = remote
            .agent
            .get(format!("{}/v1/info", remote.base))
            .config()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .call();
        probe
            .ok()
            .filter(|r| r.status().is_success())
            .map(|_| remote)
    }

    pub fn new(api: &str) -> Remote {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            // Invocations carry their own deadlines; this only bounds a node that hangs.
            .timeout_global(Some(Duration::from_secs(600)))
            .build();
        Remote {
            base: format!("http://{api}"),
            agent: ureq::Agent::new_with_config(config),
        }
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<T> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
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
            self.agent
                .post(format!("{}{path}", self.base))
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
        let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        Err(RemoteError {
            kind: spore_node::ErrorKind::from_name(
                body["error"]["kind"].as_str().unwrap_or_default(),
            ),
            message: body["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or(text),
            value: body["error"].get("value").cloned(),
        }
        .into())
    }
}
