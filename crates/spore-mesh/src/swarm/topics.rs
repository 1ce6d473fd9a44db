//! The swarm task's handling of topics (`crate::topics`): subscribing, publishing, and
//! handing what members publish to this node's subscribers.

use libp2p::gossipsub;
use spore_core::topic::Topic;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::SwarmTask;
use crate::MeshError;
use crate::topics::{TopicMessage, decode, gossip_topic};

/// One topic this node subscribes to, and where its messages go.
pub(super) struct Subscribed {
    topic: Topic,
    subscribers: Vec<mpsc::Sender<TopicMessage>>,
}

impl SwarmTask {
    pub(super) fn subscribe_topic(&mut self, topic: Topic, deliver: mpsc::Sender<TopicMessage>) {
        let gossip = gossip_topic(&topic);
        if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(&gossip) {
            warn!(%topic, "cannot subscribe to the topic on gossip: {e}");
            return;
        }
        self.topics
            .entry(gossip.hash())
            .or_insert_with(|| Subscribed {
                topic,
                subscribers: Vec::new(),
            })
            .subscribers
            .push(deliver);
    }

    /// Publishes `data` (a topic message, encoded) to the members subscribed, and to
    /// this node's own subscribers.
    pub(super) fn publish_topic(
        &mut self,
        topic: Topic,
        (id, data): ([u8; 16], Vec<u8>),
        message: ciborium::Value,
    ) -> Result<(), MeshError> {
        let gossip = gossip_topic(&topic);
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(gossip.clone(), data)
        {
            // At most once, best effort: no subscriber but this node is not a failure.
            Ok(_) | Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {}
            Err(e) => {
                return Err(MeshError::Gossip {
                    reason: e.to_string(),
                });
            }
        }
        let local = TopicMessage {
            topic,
            from: *self.swarm.local_peer_id(),
            id,
            message,
        };
        self.deliver(&gossip.hash(), local);
        Ok(())
    }

    /// Whether `message` is on a topic of `crate::topics`; if so it is handled here.
    pub(super) fn on_topic_gossip(&mut self, message: &gossipsub::Message) -> bool {
        let Some(subscribed) = self.topics.get(&message.topic) else {
            return false;
        };
        let Some(author) = message.source else {
            debug!("ignoring an unsigned topic message");
            return true;
        };
        if self.members.admitted(&author).is_none() {
            debug!(%author, "ignoring a topic message from a peer that is not admitted");
            return true;
        }
        let Some((id, value)) = decode(&message.data) else {
            debug!(%author, topic = %subscribed.topic, "ignoring a malformed topic message");
            return true;
        };
        let received = TopicMessage {
            topic: subscribed.topic.clone(),
            from: author,
            id,
            message: value,
        };
        let hash = message.topic.clone();
        self.deliver(&hash, received);
        true
    }

    fn deliver(&mut self, hash: &gossipsub::TopicHash, message: TopicMessage) {
        let Some(subscribed) = self.topics.get_mut(hash) else {
            return;
        };
        subscribed.subscribers.retain(|subscriber| {
            match subscriber.try_send(message.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    warn!(topic = %message.topic, "a subscriber is behind; dropping a topic message (gossip delivers at most once)");
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }
}
