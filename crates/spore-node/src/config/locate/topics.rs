//! Topics in `config.toml`: the `nats` provider of `[abilities.topic]`, and
//! `[[subscriptions]]`, functions the node calls with what is published on a topic
//! (`crate::subscriptions`).

use std::time::Duration;

use serde::Deserialize;
use spore_abilities::topic::nats::NatsSettings;
use toml::Spanned;

use super::Locator;
use super::raw::RawAbility;
use crate::config::ConfigError;
use crate::subscriptions::{Subscription, default_group, is_group_char};

/// One `[[subscriptions]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSubscription {
    topic: Spanned<String>,
    function: Spanned<String>,
    timeout: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
}

impl Locator<'_> {
    /// The settings of a `nats` binding.
    pub(super) fn nats(
        &self,
        key: &str,
        provider: &Spanned<String>,
        raw: &RawAbility,
    ) -> Result<NatsSettings, ConfigError> {
        self.only(
            raw,
            key,
            &["url", "stream", "max_deliver", "timeout", "ack_wait"],
        )?;
        let url = raw.url.as_ref().ok_or_else(|| {
            self.error(
                provider.span(),
                &format!("{key}.url"),
                "a nats binding needs the server, e.g. url = \"nats://127.0.0.1:4222\"",
            )
        })?;
        let stream = match &raw.stream {
            None => NatsSettings::DEFAULT_STREAM.to_owned(),
            Some(stream) => {
                let text = stream.get_ref();
                if text.is_empty() || !text.chars().all(crate::subscriptions::is_group_char) {
                    return Err(self.error(
                        stream.span(),
                        &format!("{key}.stream"),
                        "a stream name is letters, digits, `_` and `-`",
                    ));
                }
                text.clone()
            }
        };
        let max_deliver = match &raw.max_deliver {
            None => NatsSettings::DEFAULT_MAX_DELIVER,
            Some(n) => match u32::try_from(*n.get_ref()) {
                Ok(n @ 1..=1000) => n,
                _ => {
                    return Err(self.error(
                        n.span(),
                        &format!("{key}.max_deliver"),
                        "attempts from 1 to 1000",
                    ));
                }
            },
        };
        Ok(NatsSettings {
            url: url.get_ref().clone(),
            stream,
            max_deliver,
            timeout: self.duration(
                raw.timeout.clone(),
                &format!("{key}.timeout"),
                NatsSettings::DEFAULT_TIMEOUT,
            )?,
            ack_wait: self.duration(
                raw.ack_wait.clone(),
                &format!("{key}.ack_wait"),
                NatsSettings::DEFAULT_ACK_WAIT,
            )?,
        })
    }

    /// Every `[[subscriptions]]` entry, checked. `topic_bound` says whether the node
    /// binds `topic` to a provider that delivers (gossip or NATS): without one, no
    /// message could ever arrive.
    pub(super) fn subscriptions(
        &self,
        raw: Vec<Spanned<RawSubscription>>,
        default_timeout: Duration,
        topic_bound: bool,
    ) -> Result<Vec<Subscription>, ConfigError> {
        raw.into_iter()
            .enumerate()
            .map(|(i, raw)| {
                let span = raw.span();
                let raw = raw.into_inner();
                let key = |field: &str| format!("subscriptions[{i}].{field}");
                if !topic_bound {
                    return Err(self.error(
                        span,
                        &format!("subscriptions[{i}]"),
                        "a subscription needs `topic` bound to a provider that delivers messages: [abilities.topic] with provider = \"gossip\" or \"nats\"",
                    ));
                }
                let topic = raw.topic.get_ref().parse().map_err(
                    |e: spore_core::topic::TopicError| {
                        self.error(raw.topic.span(), &key("topic"), e.to_string())
                    },
                )?;
                let function = self.function(&raw.function, &key("function"))?;
                let group = match &raw.group {
                    None => default_group(&topic, &function),
                    Some(group) => {
                        let text = group.get_ref();
                        if text.is_empty() || text.len() > 200 || !text.chars().all(is_group_char)
                        {
                            return Err(self.error(
                                group.span(),
                                &key("group"),
                                "a group is 1 to 200 letters, digits, `_` and `-`",
                            ));
                        }
                        text.clone()
                    }
                };
                Ok(Subscription {
                    topic,
                    function,
                    timeout: self.duration(raw.timeout, &key("timeout"), default_timeout)?,
                    group,
                })
            })
            .collect()
    }
}
