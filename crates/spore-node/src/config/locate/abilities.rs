//! `[abilities.NAME]` of `config.toml`: an ability's declaration, the provider bound to
//! it with that provider's settings, and who may call it.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use spore_core::manifest::is_ability_word;
use toml::Spanned;

use super::Locator;
use super::raw::RawAbility;
use crate::config::defaults as default;
use crate::config::{AbilityConfig, CallerRule, ConfigError, ProviderConfig};

impl Locator<'_> {
    pub(super) fn ability(
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
    pub(super) fn only(
        &self,
        raw: &RawAbility,
        key: &str,
        allowed: &[&str],
    ) -> Result<(), ConfigError> {
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
