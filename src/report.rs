//! What an invocation returns to a person or a program, built in one place so that the
//! CLI's direct path and the HTTP API give the same answer.

use serde::{Deserialize, Serialize};
use serde_json::json;
use spore_core::value;
use spore_node::{InvokeOptions, Limits, Node, NodeError};

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
}

/// Runs `call` on `node` and describes the outcome as JSON:
/// `{function, result, memo, effectful, stats}`.
pub fn invoke(node: &Node, call: &InvokeCall) -> Result<serde_json::Value, NodeError> {
    let function = node.resolve(&call.reference)?;
    let defaults = node.default_limits();
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
    let args: Vec<ciborium::Value> = call.args.iter().map(value::from_json).collect();
    let outcome = node.invoke(&function, &args, &options)?;
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
    }))
}
