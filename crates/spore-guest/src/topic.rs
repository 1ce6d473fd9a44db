//! The `topic` ability: publish a message to the functions subscribed to a topic, and
//! the [`Delivery`] a subscribed function receives.
//!
//! What delivery promises depends on the node's binding (`spec/abilities.md`): `gossip`
//! at most once, `nats` (JetStream) at least once, so a subscribed function should
//! tolerate seeing a message twice (`delivery` above 1, the same `id`).
//!
//! ```no_run
//! use spore_guest::{function, kv, topic};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Order { id: String, total: u64 }
//!
//! #[function]
//! fn place(order: Order) -> Result<(), String> {
//!     topic::publish("orders.created", &order).map_err(|e| e.to_string())
//! }
//!
//! // In config.toml: [[subscriptions]] topic = "orders.created", function = "shop.on_created"
//! #[function]
//! fn on_created(delivery: topic::Delivery<Order>) -> Result<(), String> {
//!     kv::put(&format!("orders/{}", delivery.message.id), &delivery.message.total)
//!         .map_err(|e| e.to_string())
//! }
//! ```

use serde::{Deserialize, Serialize};

use crate::ability::AbilityError;

spore_guest_macros::ability!(ops = "topic" { publish });

#[derive(Serialize)]
struct Publish<'a, T: ?Sized> {
    topic: &'a str,
    message: &'a T,
}

/// Publishes `message` on `topic` (`orders.created`: dot-separated segments of letters,
/// digits, `_` and `-`). Returns once the node's provider has taken it: handed to gossip,
/// or stored by the stream.
pub fn publish<T: Serialize + ?Sized>(topic: &str, message: &T) -> Result<(), AbilityError> {
    ops::publish(&Publish { topic, message })
}

/// What a subscribed function is called with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery<T = crate::Value> {
    pub topic: String,
    pub message: T,
    /// 1 on the first attempt; more when the message is delivered again.
    pub delivery: u32,
    /// The same on every delivery of one message.
    pub id: String,
}
