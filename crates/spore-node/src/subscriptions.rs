//! Subscriptions (`[[subscriptions]]` of `config.toml`): a function a running node calls
//! with each message published on a topic, through the node's `topic` binding (gossip:
//! at most once; NATS JetStream: at least once). The daemon runs them.

use std::time::Duration;

use spore_core::topic::Topic;

/// One `[[subscriptions]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub topic: Topic,
    /// What it calls: a name (this home's or a trusted mesh name) or a reference,
    /// resolved at each delivery.
    pub function: String,
    /// Each call's deadline.
    pub timeout: Duration,
    /// The NATS durable consumer: nodes subscribing with the same group share the
    /// topic's messages (each goes to one of them). Unused by gossip, where every
    /// subscribed node receives every message.
    pub group: String,
}

/// The group of a subscription that names none: one per topic and function, so that
/// every node running the same subscription shares its work.
pub fn default_group(topic: &Topic, function: &str) -> String {
    let name: String = format!("{topic}-{function}")
        .chars()
        .map(|c| if is_group_char(c) { c } else { '_' })
        .collect();
    format!("spore-{name}")
}

/// Characters a group (a NATS consumer name) may hold.
pub fn is_group_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_group_is_a_valid_consumer_name_for_any_function() {
        let topic: Topic = "orders.created".parse().unwrap();
        assert_eq!(
            default_group(&topic, "orders.on_created"),
            "spore-orders_created-orders_on_created"
        );
        let hashed = default_group(&topic, &format!("{}:run", "ab".repeat(32)));
        assert!(hashed.chars().all(is_group_char), "{hashed}");
    }
}
