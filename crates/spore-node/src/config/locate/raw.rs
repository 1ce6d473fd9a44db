//! The shape of `config.toml` as serde reads it: every table and value, with the
//! spans that locate a problem. Checking the values is the `Locator`'s job.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{routes, schedules, topics, trust};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) limits: Option<RawLimits>,
    pub(super) memo: Option<RawMemo>,
    pub(super) placement: Option<RawPlacement>,
    pub(super) config: Option<toml::Table>,
    pub(super) abilities: Option<BTreeMap<String, Spanned<RawAbility>>>,
    pub(super) trust: Option<trust::RawTrust>,
    pub(super) routes: Option<Vec<Spanned<routes::RawRoute>>>,
    pub(super) schedules: Option<Vec<Spanned<schedules::RawSchedule>>>,
    pub(super) subscriptions: Option<Vec<Spanned<topics::RawSubscription>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) memory: Option<Spanned<SizeValue>>,
    pub(super) call_depth: Option<u32>,
    pub(super) max_memory: Option<Spanned<SizeValue>>,
    pub(super) instances: Option<Spanned<u32>>,
    pub(super) forwarded: Option<RawForwarded>,
    pub(super) module: Option<RawModuleLimits>,
    pub(super) compile: Option<RawCompile>,
    pub(super) kv: Option<RawKvLimits>,
}

/// `[limits.module]`: each key is a [`ModuleLimit::key`].
///
/// [`ModuleLimit::key`]: spore_core::manifest::ModuleLimit::key
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModuleLimits {
    pub(super) max_bytes: Option<Spanned<SizeValue>>,
    pub(super) max_custom_bytes: Option<Spanned<SizeValue>>,
    pub(super) max_functions: Option<u64>,
    pub(super) max_exports: Option<u64>,
    pub(super) max_imports: Option<u64>,
    pub(super) max_function_bytes: Option<Spanned<SizeValue>>,
    pub(super) max_locals: Option<u64>,
    pub(super) max_br_table_targets: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCompile {
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) memory: Option<Spanned<SizeValue>>,
    pub(super) tiered: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKvLimits {
    pub(super) max_namespace_bytes: Option<Spanned<SizeValue>>,
    pub(super) max_call_bytes: Option<Spanned<SizeValue>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawForwarded {
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) memory: Option<Spanned<SizeValue>>,
    pub(super) args: Option<Spanned<SizeValue>>,
    pub(super) per_peer_calls: Option<Spanned<u32>>,
    pub(super) per_peer_calls_per_second: Option<Spanned<u32>>,
    pub(super) per_peer_module_bytes: Option<Spanned<SizeValue>>,
    pub(super) per_peer_log_bytes: Option<Spanned<SizeValue>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMemo {
    pub(super) enabled: Option<bool>,
    pub(super) max_result_bytes: Option<Spanned<SizeValue>>,
    pub(super) max_bytes: Option<Spanned<SizeValue>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlacement {
    pub(super) cache_ttl: Option<Spanned<String>>,
}

/// A size written as a number of bytes or as text such as `"64MiB"`.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum SizeValue {
    Bytes(u64),
    Text(String),
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAbility {
    pub(super) provider: Option<Spanned<String>>,
    pub(super) operations: Option<Vec<String>>,
    pub(super) namespace: Option<Spanned<String>>,
    pub(super) max_value_bytes: Option<Spanned<SizeValue>>,
    pub(super) allow: Option<Spanned<Vec<String>>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) max_response_bytes: Option<Spanned<SizeValue>>,
    pub(super) command: Option<Spanned<Vec<String>>>,
    pub(super) cwd: Option<Spanned<String>>,
    pub(super) env: Option<Spanned<BTreeMap<String, String>>>,
    pub(super) function: Option<Spanned<String>>,
    pub(super) uses: Option<Spanned<BTreeMap<String, Spanned<RawAbility>>>>,
    pub(super) callers: Option<Spanned<Vec<String>>>,
    pub(super) publishers: Option<Spanned<Vec<String>>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) stream: Option<Spanned<String>>,
    pub(super) max_deliver: Option<Spanned<i64>>,
    pub(super) ack_wait: Option<Spanned<String>>,
}
