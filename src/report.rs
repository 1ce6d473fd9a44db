//! The edge where a person's or a program's call enters: an [`InvokeCall`] (what the CLI
//! and the HTTP API take) becomes the one `CallRequest` the node carries from then on,
//! and what the call returned becomes the JSON both print. One place, so that the CLI's
//! direct path and the HTTP API give the same answer.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;
use spore_core::value;
use spore_node::{Args, CallRequest, Cancel, Node, NodeError, Placement};

/// A request to run a function, as the CLI and the API take it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// Builds the call's request: the function resolved and the arguments encoded, once.
pub fn request(node: &Node, call: &InvokeCall) -> Result<CallRequest, NodeError> {
    let function = node.function_ref(&call.reference)?;
    let values: Vec<ciborium::Value> = call
        .args
        .iter()
        .map(value::from_json)
        .collect::<Result<_, _>>()
        .map_err(|e| bad_request(format!("an argument is not a spore value: {e}")))?;
    let args = Args::encode(&values).map_err(|e| bad_request(format!("the arguments: {e}")))?;
    let mut request = node.request(function, args);
    if let Some(ms) = call.timeout_ms {
        request.deadline = Instant::now() + Duration::from_millis(ms);
    }
    if let Some(bytes) = call.memory_bytes {
        spore_node::check_memory(bytes).map_err(|e| bad_request(format!("memory_bytes: {e}")))?;
        request.memory_bytes = bytes;
    }
    request.memo = !call.no_memo;
    request.placement = match (&call.on, call.local) {
        (Some(_), true) => {
            return Err(bad_request(
                "a call cannot be both local and pinned to a peer".into(),
            ));
        }
        (Some(peer), false) => Placement::On(peer.clone()),
        (None, true) => Placement::Local,
        (None, false) => Placement::Anywhere,
    };
    Ok(request)
}

fn bad_request(message: String) -> NodeError {
    NodeError::placement(spore_node::ErrorKind::BadRequest, message)
}

/// Runs `call` where placement puts it, stopped when `cancel` is set, and describes the
/// outcome as JSON: `{function, result, memo, effectful, stats, path}`.
pub fn invoke(
    node: &Node,
    call: &InvokeCall,
    cancel: Cancel,
) -> Result<serde_json::Value, NodeError> {
    let called = node.call_cancellable(request(node, call)?, cancel);
    let outcome = called.result?;
    let mut path = serde_json::to_value(called.path.steps()).expect("path steps are JSON");
    if called.path.omitted() > 0 {
        path.as_array_mut()
            .expect("an array")
            .push(json!({ "node": "", "step": format!("… {} more steps", called.path.omitted()), "micros": 0 }));
    }
    Ok(json!({
        "function": outcome.function,
        "result": value::to_json(&outcome.value),
        "memo": outcome.memo,
        "effectful": outcome.effectful,
        "stats": outcome.stats,
        "path": path,
    }))
}
