//! The `config.toml` a fresh home gets, printed from the defaults.

use std::time::Duration;

use super::defaults as d;

/// What a fresh home's `config.toml` says: every default written out, and the bindings
/// every node has (plus `kv`), with commented examples of the others.
pub fn default_config() -> String {
    let everywhere: String = spore_abilities::BUILTINS
        .iter()
        .filter(|builtin| builtin.everywhere)
        .map(|builtin| format!("[abilities.{0}]\nprovider = \"{0}\"\n\n", builtin.name))
        .collect();
    format!(
        r#"# spore node configuration. Every key is documented in docs/configuration.md.

[limits]
timeout = "{timeout}"{pad_t}# default deadline of a call, fetching and compiling included
memory = "{memory}"{pad_m}# default linear-memory cap of a call (at most {max_memory})
call_depth = {call_depth}{pad_d}# how deep `call` may nest

# Calls that peers forward here get at most these, whatever they ask for.
[limits.forwarded]
timeout = "{fwd_timeout}"
memory = "{fwd_memory}"
args = "{fwd_args}"

# What `kv` may store, through any binding.
[limits.kv]
max_namespace_bytes = "{kv_namespace_max}"  # what one namespace may hold (keys and values)
max_call_bytes = "{kv_call_max}"        # what one call may write

[memo]
enabled = {memo}              # cache results of pure functions
max_result_bytes = "{memo_max}"   # larger results are not cached
max_bytes = "{memo_total}"         # the memo's size; the oldest results go first beyond it

# Values for the `config` ability.
[config]

# Bindings: each [abilities.NAME] binds ability NAME to a provider on this node.
# Functions needing an ability that is not bound here are refused before they start.
{everywhere}[abilities.kv]
provider = "kv"
namespace = "{kv_namespace}"
max_value_bytes = "{kv_max}"

# Outbound HTTP is bound only when hosts are allowed:
# [abilities.http]
# provider = "http"
# allow = ["example.org", "127.0.0.1:8080"]
# timeout = "{http_timeout}"
# max_response_bytes = "{http_max}"

# A custom ability served by a provider process:
# [abilities.sensor]
# provider = "process"
# operations = ["read"]
# command = ["python3", "examples/sensor-provider/sensor.py"]
"#,
        timeout = duration(d::TIMEOUT),
        pad_t = pad(&duration(d::TIMEOUT), 8),
        memory = crate::format_size(d::MEMORY),
        pad_m = pad(&crate::format_size(d::MEMORY), 9),
        max_memory = crate::format_size(spore_runtime::MAX_MEMORY_BYTES),
        call_depth = d::CALL_DEPTH,
        pad_d = pad(&d::CALL_DEPTH.to_string(), 9),
        fwd_timeout = duration(d::FORWARDED_TIMEOUT),
        fwd_memory = crate::format_size(d::FORWARDED_MEMORY),
        fwd_args = crate::format_size(d::FORWARDED_ARGS),
        memo = d::MEMO,
        memo_max = crate::format_size(d::MEMO_MAX_RESULT),
        memo_total = crate::format_size(d::MEMO_MAX),
        kv_namespace_max = crate::format_size(d::KV_MAX_NAMESPACE),
        kv_call_max = crate::format_size(d::KV_MAX_CALL),
        kv_namespace = d::KV_NAMESPACE,
        kv_max = crate::format_size(d::KV_MAX_VALUE),
        http_timeout = duration(d::HTTP_TIMEOUT),
        http_max = crate::format_size(d::HTTP_MAX_RESPONSE),
    )
}

fn duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// Spaces that line the comments up after a value `width` characters wide at most.
fn pad(value: &str, width: usize) -> String {
    " ".repeat(width.saturating_sub(value.len()).max(1))
}
