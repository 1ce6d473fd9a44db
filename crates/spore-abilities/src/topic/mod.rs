//! The `topic` ability (`spec/abilities.md`, "topic"): what a `publish` asks for, and
//! the durable provider, NATS JetStream ([`nats`]). The gossip provider lives with the
//! node, which holds the mesh.

pub mod nats;

use ciborium::Value;
use spore_core::topic::Topic;
use spore_runtime::{AbilityError, ErrorKind, field, text_field};

/// A `publish {topic, message}` request, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    pub topic: Topic,
    pub message: Value,
    /// The message in canonical CBOR, as it travels.
    pub encoded: Vec<u8>,
}

impl Publish {
    /// Reads `operation` and `request`: only `publish`, with a valid topic and a message.
    pub fn parse(operation: &str, request: &Value) -> Result<Publish, AbilityError> {
        if operation != "publish" {
            return Err(AbilityError::new(
                ErrorKind::NotFound,
                format!("the topic ability has no operation `{operation}`"),
            ));
        }
        let topic: Topic = text_field(request, "topic")?
            .parse()
            .map_err(|e: spore_core::topic::TopicError| AbilityError::bad_request(e.to_string()))?;
        let message = field(request, "message")
            .cloned()
            .ok_or_else(|| AbilityError::bad_request("the request needs a `message`"))?;
        let encoded = spore_core::value::encode_canonical(&message)
            .map_err(|e| AbilityError::bad_request(format!("the message: {e}")))?;
        Ok(Publish {
            topic,
            message,
            encoded,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Value::Text(k.into()), v))
                .collect(),
        )
    }

    #[test]
    fn a_publish_needs_a_valid_topic_and_a_message() {
        let ok = Publish::parse(
            "publish",
            &request(vec![
                ("topic", Value::Text("orders.created".into())),
                ("message", Value::Integer(7.into())),
            ]),
        )
        .unwrap();
        assert_eq!(ok.topic.as_str(), "orders.created");
        assert_eq!(ok.encoded, vec![0x07]);

        let kind =
            |operation: &str, request: Value| Publish::parse(operation, &request).unwrap_err().kind;
        assert_eq!(
            kind("send", request(vec![])),
            ErrorKind::NotFound,
            "an unknown operation"
        );
        assert_eq!(
            kind(
                "publish",
                request(vec![("topic", Value::Text("orders.*".into()))])
            ),
            ErrorKind::BadRequest
        );
        assert_eq!(
            kind(
                "publish",
                request(vec![("topic", Value::Text("orders".into()))])
            ),
            ErrorKind::BadRequest,
            "no message"
        );
    }
}
