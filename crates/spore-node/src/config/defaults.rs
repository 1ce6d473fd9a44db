//! The default of every key of `config.toml` (docs/configuration.md), written once: the
//! parser falls back to these, and the file a fresh home gets is printed from them
//! (`template.rs`), so the two cannot disagree.

use std::time::Duration;

/// `limits.timeout`: a call's deadline, fetching and compiling included.
pub const TIMEOUT: Duration = spore_runtime::DEFAULT_LIMITS.deadline;
/// `limits.memory`: a call's linear-memory cap.
pub const MEMORY: u64 = spore_runtime::DEFAULT_LIMITS.memory_bytes;
/// `limits.call_depth`: how deep `call` may nest.
pub const CALL_DEPTH: u32 = 8;
/// `limits.max_memory`: the most linear memory any call may have on this node. Every
/// instance slot reserves this much address space up front, so it bounds what the node
/// reserves: a command that runs code (`CALL_DEPTH` + 2 slots) reserves 2.5 GiB.
pub const MAX_MEMORY: u64 = 256 << 20;
/// `limits.instances`: how many instances a running node (`spore node run`) may have
/// alive at once, each reserving `limits.max_memory` of address space.
pub const INSTANCES: u32 = 1000;
/// `[limits.module]`: what a module may be before it is compiled.
pub const MODULE: spore_core::manifest::ModuleLimits = spore_core::manifest::ModuleLimits::DEFAULT;
/// `[limits.compile]`: what compiling one module may cost.
pub const COMPILE: spore_runtime::CompileLimits = spore_runtime::DEFAULT_COMPILE_LIMITS;
/// `limits.compile.tiered`: whether a running node serves a module's first calls with
/// Winch's code while Cranelift compiles it.
pub const TIERED: bool = true;
/// `limits.forwarded.timeout`: the longest a call a peer forwards may run here.
pub const FORWARDED_TIMEOUT: Duration = Duration::from_secs(30);
/// `limits.forwarded.memory`: the most memory a forwarded call may have here.
pub const FORWARDED_MEMORY: u64 = 256 << 20;
/// `limits.forwarded.args`: the largest arguments of a forwarded call.
pub const FORWARDED_ARGS: u64 = 4 << 20;
/// `limits.forwarded.per_peer_calls`: forwarded calls one peer may have running here.
pub const PER_PEER_CALLS: u32 = 32;
/// `limits.forwarded.per_peer_calls_per_second`: forwarded calls one peer may start per
/// second, on average (as many at once in a burst).
pub const PER_PEER_CALLS_PER_SECOND: u32 = 200;
/// `limits.forwarded.per_peer_module_bytes`: bytes of modules this node fetches and keeps
/// to run one peer's calls.
pub const PER_PEER_MODULE_BYTES: u64 = 256 << 20;
/// `limits.forwarded.per_peer_log_bytes`: bytes of log lines one peer's calls may write
/// here per minute.
pub const PER_PEER_LOG_BYTES: u64 = 1 << 20;
/// `placement.cache_ttl`: how long a node reuses the peers it found serving a set of
/// abilities, and its knowledge of which peers hold a module compiled. A lookup it saves
/// costs a few round trips (about 200 ms across links with 50 ms of one-way delay,
/// issue 13), so reusing it for a minute makes lookups at most 0.3% of a busy caller's
/// time there. What a minute risks is small: a peer that dies or stops serving is
/// forgotten at the first call that fails on it, not at expiry, and trust is judged at
/// every use; only a peer that starts serving waits up to a minute for new calls.
pub const PLACEMENT_CACHE_TTL: Duration = Duration::from_secs(60);
/// `memo.enabled`.
pub const MEMO: bool = true;
/// `memo.max_result_bytes`: larger results are not memoized.
pub const MEMO_MAX_RESULT: u64 = 1 << 20;
/// `memo.max_bytes`: the memo's size; the oldest entries go first beyond it.
pub const MEMO_MAX: u64 = spore_store::OpenOptions::DEFAULT_MEMO_MAX_BYTES;
/// `limits.kv.max_namespace_bytes`: what one `kv` namespace may hold.
pub const KV_MAX_NAMESPACE: u64 = spore_abilities::KvSettings::DEFAULT_MAX_NAMESPACE_BYTES;
/// `limits.kv.max_call_bytes`: what one call may write through `kv`.
pub const KV_MAX_CALL: u64 = spore_abilities::KvSettings::DEFAULT_MAX_CALL_BYTES;
/// `abilities.kv.namespace`.
pub const KV_NAMESPACE: &str = spore_abilities::KvSettings::DEFAULT_NAMESPACE;
/// `abilities.kv.max_value_bytes`.
pub const KV_MAX_VALUE: u64 = spore_abilities::KvSettings::DEFAULT_MAX_VALUE_BYTES;
/// `abilities.http.timeout`.
pub const HTTP_TIMEOUT: Duration = spore_abilities::HttpSettings::DEFAULT_TIMEOUT;
/// `abilities.http.max_response_bytes`.
pub const HTTP_MAX_RESPONSE: u64 = spore_abilities::HttpSettings::DEFAULT_MAX_RESPONSE_BYTES;
/// `abilities.NAME.timeout` of a process binding.
pub const PROCESS_TIMEOUT: Duration = spore_abilities::ProcessSettings::DEFAULT_TIMEOUT;
/// `routes.max_body`: the largest request body a route accepts.
pub const ROUTE_MAX_BODY: u64 = 1 << 20;
