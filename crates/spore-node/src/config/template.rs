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
memory = "{memory}"{pad_m}# default linear-memory cap of a call (at most max_memory)
max_memory = "{max_memory}"{pad_x}# the most any call may have here (at most {memory_ceiling});
                        # each instance slot reserves this much address space
instances = {instances}{pad_i}# instances a running node may have at once
call_depth = {call_depth}{pad_d}# how deep `call` may nest

# Calls that peers forward here get at most these, whatever they ask for.
[limits.forwarded]
timeout = "{fwd_timeout}"
memory = "{fwd_memory}"
args = "{fwd_args}"
per_peer_calls = {fwd_peer_calls}{pad_pc}# running here at once, per peer
per_peer_calls_per_second = {fwd_peer_rate}
per_peer_module_bytes = "{fwd_peer_modules}"{pad_pm}# fetched and kept to run one peer's calls
per_peer_log_bytes = "{fwd_peer_log}"{pad_pl}# log lines one peer's calls write, per minute

# What a module may be, checked when it is published or fetched, before it is compiled.
[limits.module]
max_bytes = "{module_bytes}"
max_custom_bytes = "{module_custom}"{pad_c}# names, debug information
max_functions = {module_functions}
max_exports = {module_exports}
max_imports = {module_imports}
max_function_bytes = "{module_function}"{pad_f}# any one function's body
max_locals = {module_locals}{pad_l}# in any one function
max_br_table_targets = {module_br}{pad_b}# in any one br_table

# What compiling one module may cost; a compile over either is stopped, the module refused.
[limits.compile]
timeout = "{compile_timeout}"
memory = "{compile_memory}"{pad_cm}# the compiler process's address space
tiered = {compile_tiered}{pad_ct}# first calls run Winch's quick code while Cranelift compiles

# What `kv` may store, through any binding.
[limits.kv]
max_namespace_bytes = "{kv_namespace_max}"  # what one namespace may hold (keys and values)
max_call_bytes = "{kv_call_max}"        # what one call may write

[memo]
enabled = {memo}              # cache results of pure functions
max_result_bytes = "{memo_max}"   # larger results are not cached
max_bytes = "{memo_total}"         # the memo's size; the oldest results go first beyond it

# Calls needing abilities bound elsewhere go to peers that serve them.
[placement]
cache_ttl = "{placement_ttl}"            # reuse the peers found serving abilities this long ("0s": never)

# Values for the `config` ability.
[config]

# Bindings: each [abilities.NAME] binds ability NAME to a provider on this node.
# Functions needing an ability that is not bound here are refused before they start.
# A call a peer forwards here may use a binding only if its `callers` admit the peer:
# callers = ["*"] (every member of the mesh), ["role:cloud"], ["peer:12D3KooW..."].
# None do by default; `call` is always allowed, and holds what it calls to the same.
# publishers = ["ed25519:..."] also requires the code to be published, signed, by one
# of those keys (`spore names publish`, `spore publish --sign`).
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

# Mesh names this node believes, by name pattern (a name, "prefix.*" or "*"), from the
# publishers' keys listed (`spore key ls` on the publisher's home). None by default.
# [trust.names]
# "billing.*" = ["ed25519:..."]
"#,
        timeout = duration(d::TIMEOUT),
        pad_t = pad(&duration(d::TIMEOUT), 8),
        memory = crate::format_size(d::MEMORY),
        pad_m = pad(&crate::format_size(d::MEMORY), 9),
        max_memory = crate::format_size(d::MAX_MEMORY),
        pad_x = pad(&crate::format_size(d::MAX_MEMORY), 9),
        memory_ceiling = crate::format_size(spore_runtime::MAX_MEMORY_BYTES),
        instances = d::INSTANCES,
        pad_i = pad(&d::INSTANCES.to_string(), 10),
        call_depth = d::CALL_DEPTH,
        pad_d = pad(&d::CALL_DEPTH.to_string(), 9),
        fwd_timeout = duration(d::FORWARDED_TIMEOUT),
        fwd_memory = crate::format_size(d::FORWARDED_MEMORY),
        fwd_args = crate::format_size(d::FORWARDED_ARGS),
        fwd_peer_calls = d::PER_PEER_CALLS,
        pad_pc = pad(&d::PER_PEER_CALLS.to_string(), 10),
        fwd_peer_rate = d::PER_PEER_CALLS_PER_SECOND,
        fwd_peer_modules = crate::format_size(d::PER_PEER_MODULE_BYTES),
        pad_pm = pad(&crate::format_size(d::PER_PEER_MODULE_BYTES), 8),
        fwd_peer_log = crate::format_size(d::PER_PEER_LOG_BYTES),
        pad_pl = pad(&crate::format_size(d::PER_PEER_LOG_BYTES), 11),
        module_bytes = crate::format_size(d::MODULE.max_bytes),
        module_custom = crate::format_size(d::MODULE.max_custom_bytes),
        pad_c = pad(&crate::format_size(d::MODULE.max_custom_bytes), 9),
        module_functions = d::MODULE.max_functions,
        module_exports = d::MODULE.max_exports,
        module_imports = d::MODULE.max_imports,
        module_function = crate::format_size(d::MODULE.max_function_bytes),
        pad_f = pad(&crate::format_size(d::MODULE.max_function_bytes), 7),
        module_locals = d::MODULE.max_locals,
        pad_l = pad(&d::MODULE.max_locals.to_string(), 17),
        module_br = d::MODULE.max_br_table_targets,
        pad_b = pad(&d::MODULE.max_br_table_targets.to_string(), 7),
        compile_timeout = duration(d::COMPILE.time),
        compile_memory = crate::format_size(d::COMPILE.memory_bytes),
        pad_cm = pad(&crate::format_size(d::COMPILE.memory_bytes), 19),
        compile_tiered = d::TIERED,
        pad_ct = pad(&d::TIERED.to_string(), 21),
        memo = d::MEMO,
        memo_max = crate::format_size(d::MEMO_MAX_RESULT),
        memo_total = crate::format_size(d::MEMO_MAX),
        placement_ttl = duration(d::PLACEMENT_CACHE_TTL),
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
