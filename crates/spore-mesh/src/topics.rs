//! Topic messages over gossip (`spec/wire.md`, "Topics"): what the `topic` ability's
//! `gossip` provider publishes and what a node's subscriptions receive. At most once,
//! best effort: nothing is stored or retried here.

use ciborium::Value;
use libp2p::PeerId;
use spore_core::topic::Topic;

/// The gossipsub topic of a topic is this followed by the topic.
pub const TOPIC_PREFIX: &str = "spore/topic/1/";
/// The largest message (encoded) a node publishes: with the id and the map around it,
/// and gossipsub's own framing, it stays under gossipsub's transmit limit.
pub const MAX_TOPIC_MESSAGE_BYTES: usize = 60 * 1024;
/// What the map around a message adds: `a2 62"id" 50<16 bytes> 67"message"`.
pub(crate) const ENVELOPE_BYTES: usize = 29;
/// Messages waiting for one subscription's function; past this the newest are dropped
/// (and logged): at most once, a slow subscriber loses messages rather than the node
/// its memory.
pub(crate) const SUBSCRIBER_QUEUE: usize = 1024;

/// A message received on a topic this node subscribes to.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TopicMessage {
    pub topic: Topic,
    /// The member that published it (this node for its own publications).
    pub from: PeerId,
    /// Distinct for each publication.
    pub id: [u8; 16],
    pub message: Value,
}

impl TopicMessage {
    /// What a subscribed function is given: gossip delivers once, and the delivery's
    /// id is the message's 16 bytes in lowercase hex (`spec/wire.md`, "Topics").
    pub fn delivery(&self) -> spore_core::topic::Delivery {
        spore_core::topic::Delivery {
            topic: self.topic.clone(),
            message: self.message.clone(),
            delivery: 1,
            id: self.id.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

pub(crate) fn gossip_topic(topic: &Topic) -> libp2p::gossipsub::IdentTopic {
    libp2p::gossipsub::IdentTopic::new(format!("{TOPIC_PREFIX}{topic}"))
}

/// The gossip data of a publication: the canonical map `{"id": bytes(16), "message": any}`.
pub(crate) fn encode(id: &[u8; 16], message: &Value) -> Vec<u8> {
    let map = Value::Map(vec![
        (Value::Text("id".into()), Value::Bytes(id.to_vec())),
        (Value::Text("message".into()), message.clone()),
    ]);
    spore_core::value::encode_canonical(&map).expect("a decoded value encodes")
}

/// The id and message of gossip data, if it is that map in canonical form.
pub(crate) fn decode(data: &[u8]) -> Option<([u8; 16], Value)> {
    let Value::Map(pairs) = spore_core::value::decode(data).ok()? else {
        return None;
    };
    let [
        (Value::Text(id_key), Value::Bytes(id)),
        (Value::Text(message_key), message),
    ] = <[(Value, Value); 2]>::try_from(pairs).ok()?
    else {
        return None;
    };
    if id_key != "id" || message_key != "message" {
        return None;
    }
    let id: [u8; 16] = id.try_into().ok()?;
    // Canonical only: one message, one encoding, one message id.
    (encode(&id, &message) == data).then_some((id, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_that_is_not_the_canonical_map_is_refused() {
        let message = Value::Map(vec![(Value::Text("n".into()), Value::Integer(1.into()))]);
        let data = encode(&[7; 16], &message);
        assert_eq!(decode(&data), Some(([7; 16], message.clone())));
        let mut bare = Vec::new();
        ciborium::into_writer(&message, &mut bare).unwrap();
        assert_eq!(data.len(), bare.len() + ENVELOPE_BYTES);
        // Keys swapped (not canonical), a short id, extra keys, not a map.
        let swapped = Value::Map(vec![
            (Value::Text("message".into()), message.clone()),
            (Value::Text("id".into()), Value::Bytes(vec![7; 16])),
        ]);
        let short = Value::Map(vec![
            (Value::Text("id".into()), Value::Bytes(vec![7; 15])),
            (Value::Text("message".into()), message.clone()),
        ]);
        for bad in [swapped, short, Value::Text("hi".into())] {
            let mut bytes = Vec::new();
            ciborium::into_writer(&bad, &mut bytes).unwrap();
            assert_eq!(decode(&bytes), None, "{bad:?}");
        }
        assert_eq!(decode(&data[..data.len() - 1]), None);
    }
}
