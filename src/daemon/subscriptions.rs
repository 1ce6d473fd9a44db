//! Running the `[[subscriptions]]` of `config.toml` while the node runs: each a task that
//! takes the topic's messages one at a time, in order, and calls the function with each
//! delivery (`spore_node::subscriptions`). What a failure does depends on the node's
//! `topic` binding: gossip drops the message (at most once); NATS JetStream delivers it
//! again later, or dead-letters it after `max_deliver` attempts (at least once).

use std::sync::Arc;
use std::time::Duration;

use spore_abilities::topic::nats::{AfterFailure, Jetstream};
use spore_core::topic::Delivery;
use spore_node::config::ProviderConfig;
use spore_node::subscriptions::Subscription;
use spore_node::{Cancel, Node, NodeError};
use tokio::task::JoinHandle;

/// The wait before subscribing again after the NATS server could not be reached; it
/// doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(15);

/// The running subscriptions; dropping them stops them, and the calls in flight. A call
/// stopped that way is not acknowledged, so NATS delivers its message again.
pub struct Subscriptions {
    tasks: Vec<JoinHandle<()>>,
    cancel: Cancel,
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        self.cancel.cancel();
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts every subscription of `node`'s configuration on its `topic` binding.
pub fn start(node: &Arc<Node>) -> Subscriptions {
    let cancel = Cancel::new();
    let subscriptions = node.config().subscriptions.clone();
    let provider = node
        .config()
        .abilities
        .get("topic")
        .and_then(|topic| topic.provider.clone());
    let tasks = match provider {
        Some(ProviderConfig::Gossip) => subscriptions
            .into_iter()
            .map(|s| tokio::spawn(on_gossip(node.clone(), s, cancel.clone())))
            .collect(),
        Some(ProviderConfig::Nats(settings)) => {
            let jetstream = Arc::new(Jetstream::new(settings));
            subscriptions
                .into_iter()
                .map(|s| tokio::spawn(on_nats(node.clone(), jetstream.clone(), s, cancel.clone())))
                .collect()
        }
        // The configuration refuses subscriptions without one of those.
        _ => Vec::new(),
    };
    Subscriptions { tasks, cancel }
}

async fn on_gossip(node: Arc<Node>, subscription: Subscription, cancel: Cancel) {
    let Some(mesh) = node.mesh() else {
        return tracing::warn!(topic = %subscription.topic, "gossip subscriptions need the mesh");
    };
    let mut messages = match mesh.subscribe_topic(subscription.topic.clone()).await {
        Ok(messages) => messages,
        Err(e) => return tracing::warn!(topic = %subscription.topic, "cannot subscribe: {e}"),
    };
    tracing::info!(topic = %subscription.topic, function = %subscription.function, "subscribed (gossip: at most once)");
    while let Some(received) = messages.recv().await {
        let delivery = received.delivery();
        tracing::debug!(from = %received.from, id = %delivery.id, "topic message");
        if let Err(error) = call(&node, &subscription, delivery, &cancel).await {
            tracing::warn!(
                topic = %subscription.topic,
                function = %subscription.function,
                kind = %error.kind(),
                "a topic message was dropped: its function failed ({error}); gossip does not deliver it again"
            );
        }
    }
}

async fn on_nats(
    node: Arc<Node>,
    jetstream: Arc<Jetstream>,
    subscription: Subscription,
    cancel: Cancel,
) {
    let topic = &subscription.topic;
    let mut retry = FIRST_RETRY;
    loop {
        let mut deliveries = match jetstream.subscribe(topic, &subscription.group).await {
            Ok(deliveries) => deliveries,
            Err(e) => {
                tracing::warn!(%topic, "cannot subscribe (trying again in {retry:?}): {e}");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
                continue;
            }
        };
        tracing::info!(%topic, function = %subscription.function, group = %subscription.group, "subscribed (NATS JetStream: at least once)");
        retry = FIRST_RETRY;
        while let Some(received) = deliveries.next().await {
            let received = match received {
                Ok(received) => received,
                Err(e) => {
                    tracing::warn!(%topic, "{e}");
                    break;
                }
            };
            let delivery = received.delivery.clone();
            let failed = match &received.malformed {
                Some(why) => Some(why.clone()),
                None => {
                    // Long calls tell the server they are still at work, so that it does
                    // not deliver the message to another node meanwhile.
                    let progress = jetstream.settings().ack_wait / 2;
                    let call = call(&node, &subscription, delivery.clone(), &cancel);
                    tokio::pin!(call);
                    let outcome = loop {
                        tokio::select! {
                            outcome = &mut call => break outcome,
                            () = tokio::time::sleep(progress) => received.in_progress().await,
                        }
                    };
                    outcome
                        .err()
                        .map(|error| format!("{}: {error}", error.kind()))
                }
            };
            let answered = match failed {
                None => received.succeeded().await.map(|()| None),
                Some(why) => received.failed(&why).await.map(|after| Some((after, why))),
            };
            match answered {
                Ok(None) => {}
                Ok(Some((AfterFailure::Redelivered(delay), why))) => tracing::info!(
                    %topic, id = %delivery.id, delivery = delivery.delivery,
                    "delivery failed ({why}); delivered again in {delay:?}"
                ),
                Ok(Some((AfterFailure::DeadLettered, why))) => tracing::warn!(
                    %topic, id = %delivery.id, delivery = delivery.delivery,
                    subject = %spore_abilities::topic::nats::dead_letter_subject(topic),
                    "delivery failed ({why}); dead-lettered after its last attempt"
                ),
                // Not acknowledged: the server delivers it again after `ack_wait`.
                Err(e) => tracing::warn!(%topic, id = %delivery.id, "{e}"),
            }
        }
        tokio::time::sleep(retry).await;
    }
}

/// One delivery: the function called with it, on a blocking thread.
async fn call(
    node: &Arc<Node>,
    subscription: &Subscription,
    delivery: Delivery,
    cancel: &Cancel,
) -> Result<(), NodeError> {
    let span = tracing::info_span!(
        "subscription",
        topic = %subscription.topic,
        function = %subscription.function,
        id = %delivery.id,
        delivery = delivery.delivery
    );
    let (node, function, timeout, cancel) = (
        node.clone(),
        subscription.function.clone(),
        subscription.timeout,
        cancel.clone(),
    );
    let called = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        node.call_on_own(&function, &[delivery.to_value()], timeout, cancel)
    })
    .await;
    match called {
        Ok(outcome) => outcome.map(|_| ()),
        Err(e) => Err(NodeError::placement(
            spore_node::ErrorKind::Internal,
            format!("the call's thread ended: {e}"),
        )),
    }
}
