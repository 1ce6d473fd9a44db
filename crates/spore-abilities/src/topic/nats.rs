//! The `topic` ability on NATS JetStream: durable, at least once (`spec/abilities.md`,
//! "topic"; the subjects and headers are in "Topics on NATS").
//!
//! A topic `T` is the subject `spore.topic.T` of one stream (`SPORE` by default, made on
//! first use with the subjects `spore.topic.>` and `spore.dead.>`). `publish` returns
//! once the stream has stored the message. A subscription is a durable pull consumer
//! with explicit acknowledgement: a delivery is acknowledged only after the function
//! succeeded; a failure is negatively acknowledged with a growing delay; a node that
//! stops or crashes mid-call never acknowledges, and the server delivers the message
//! again once `ack_wait` has passed. After `max_deliver` failed attempts the message is
//! published to `spore.dead.T` (with why, in headers) and acknowledged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, consumer, stream};
use ciborium::Value;
use futures::StreamExt;
use spore_core::topic::{Delivery, Topic};
use spore_runtime::{AbilityContext, AbilityError, ErrorKind, Provider};

use super::Publish;

/// Every topic's subject is this followed by the topic.
pub const SUBJECT_PREFIX: &str = "spore.topic.";
/// A message that failed `max_deliver` times goes to this followed by its topic.
pub const DEAD_LETTER_PREFIX: &str = "spore.dead.";

/// How a `nats` binding of `topic` is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSettings {
    /// The server, `nats://host:port`.
    pub url: String,
    /// The JetStream stream holding the topics' subjects.
    pub stream: String,
    /// Attempts at a delivery before it goes to the dead-letter subject.
    pub max_deliver: u32,
    /// How long a publish may wait for the stream's acknowledgement (and a connection).
    pub timeout: Duration,
    /// How long the server waits for a delivery's acknowledgement before delivering it
    /// again; a call running longer tells the server it is still working.
    pub ack_wait: Duration,
}

impl NatsSettings {
    pub const DEFAULT_STREAM: &str = "SPORE";
    pub const DEFAULT_MAX_DELIVER: u32 = 5;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
}

pub fn subject(topic: &Topic) -> String {
    format!("{SUBJECT_PREFIX}{topic}")
}

pub fn dead_letter_subject(topic: &Topic) -> String {
    format!("{DEAD_LETTER_PREFIX}{topic}")
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> AbilityError {
    AbilityError::new(ErrorKind::Unavailable, format!("NATS: {what}: {e}"))
}

/// A JetStream context on one server, connected (and its stream made) on first use; a
/// failed connection is tried again at the next use.
pub struct Jetstream {
    settings: NatsSettings,
    context: tokio::sync::OnceCell<jetstream::Context>,
}

impl Jetstream {
    pub fn new(settings: NatsSettings) -> Jetstream {
        Jetstream {
            settings,
            context: tokio::sync::OnceCell::new(),
        }
    }

    pub fn settings(&self) -> &NatsSettings {
        &self.settings
    }

    async fn context(&self) -> Result<&jetstream::Context, AbilityError> {
        self.context
            .get_or_try_init(|| async {
                let client = async_nats::ConnectOptions::new()
                    .connection_timeout(self.settings.timeout)
                    .connect(self.settings.url.as_str())
                    .await
                    .map_err(|e| {
                        unavailable(&format!("cannot connect to {}", self.settings.url), e)
                    })?;
                let context = jetstream::new(client);
                context
                    .get_or_create_stream(stream::Config {
                        name: self.settings.stream.clone(),
                        subjects: vec![
                            format!("{SUBJECT_PREFIX}>"),
                            format!("{DEAD_LETTER_PREFIX}>"),
                        ],
                        storage: stream::StorageType::File,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| {
                        unavailable(&format!("cannot open stream {}", self.settings.stream), e)
                    })?;
                Ok(context)
            })
            .await
    }

    /// Publishes `encoded` (a message in canonical CBOR) on `topic`; its stream sequence
    /// once the stream has stored it.
    pub async fn publish(&self, topic: &Topic, encoded: Vec<u8>) -> Result<u64, AbilityError> {
        let context = self.context().await?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Content-Type", "application/cbor");
        let ack = context
            .publish_with_headers(subject(topic), headers, encoded.into())
            .await
            .map_err(|e| unavailable("cannot publish", e))?
            .await
            .map_err(|e| unavailable("the stream did not store the message", e))?;
        Ok(ack.sequence)
    }

    /// The deliveries of `topic` to the durable consumer `group`: nodes subscribing with
    /// the same group share its messages, each delivered to one of them at a time.
    pub async fn subscribe(
        &self,
        topic: &Topic,
        group: &str,
    ) -> Result<Subscription, AbilityError> {
        let context = self.context().await?;
        let stream = context
            .get_stream(&self.settings.stream)
            .await
            .map_err(|e| unavailable(&format!("cannot open stream {}", self.settings.stream), e))?;
        let consumer: consumer::PullConsumer = stream
            .get_or_create_consumer(
                group,
                consumer::pull::Config {
                    durable_name: Some(group.to_owned()),
                    filter_subject: subject(topic),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.settings.ack_wait,
                    // spore counts attempts itself, to dead-letter the last one.
                    max_deliver: -1,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| unavailable(&format!("cannot make consumer {group}"), e))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| unavailable(&format!("cannot read consumer {group}"), e))?;
        Ok(Subscription {
            topic: topic.clone(),
            messages,
            context: context.clone(),
            max_deliver: self.settings.max_deliver,
        })
    }
}

/// A subscription's deliveries, one at a time.
pub struct Subscription {
    topic: Topic,
    messages: consumer::pull::Stream,
    context: jetstream::Context,
    max_deliver: u32,
}

impl Subscription {
    /// The next delivery; `None` when the consumer is gone.
    pub async fn next(&mut self) -> Option<Result<Received, AbilityError>> {
        let message = match self.messages.next().await? {
            Ok(message) => message,
            Err(e) => return Some(Err(unavailable("cannot read a delivery", e))),
        };
        let (delivery, sequence) = match message.info() {
            Ok(info) => (
                u32::try_from(info.delivered).unwrap_or(u32::MAX),
                info.stream_sequence,
            ),
            Err(e) => return Some(Err(unavailable("a delivery without its metadata", e))),
        };
        let decoded = spore_core::value::decode(&message.payload)
            .map_err(|e| format!("the message is not a CBOR value: {e}"));
        let (value, malformed) = match decoded {
            Ok(value) => (value, None),
            Err(why) => (Value::Null, Some(why)),
        };
        Some(Ok(Received {
            delivery: Delivery {
                topic: self.topic.clone(),
                message: value,
                delivery,
                id: sequence.to_string(),
            },
            malformed,
            message,
            context: self.context.clone(),
            max_deliver: self.max_deliver,
        }))
    }
}

/// One delivery, to be answered with [`Received::succeeded`] or [`Received::failed`].
pub struct Received {
    pub delivery: Delivery,
    /// Why the message cannot be given to a function (it is not CBOR), if so.
    pub malformed: Option<String>,
    message: jetstream::Message,
    context: jetstream::Context,
    max_deliver: u32,
}

/// What became of a failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// It will be delivered again after this delay.
    Redelivered(Duration),
    /// It was the last attempt: it went to the dead-letter subject.
    DeadLettered,
}

impl Received {
    /// Tells the server the call is still running, so that it does not deliver the
    /// message again meanwhile.
    pub async fn in_progress(&self) {
        let _ = self.message.ack_with(AckKind::Progress).await;
    }

    /// The function succeeded: the message is done with, once the server confirms.
    pub async fn succeeded(self) -> Result<(), AbilityError> {
        self.message
            .double_ack()
            .await
            .map_err(|e| unavailable("cannot acknowledge a delivery", e))
    }

    /// The function failed (`why`); the message is delivered again later, or, at the
    /// last attempt or when it is malformed, goes to the dead-letter subject.
    pub async fn failed(self, why: &str) -> Result<AfterFailure, AbilityError> {
        if self.malformed.is_none() && self.delivery.delivery < self.max_deliver {
            let delay = redelivery_delay(self.delivery.delivery);
            self.message
                .ack_with(AckKind::Nak(Some(delay)))
                .await
                .map_err(|e| unavailable("cannot return a delivery", e))?;
            return Ok(AfterFailure::Redelivered(delay));
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Content-Type", "application/cbor");
        headers.insert("Spore-Topic", self.delivery.topic.as_str());
        headers.insert("Spore-Error", one_line(why).as_str());
        headers.insert(
            "Spore-Deliveries",
            self.delivery.delivery.to_string().as_str(),
        );
        headers.insert("Spore-Stream-Sequence", self.delivery.id.as_str());
        self.context
            .publish_with_headers(
                dead_letter_subject(&self.delivery.topic),
                headers,
                self.message.payload.clone(),
            )
            .await
            .map_err(|e| unavailable("cannot dead-letter a delivery", e))?
            .await
            .map_err(|e| unavailable("the stream did not store a dead letter", e))?;
        self.message
            .double_ack_with(AckKind::Term)
            .await
            .map_err(|e| unavailable("cannot retire a dead-lettered delivery", e))?;
        Ok(AfterFailure::DeadLettered)
    }
}

/// 1 s after the first failure, doubling, at most a minute: a function that fails for a
/// moment (a peer restarting) is tried again soon, one that keeps failing not in a loop.
fn redelivery_delay(delivery: u32) -> Duration {
    Duration::from_secs(1 << delivery.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// Header values are one line.
fn one_line(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    line.chars().take(1000).collect()
}

/// `topic` served by NATS JetStream. Providers are called on the guest's thread, which
/// waits anyway; the client runs on a thread of its own with its own small runtime, so
/// that a publish works whatever runtime (if any) the guest's thread belongs to.
pub struct NatsTopicProvider {
    jetstream: Arc<Jetstream>,
    runtime: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl NatsTopicProvider {
    pub fn new(settings: NatsSettings) -> std::io::Result<NatsTopicProvider> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("nats-topic".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(runtime.handle().clone()));
                // Runs the client's tasks until the provider is dropped.
                let _ = runtime.block_on(stopped);
            })?;
        let runtime = handle_rx
            .recv()
            .map_err(|_| std::io::Error::other("the NATS thread did not start"))??;
        Ok(NatsTopicProvider {
            jetstream: Arc::new(Jetstream::new(settings)),
            runtime,
            _stop: stop,
        })
    }
}

impl Provider for NatsTopicProvider {
    fn call(
        &self,
        cx: &AbilityContext,
        operation: &str,
        request: Value,
    ) -> Result<Value, AbilityError> {
        let _span = tracing::debug_span!(
            "ability",
            ability = "topic",
            operation,
            invocation = cx.invocation
        )
        .entered();
        let publish = Publish::parse(operation, &request)?;
        let wait = cx
            .deadline
            .saturating_duration_since(Instant::now())
            .min(self.jetstream.settings.timeout);
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let jetstream = self.jetstream.clone();
        self.runtime.spawn(async move {
            let published =
                tokio::time::timeout(wait, jetstream.publish(&publish.topic, publish.encoded))
                    .await;
            let _ = answer.send(published);
        });
        match answered.recv() {
            Ok(Ok(Ok(_sequence))) => Ok(Value::Null),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(AbilityError::new(
                ErrorKind::Timeout,
                format!("NATS did not store the message within {wait:?}"),
            )),
            Err(_) => Err(AbilityError::new(
                ErrorKind::Internal,
                "the NATS thread stopped",
            )),
        }
    }

    fn describe(&self) -> String {
        let s = &self.jetstream.settings;
        format!(
            "NATS JetStream at {} (stream {}, at least once, dead letter after {} attempts)",
            s.url, s.stream, s.max_deliver
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redeliveries_wait_longer_each_time_up_to_a_minute() {
        let delays: Vec<u64> = (1..=9).map(|d| redelivery_delay(d).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
