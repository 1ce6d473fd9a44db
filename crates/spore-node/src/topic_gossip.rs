//! The `topic` ability's `gossip` provider: messages spread across the mesh over
//! gossipsub, at most once and best effort (`spec/abilities.md`, "topic"). It needs the
//! mesh, so it lives with the node; NATS JetStream, the durable provider, is in
//! `spore_abilities::topic::nats`.

use ciborium::Value;
use spore_abilities::topic::Publish;
use spore_mesh::MAX_TOPIC_MESSAGE_BYTES;
use spore_runtime::{AbilityContext, AbilityError, ErrorKind, Provider};

use crate::handle::NodeHandle;

pub(crate) struct GossipTopicProvider {
    pub(crate) node: NodeHandle,
}

impl Provider for GossipTopicProvider {
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
        if publish.encoded.len() > MAX_TOPIC_MESSAGE_BYTES {
            return Err(AbilityError::new(
                ErrorKind::TooLarge,
                format!(
                    "the message is {} bytes encoded; gossip carries at most {MAX_TOPIC_MESSAGE_BYTES} (bind topic to nats for larger ones)",
                    publish.encoded.len()
                ),
            ));
        }
        let node = self.node.get()?;
        let Some(link) = node.mesh.get() else {
            return Err(AbilityError::new(
                ErrorKind::Unavailable,
                "topic is bound to gossip, which needs a running node (`spore node run`)",
            ));
        };
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| {
            AbilityError::new(
                ErrorKind::Internal,
                format!("no random id for the message: {e}"),
            )
        })?;
        let topic = publish.topic.clone();
        link.block_on(link.mesh.publish_topic(publish.topic, publish.message, id))
            .map_err(|e| AbilityError::new(e.kind(), format!("publishing on {topic}: {e}")))?;
        tracing::debug!(%topic, "published on gossip");
        Ok(Value::Null)
    }

    fn describe(&self) -> String {
        "gossip across the mesh (at most once, best effort)".into()
    }
}
