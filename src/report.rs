//! What an invocation returns to a person or a program, built in one place so that the
//! CLI's direct path and the HTTP API give the same answer.

use serde::{Deserialize, Serialize};
use serde_json::json;
use spore_core::value;
use spore_node::{CallEnv, InvokeOptions, Limits, Node, NodeError, PeerId, Placement};

/// A request to run a function, as the CLI and the API take it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InvokeCall {
    /// A name, a hash or unique prefix, optionally `:function`.
    pub reference: String,
    /// The arguments, as JSON values.
    #[serde(default)]
    pub args: Vec<serde_json::Value>,
    pub timeout_ms: Option<u64>,
    pub memory_bytes: Option<u64>,
    #[serde(default)]
    pub no_memo: bool,
    /// Never forward the call to another node.
    #[serde(default)]
    pub local: bool,
    /// Run the call on this peer.
    pub on: Option<String>,
}

/// Runs `call` where placement puts it and describes the outcome as JSON:
/// `{function, result, memo, effectful, stats, path}`.
pub fn invoke(node: &Node, call: &InvokeCall) -> Result<serde_json::Value, NodeError> {
    let defaults = node.default_limits();
    let deadline = call
        .timeout_ms
        .map(std::time::Duration::from_millis)
        .unwrap_or(defaults.deadline);
    let mut path = Vec::new();
    let function = node.resolve_anywhere(
        &call.reference,
        std::time::Instant::now() + deadline,
        &mut path,
    )?;
    let placement = Placement {
        local_only: call.local,
        on: match &call.on {
            None => None,
            Some(peer) => Some(peer.parse::<PeerId>().map_err(|e| NodeError::Mesh {
                kind: spore_node::ErrorKind::BadRequest,
                message: format!("`{peer}` is not a peer id: {e}"),
            })?),
        },
        hops: 0,
    };
    let options = InvokeOptions {
        limits: Limits {
            deadline: call
                .timeout_ms
                .map(std::time::Duration::from_millis)
                .unwrap_or(defaults.deadline),
            memory_bytes: call.memory_bytes.unwrap_or(defaults.memory_bytes),
        },
        memo: !call.no_memo,
    };
    let args: Vec<ciborium::Value> = call
        .args
        .iter()
        .map(value::from_json)
        .collect::<Result<_, _>>()
        .map_err(|e| NodeError::Mesh {
            kind: spore_node::ErrorKind::BadRequest,
            message: format!("an argument is not a spore value: {e}"),
        })?;
    let env = CallEnv {
        bindings: node.bindings().clone(),
        depth: 0,
    };
    let outcome = node.invoke_placed(&function, &args, &options, &placement, &env, &mut path)?;
    let stats = outcome.stats.map(|stats| {
        json!({
            "load": stats.load_source,
            "load_us": stats.load_time.as_micros() as u64,
            "instantiate_us": stats.instantiate_time.as_micros() as u64,
            "run_us": stats.run_time.as_micros() as u64,
            "memory_bytes": stats.memory_bytes,
        })
    });
    Ok(json!({
        "function": outcome.function,
        "result": value::to_json(&outcome.value),
        "memo": outcome.memo,
        "effectful": outcome.effectful,
        "stats": stats,
        "path": path,
    }))
}
