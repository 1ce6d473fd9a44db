//! Reading `config.toml`: the file's shape (serde), and every value checked where it is,
//! so that a problem is reported with its line, column and key.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use spore_core::manifest::{ModuleLimit, ModuleLimits};
use spore_runtime::CompileLimits;
use toml::Spanned;

mod abilities;
mod raw;
mod routes;
mod schedules;
mod topics;
mod trust;

use raw::{RawConfig, RawModuleLimits, SizeValue};

use super::defaults as default;
use super::{AbilityConfig, ConfigError, ForwardedLimits, KvLimits, NodeConfig, ProviderConfig};

/// Parses and validates the text of a configuration file.
pub(super) fn parse(file: &Path, text: &str) -> Result<NodeConfig, ConfigError> {
    let locate = Locator { file, text };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        locate.error(span, "", e.message().to_owned())
    })?;
    let limits = raw.limits.unwrap_or_default();
    let forwarded = limits.forwarded.unwrap_or_default();
    let kv = limits.kv.unwrap_or_default();
    let memo = raw.memo.unwrap_or_default();
    let placement = raw.placement.unwrap_or_default();
    let names = locate.name_policy(raw.trust.unwrap_or_default())?;
    let values = raw
        .config
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| (key, toml_to_cbor(value)))
        .collect();
    let abilities: BTreeMap<String, AbilityConfig> = raw
        .abilities
        .unwrap_or_default()
        .into_iter()
        .map(|(name, table)| {
            let key = format!("abilities.{name}");
            Ok((name.clone(), locate.ability(&name, &key, table)?))
        })
        .collect::<Result<_, ConfigError>>()?;
    let max_memory_bytes = locate.memory(
        limits.max_memory,
        "limits.max_memory",
        default::MAX_MEMORY,
        None,
    )?;
    let module = limits.module.unwrap_or_default();
    let compile = limits.compile.unwrap_or_default();
    let timeout = locate.duration(limits.timeout, "limits.timeout", default::TIMEOUT)?;
    let routes = locate.routes(raw.routes.unwrap_or_default(), timeout)?;
    let schedules = locate.schedules(raw.schedules.unwrap_or_default(), timeout)?;
    let topic_bound = abilities
        .get("topic")
        .and_then(|topic| topic.provider.as_ref())
        .is_some_and(|p| matches!(p, ProviderConfig::Gossip | ProviderConfig::Nats(_)));
    let subscriptions =
        locate.subscriptions(raw.subscriptions.unwrap_or_default(), timeout, topic_bound)?;
    Ok(NodeConfig {
        file: file.to_owned(),
        timeout,
        memory_bytes: locate.memory(
            limits.memory,
            "limits.memory",
            default::MEMORY,
            Some(max_memory_bytes),
        )?,
        max_call_depth: limits.call_depth.unwrap_or(default::CALL_DEPTH),
        max_memory_bytes,
        instances: locate.at_least_one(limits.instances, "limits.instances", default::INSTANCES)?,
        module: locate.module_limits(module)?,
        compile: CompileLimits {
            time: locate.duration(
                compile.timeout,
                "limits.compile.timeout",
                default::COMPILE.time,
            )?,
            memory_bytes: locate.size(
                compile.memory,
                "limits.compile.memory",
                default::COMPILE.memory_bytes,
            )?,
        },
        tiered: compile.tiered.unwrap_or(default::TIERED),
        memo: memo.enabled.unwrap_or(default::MEMO),
        memo_max_result_bytes: locate.size(
            memo.max_result_bytes,
            "memo.max_result_bytes",
            default::MEMO_MAX_RESULT,
        )?,
        memo_max_bytes: locate.size(memo.max_bytes, "memo.max_bytes", default::MEMO_MAX)?,
        placement_cache_ttl: locate.duration(
            placement.cache_ttl,
            "placement.cache_ttl",
            default::PLACEMENT_CACHE_TTL,
        )?,
        kv_limits: KvLimits {
            max_namespace_bytes: locate.size(
                kv.max_namespace_bytes,
                "limits.kv.max_namespace_bytes",
                default::KV_MAX_NAMESPACE,
            )?,
            max_call_bytes: locate.size(
                kv.max_call_bytes,
                "limits.kv.max_call_bytes",
                default::KV_MAX_CALL,
            )?,
        },
        forwarded: ForwardedLimits {
            timeout: locate.duration(
                forwarded.timeout,
                "limits.forwarded.timeout",
                default::FORWARDED_TIMEOUT,
            )?,
            memory_bytes: locate.memory(
                forwarded.memory,
                "limits.forwarded.memory",
                default::FORWARDED_MEMORY,
                Some(max_memory_bytes),
            )?,
            args_bytes: locate.size(
                forwarded.args,
                "limits.forwarded.args",
                default::FORWARDED_ARGS,
            )?,
            per_peer_calls: locate.at_least_one(
                forwarded.per_peer_calls,
                "limits.forwarded.per_peer_calls",
                default::PER_PEER_CALLS,
            )?,
            per_peer_calls_per_second: locate.at_least_one(
                forwarded.per_peer_calls_per_second,
                "limits.forwarded.per_peer_calls_per_second",
                default::PER_PEER_CALLS_PER_SECOND,
            )?,
            per_peer_module_bytes: locate.size(
                forwarded.per_peer_module_bytes,
                "limits.forwarded.per_peer_module_bytes",
                default::PER_PEER_MODULE_BYTES,
            )?,
            per_peer_log_bytes: locate.size(
                forwarded.per_peer_log_bytes,
                "limits.forwarded.per_peer_log_bytes",
                default::PER_PEER_LOG_BYTES,
            )?,
        },
        values,
        abilities,
        names,
        routes,
        schedules,
        subscriptions,
    })
}

struct Locator<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Locator<'_> {
    fn error(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        ConfigError {
            file: self.file.to_owned(),
            line,
            column,
            key: key.to_owned(),
            message: message.into(),
        }
    }

    fn duration(
        &self,
        value: Option<Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match value {
            None => Ok(default),
            Some(value) => humantime::parse_duration(value.get_ref()).map_err(|e| {
                self.error(
                    value.span(),
                    key,
                    format!(
                        "`{}` is not a duration ({e}); write e.g. \"500ms\" or \"10s\"",
                        value.get_ref()
                    ),
                )
            }),
        }
    }

    /// A count that must be at least 1, or `default` when absent.
    fn at_least_one(
        &self,
        value: Option<Spanned<u32>>,
        key: &str,
        default: u32,
    ) -> Result<u32, ConfigError> {
        match value {
            None => Ok(default),
            Some(n) if *n.get_ref() >= 1 => Ok(*n.get_ref()),
            Some(n) => Err(self.error(n.span(), key, "at least 1")),
        }
    }

    fn size(
        &self,
        value: Option<Spanned<SizeValue>>,
        key: &str,
        default: u64,
    ) -> Result<u64, ConfigError> {
        match value {
            None => Ok(default),
            Some(value) => match value.get_ref() {
                SizeValue::Bytes(n) => Ok(*n),
                SizeValue::Text(text) => crate::parse_size(text).ok_or_else(|| {
                    self.error(
                        value.span(),
                        key,
                        format!(
                            "`{text}` is not a size; write e.g. \"64MiB\" or a number of bytes"
                        ),
                    )
                }),
            },
        }
    }

    /// A call's memory cap: a size no larger than the runtime allows any call, nor than
    /// `max` (`limits.max_memory`) when given.
    fn memory(
        &self,
        value: Option<Spanned<SizeValue>>,
        key: &str,
        default: u64,
        max: Option<u64>,
    ) -> Result<u64, ConfigError> {
        let span = value.as_ref().map_or(0..0, Spanned::span);
        let bytes = self.size(value, key, default)?;
        crate::check_memory(bytes).map_err(|message| self.error(span.clone(), key, message))?;
        if let Some(max) = max
            && bytes > max
        {
            return Err(self.error(
                span,
                key,
                format!(
                    "{} is over `limits.max_memory` ({}), the most any call may have here; raise that too",
                    crate::format_size(bytes),
                    crate::format_size(max)
                ),
            ));
        }
        Ok(bytes)
    }

    fn module_limits(&self, raw: RawModuleLimits) -> Result<ModuleLimits, ConfigError> {
        let d = default::MODULE;
        let bytes = |value, limit: ModuleLimit| {
            self.size(
                value,
                &format!("limits.module.{}", limit.key()),
                d.get(limit),
            )
        };
        let count = |value: Option<u64>, limit: ModuleLimit| value.unwrap_or(d.get(limit));
        Ok(ModuleLimits {
            max_bytes: bytes(raw.max_bytes, ModuleLimit::Bytes)?,
            max_custom_bytes: bytes(raw.max_custom_bytes, ModuleLimit::CustomBytes)?,
            max_functions: count(raw.max_functions, ModuleLimit::Functions),
            max_exports: count(raw.max_exports, ModuleLimit::Exports),
            max_imports: count(raw.max_imports, ModuleLimit::Imports),
            max_function_bytes: bytes(raw.max_function_bytes, ModuleLimit::FunctionBytes)?,
            max_locals: count(raw.max_locals, ModuleLimit::Locals),
            max_br_table_targets: count(raw.max_br_table_targets, ModuleLimit::BrTableTargets),
        })
    }
}

pub(super) fn whole_file(file: &Path, message: String) -> ConfigError {
    ConfigError {
        file: file.to_owned(),
        line: 1,
        column: 1,
        key: String::new(),
        message,
    }
}

fn toml_to_cbor(value: toml::Value) -> ciborium::Value {
    use ciborium::Value as C;
    match value {
        toml::Value::String(s) => C::Text(s),
        toml::Value::Integer(i) => C::Integer(i.into()),
        toml::Value::Float(f) => C::Float(f),
        toml::Value::Boolean(b) => C::Bool(b),
        toml::Value::Datetime(d) => C::Text(d.to_string()),
        toml::Value::Array(items) => C::Array(items.into_iter().map(toml_to_cbor).collect()),
        toml::Value::Table(table) => C::Map(
            table
                .into_iter()
                .map(|(k, v)| (C::Text(k), toml_to_cbor(v)))
                .collect(),
        ),
    }
}
