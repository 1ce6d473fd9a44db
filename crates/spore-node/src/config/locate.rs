//! Reading `config.toml`: the file's shape (serde), and every value checked where it is,
//! so that a problem is reported with its line, column and key.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use spore_core::manifest::{ModuleLimit, ModuleLimits, is_ability_word};
use spore_runtime::CompileLimits;
use toml::Spanned;

mod raw;
mod routes;
mod schedules;
mod topics;
mod trust;

use raw::{RawAbility, RawConfig, RawModuleLimits, SizeValue};

use super::defaults as default;
use super::{
    AbilityConfig, CallerRule, ConfigError, ForwardedLimits, KvLimits, NodeConfig, ProviderConfig,
};

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

    fn ability(
        &self,
        name: &str,
        key: &str,
        table: Spanned<RawAbility>,
    ) -> Result<AbilityConfig, ConfigError> {
        let span = table.span();
        let raw = table.into_inner();
        let builtin = spore_abilities::builtin(name).is_some();
        if !is_ability_word(name) {
            return Err(self.error(
                span,
                key,
                "ability names are lowercase letters, digits, `_` and `-`, starting with a letter",
            ));
        }
        let operations = raw.operations.clone().unwrap_or_default();
        if builtin && !operations.is_empty() {
            return Err(self.error(
                span,
                &format!("{key}.operations"),
                format!(
                    "`{name}` is a built-in ability; its operations are fixed (spec/abilities.md)"
                ),
            ));
        }
        if !builtin && operations.is_empty() {
            return Err(self.error(span, &format!("{key}.operations"), format!("`{name}` is not a built-in ability; declare its operations, e.g. operations = [\"read\"]")));
        }
        if let Some(bad) = operations.iter().find(|op| !is_ability_word(op)) {
            return Err(self.error(
                span,
                &format!("{key}.operations"),
                format!("`{bad}` is not an operation name (lowercase letters, digits, `_`, `-`)"),
            ));
        }
        let provider = match &raw.provider {
            None => {
                self.only(&raw, key, &[])?;
                None
            }
            Some(provider) => Some(self.provider(name, key, provider, &raw)?),
        };
        let callers = match &raw.callers {
            None => Vec::new(),
            Some(callers) => self.callers(callers, &format!("{key}.callers"))?,
        };
        let publishers = match &raw.publishers {
            None => Vec::new(),
            Some(keys) => self.publishers(keys, &format!("{key}.publishers"))?,
        };
        Ok(AbilityConfig {
            operations,
            provider,
            callers,
            publishers,
        })
    }

    /// An ability's `callers`: `"*"`, `"role:NAME"` or `"peer:PEER_ID"` each.
    fn callers(
        &self,
        callers: &Spanned<Vec<String>>,
        key: &str,
    ) -> Result<Vec<CallerRule>, ConfigError> {
        callers
            .get_ref()
            .iter()
            .map(|rule| {
                let bad = |why: String| self.error(callers.span(), key, why);
                if rule == "*" {
                    Ok(CallerRule::AnyMember)
                } else if let Some(role) = rule.strip_prefix("role:") {
                    spore_core::trust::check_label(role).map_err(bad)?;
                    Ok(CallerRule::Role(role.to_owned()))
                } else if let Some(peer) = rule.strip_prefix("peer:") {
                    peer.parse()
                        .map(CallerRule::Peer)
                        .map_err(|e| bad(format!("`{peer}` is not a peer id: {e}")))
                } else {
                    Err(bad(format!(
                        "`{rule}` is not a caller: \"*\" (every member), \"role:NAME\" or \"peer:PEER_ID\""
                    )))
                }
            })
            .collect()
    }

    fn provider(
        &self,
        name: &str,
        key: &str,
        provider: &Spanned<String>,
        raw: &RawAbility,
    ) -> Result<ProviderConfig, ConfigError> {
        let kind = provider.get_ref().as_str();
        // The built-in kinds serve only their own ability; a custom ability needs a
        // provider that can serve any shape.
        let own_kind = spore_abilities::builtin(kind).is_some();
        // So do the providers of `topic`.
        if matches!(kind, "gossip" | "nats") && name != "topic" {
            return Err(self.error(provider.span(), &format!("{key}.provider"), format!("provider `{kind}` serves only the `topic` ability; `{name}` needs \"process\" or \"handler\"")));
        }
        if own_kind && kind != name {
            return Err(self.error(provider.span(), &format!("{key}.provider"), format!("provider `{kind}` serves only the `{kind}` ability; `{name}` needs \"process\" or \"handler\"")));
        }
        Ok(match kind {
            "log" | "clock" | "random" | "config" | "call" => {
                self.only(raw, key, &[])?;
                match kind {
                    "log" => ProviderConfig::Log,
                    "clock" => ProviderConfig::Clock,
                    "random" => ProviderConfig::Random,
                    "config" => ProviderConfig::Config,
                    _ => ProviderConfig::Call,
                }
            }
            "kv" => {
                self.only(raw, key, &["namespace", "max_value_bytes"])?;
                let namespace = raw
                    .namespace
                    .as_ref()
                    .map(|n| n.get_ref().clone())
                    .unwrap_or_else(|| default::KV_NAMESPACE.into());
                if !is_ability_word(&namespace) {
                    let span = raw
                        .namespace
                        .as_ref()
                        .map(|n| n.span())
                        .unwrap_or(provider.span());
                    return Err(self.error(
                        span,
                        &format!("{key}.namespace"),
                        "namespaces are lowercase letters, digits, `_` and `-`",
                    ));
                }
                ProviderConfig::Kv {
                    namespace,
                    max_value_bytes: self.size(
                        raw.max_value_bytes.clone(),
                        &format!("{key}.max_value_bytes"),
                        default::KV_MAX_VALUE,
                    )?,
                }
            }
            "http" => {
                self.only(raw, key, &["allow", "timeout", "max_response_bytes"])?;
                let allow = raw
                    .allow
                    .as_ref()
                    .map(|a| a.get_ref().clone())
                    .unwrap_or_default();
                if allow.is_empty() {
                    return Err(self.error(provider.span(), &format!("{key}.allow"), "an http binding needs at least one allowed host, e.g. allow = [\"example.org\"]"));
                }
                ProviderConfig::Http {
                    allow,
                    timeout: self.duration(
                        raw.timeout.clone(),
                        &format!("{key}.timeout"),
                        default::HTTP_TIMEOUT,
                    )?,
                    max_response_bytes: self.size(
                        raw.max_response_bytes.clone(),
                        &format!("{key}.max_response_bytes"),
                        default::HTTP_MAX_RESPONSE,
                    )?,
                }
            }
            "process" => {
                self.only(
                    raw,
                    key,
                    &["operations", "command", "cwd", "env", "timeout"],
                )?;
                let command = raw
                    .command
                    .as_ref()
                    .map(|c| c.get_ref().clone())
                    .unwrap_or_default();
                if command.is_empty() {
                    return Err(self.error(provider.span(), &format!("{key}.command"), "a process binding needs a command, e.g. command = [\"python3\", \"provider.py\"]"));
                }
                ProviderConfig::Process {
                    command,
                    cwd: raw.cwd.as_ref().map(|c| PathBuf::from(c.get_ref())),
                    env: raw
                        .env
                        .as_ref()
                        .map(|e| e.get_ref().clone().into_iter().collect())
                        .unwrap_or_default(),
                    timeout: self.duration(
                        raw.timeout.clone(),
                        &format!("{key}.timeout"),
                        default::PROCESS_TIMEOUT,
                    )?,
                }
            }
            "handler" => {
                self.only(raw, key, &["operations", "function", "uses"])?;
                let function = raw.function.as_ref().ok_or_else(|| {
                    self.error(provider.span(), &format!("{key}.function"), "a handler binding needs the function whose exports implement the ability, e.g. function = \"kvprefix\"")
                })?;
                let uses = match &raw.uses {
                    None => BTreeMap::new(),
                    Some(uses) => uses
                        .get_ref()
                        .iter()
                        .map(|(inner, table)| {
                            let inner_key = format!("{key}.uses.{inner}");
                            let config = self.ability(inner, &inner_key, table.clone())?;
                            if config.provider.is_none() {
                                return Err(self.error(
                                    table.span(),
                                    &inner_key,
                                    "a `uses` entry must bind a provider",
                                ));
                            }
                            Ok((inner.clone(), config))
                        })
                        .collect::<Result<_, ConfigError>>()?,
                };
                ProviderConfig::Handler {
                    function: function.get_ref().clone(),
                    uses,
                }
            }
            "gossip" => {
                self.only(raw, key, &[])?;
                ProviderConfig::Gossip
            }
            "nats" => ProviderConfig::Nats(self.nats(key, provider, raw)?),
            other => {
                return Err(self.error(provider.span(), &format!("{key}.provider"), format!("unknown provider `{other}`; one of log, clock, random, config, call, kv, http, gossip, nats, process, handler")));
            }
        })
    }

    /// Refuses keys that do not apply to the provider (or to a bare declaration).
    fn only(&self, raw: &RawAbility, key: &str, allowed: &[&str]) -> Result<(), ConfigError> {
        let present: [(&str, Option<Range<usize>>); 14] = [
            ("namespace", raw.namespace.as_ref().map(Spanned::span)),
            (
                "max_value_bytes",
                raw.max_value_bytes.as_ref().map(Spanned::span),
            ),
            ("allow", raw.allow.as_ref().map(Spanned::span)),
            ("timeout", raw.timeout.as_ref().map(Spanned::span)),
            (
                "max_response_bytes",
                raw.max_response_bytes.as_ref().map(Spanned::span),
            ),
            ("command", raw.command.as_ref().map(Spanned::span)),
            ("cwd", raw.cwd.as_ref().map(Spanned::span)),
            ("env", raw.env.as_ref().map(Spanned::span)),
            ("function", raw.function.as_ref().map(Spanned::span)),
            ("uses", raw.uses.as_ref().map(Spanned::span)),
            ("url", raw.url.as_ref().map(Spanned::span)),
            ("stream", raw.stream.as_ref().map(Spanned::span)),
            ("max_deliver", raw.max_deliver.as_ref().map(Spanned::span)),
            ("ack_wait", raw.ack_wait.as_ref().map(Spanned::span)),
        ];
        let provider = raw
            .provider
            .as_ref()
            .map_or("(none)", |p| p.get_ref().as_str());
        match present
            .into_iter()
            .find(|(name, span)| span.is_some() && !allowed.contains(name))
        {
            Some((name, span)) => Err(self.error(
                span.expect("present"),
                &format!("{key}.{name}"),
                format!("does not apply to provider {provider}"),
            )),
            None => Ok(()),
        }
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
