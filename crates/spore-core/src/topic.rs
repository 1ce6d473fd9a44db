//! Topics (`spec/abilities.md`, "topic"): the names functions publish messages under,
//! and the delivery record a subscribed function receives.

use std::fmt;
use std::str::FromStr;

use ciborium::Value;

/// A topic: dot-separated segments of ASCII letters, digits, `_` and `-`
/// (`orders.created`), at most [`Topic::MAX_LEN`] bytes. The same text is a valid NATS
/// subject suffix and part of a gossipsub topic string, so a topic means the same thing
/// to every provider.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Topic(String);

/// Why a text is not a valid topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a valid topic: {reason} (topics look like `orders.created`: dot-separated segments of letters, digits, `_` and `-`)"
)]
pub struct TopicError {
    pub text: String,
    pub reason: &'static str,
}

impl Topic {
    pub const MAX_LEN: usize = 200;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Topic {
    type Err = TopicError;

    fn from_str(text: &str) -> Result<Topic, TopicError> {
        let fail = |reason| {
            Err(TopicError {
                text: text.to_owned(),
                reason,
            })
        };
        if text.is_empty() {
            return fail("it is empty");
        }
        if text.len() > Topic::MAX_LEN {
            return fail("it is longer than 200 bytes");
        }
        for segment in text.split('.') {
            if segment.is_empty() {
                return fail("it has an empty segment");
            }
            if !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return fail("a segment holds something other than letters, digits, `_` and `-`");
            }
        }
        Ok(Topic(text.to_owned()))
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a subscribed function is called with: its one argument, the map
/// `{topic, message, delivery, id}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub topic: Topic,
    pub message: Value,
    /// Which attempt this is: 1 the first time; more when a failed or unfinished one is
    /// delivered again (durable providers only).
    pub delivery: u32,
    /// The message's id from its provider: the same on every delivery of one message.
    pub id: String,
}

impl Delivery {
    /// The record as the function's argument.
    pub fn to_value(&self) -> Value {
        Value::Map(vec![
            (
                Value::Text("topic".into()),
                Value::Text(self.topic.0.clone()),
            ),
            (Value::Text("message".into()), self.message.clone()),
            (
                Value::Text("delivery".into()),
                Value::Integer(self.delivery.into()),
            ),
            (Value::Text("id".into()), Value::Text(self.id.clone())),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_dotted_words_and_nothing_a_subject_or_topic_string_would_read_otherwise() {
        for ok in ["orders", "orders.created", "a-b_c.9", &"x".repeat(200)] {
            assert_eq!(ok.parse::<Topic>().unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "orders.",
            ".orders",
            "a..b",
            "orders.*",
            "orders.>",
            "with space",
            "slash/y",
            "é",
            &"x".repeat(201),
        ] {
            assert!(bad.parse::<Topic>().is_err(), "{bad:?} was accepted");
        }
    }
}
