//! Reshaping nested data: order summaries and flattening to dotted paths.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use spore_guest::function;

#[derive(Debug, Deserialize)]
pub struct Order {
    pub customer: Customer,
    pub items: Vec<Item>,
}

#[derive(Debug, Deserialize)]
pub struct Customer {
    pub id: u64,
    pub name: String,
    pub address: Address,
}

#[derive(Debug, Deserialize)]
pub struct Address {
    pub city: String,
}

#[derive(Debug, Deserialize)]
pub struct Item {
    pub sku: String,
    pub qty: u32,
    pub price_cents: u32,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// One entry per customer, by ascending id.
    pub customers: Vec<CustomerTotal>,
    /// Quantity ordered per SKU, over all orders.
    pub skus: BTreeMap<String, u64>,
    pub total_cents: u64,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct CustomerTotal {
    pub id: u64,
    /// Name and city as given in the customer's first order.
    pub name: String,
    pub city: String,
    pub orders: u64,
    pub total_cents: u64,
}

/// Totals per customer and quantities per SKU.
#[function]
fn summarize_orders(orders: Vec<Order>) -> Summary {
    summarize(orders)
}

/// Every leaf of `value` under its dotted path: object keys and array indexes joined by
/// `.` (`{"a": {"b": [{"c": 1}]}}` gives `{"a.b.0.c": 1}`). Empty objects and arrays are
/// leaves, so no information is lost; a scalar at the top has the path `""`.
#[function]
fn flatten(value: Value) -> BTreeMap<String, Value> {
    let mut leaves = BTreeMap::new();
    flatten_into(&mut leaves, &mut String::new(), value);
    leaves
}

pub fn summarize(orders: Vec<Order>) -> Summary {
    let mut customers: BTreeMap<u64, CustomerTotal> = BTreeMap::new();
    let mut skus: BTreeMap<String, u64> = BTreeMap::new();
    // u32 quantities times u32 prices fit in u64, and no input that fits in memory has
    // enough items to overflow a u64 sum.
    let mut total_cents = 0u64;
    for order in orders {
        let order_cents: u64 = order
            .items
            .iter()
            .map(|item| u64::from(item.qty) * u64::from(item.price_cents))
            .sum();
        for item in order.items {
            *skus.entry(item.sku).or_insert(0) += u64::from(item.qty);
        }
        let customer = order.customer;
        let entry = customers
            .entry(customer.id)
            .or_insert_with(|| CustomerTotal {
                id: customer.id,
                name: customer.name,
                city: customer.address.city,
                orders: 0,
                total_cents: 0,
            });
        entry.orders += 1;
        entry.total_cents += order_cents;
        total_cents += order_cents;
    }
    Summary {
        customers: customers.into_values().collect(),
        skus,
        total_cents,
    }
}

fn flatten_into(leaves: &mut BTreeMap<String, Value>, path: &mut String, value: Value) {
    let children: Vec<(String, Value)> = match value {
        Value::Object(map) if !map.is_empty() => map.into_iter().collect(),
        Value::Array(items) if !items.is_empty() => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| (index.to_string(), item))
            .collect(),
        leaf => {
            leaves.insert(path.clone(), leaf);
            return;
        }
    };
    let prefix_len = path.len();
    for (key, child) in children {
        if prefix_len > 0 {
            path.push('.');
        }
        path.push_str(&key);
        flatten_into(leaves, path, child);
        path.truncate(prefix_len);
    }
}
