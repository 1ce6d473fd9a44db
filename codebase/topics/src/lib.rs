//! Topics: a function that publishes, and subscribers that keep what they receive in
//! `kv` (under `seen/ID`), fail, or stall, so that the tests can watch delivery: at most
//! once over gossip, at least once over NATS JetStream; and one that takes a delivery
//! and does nothing, for the delivery benchmark (benches/jetstream.rs).

use spore_guest::topic::{self, Delivery};
use spore_guest::{Value, function, kv};

/// Publishes `message` on `topic`.
#[function]
fn announce(topic: String, message: Value) -> Result<(), String> {
    topic::publish(&topic, &message).map_err(|e| e.to_string())
}

/// Keeps the delivery under `seen/ID`.
#[function]
fn remember(delivery: Delivery) -> Result<(), String> {
    keep(&delivery)
}

/// Takes the delivery (its argument decoded) and does nothing else: what a delivery
/// costs without a function's own work.
#[function]
fn accept(delivery: Delivery) -> Result<(), String> {
    let _ = delivery;
    Ok(())
}

/// Fails the first two attempts at each message, then keeps it: a durable provider
/// delivers it again.
#[function]
fn flaky(delivery: Delivery) -> Result<(), String> {
    if delivery.delivery < 3 {
        return Err(format!("not on attempt {}", delivery.delivery));
    }
    keep(&delivery)
}

/// Always fails: after its last attempt the message is dead-lettered.
#[function]
fn refuse(delivery: Delivery) -> Result<(), String> {
    Err(format!(
        "refusing {} (attempt {})",
        delivery.id, delivery.delivery
    ))
}

/// Never finishes the first attempt at a message (it runs until its deadline, or until
/// its node is killed), then keeps it.
#[function]
fn stall_first(delivery: Delivery) -> Result<(), String> {
    if delivery.delivery < 2 {
        #[allow(clippy::empty_loop)]
        loop {}
    }
    keep(&delivery)
}

/// Every delivery kept, as `[[id, delivery], ...]` in key order.
#[function]
fn seen() -> Result<Vec<(String, Value)>, String> {
    let keys = kv::list("seen/", None).map_err(|e| e.to_string())?;
    keys.into_iter()
        .map(|key| {
            let value: Value = kv::get(&key)
                .map_err(|e| e.to_string())?
                .unwrap_or(Value::Null);
            Ok((key.trim_start_matches("seen/").to_owned(), value))
        })
        .collect()
}

fn keep(delivery: &Delivery) -> Result<(), String> {
    kv::put(&format!("seen/{}", delivery.id), delivery).map_err(|e| e.to_string())
}
