// Reshaping nested data, as codebase/reshape in Rust: order summaries, and flattening a
// value to dotted paths. Values arrive as spore values (JSON on the command line).

import { Kind, Result, Value } from "spore-sdk";

/** Totals per customer (by ascending id) and quantities per SKU over all orders. */
@spore
export function summarize_orders(orders: Array<Value>): Result<Value, string> {
  const ids = new Array<u64>();
  const customers = new Map<u64, Value>();
  const skus = Value.map();
  let total: u64 = 0;
  for (let i = 0; i < orders.length; i++) {
    const order = orders[i];
    const customer = field(order, "customer", Kind.Map, i);
    const items = field(order, "items", Kind.Array, i);
    if (customer === null || items === null) return Result.err<Value, string>(problem);
    const id = field(customer, "id", Kind.Int, i);
    const name = field(customer, "name", Kind.Text, i);
    const address = field(customer, "address", Kind.Map, i);
    if (id === null || name === null || address === null) return Result.err<Value, string>(problem);
    const city = field(address, "city", Kind.Text, i);
    if (city === null) return Result.err<Value, string>(problem);
    let orderCents: u64 = 0;
    const list = items.items!;
    for (let j = 0; j < list.length; j++) {
      const sku = field(list[j], "sku", Kind.Text, i);
      const qty = field(list[j], "qty", Kind.Int, i);
      const price = field(list[j], "price_cents", Kind.Int, i);
      if (sku === null || qty === null || price === null) return Result.err<Value, string>(problem);
      // u32 quantities and prices, as the Rust version takes: the products fit a u64.
      if (qty.negative || price.negative || qty.magnitude > u32.MAX_VALUE || price.magnitude > u32.MAX_VALUE) {
        return Result.err<Value, string>(`order ${i}: qty and price_cents must be u32`);
      }
      orderCents += qty.magnitude * price.magnitude;
      const before = skus.getValue(sku);
      skus.setValue(sku, Value.uint((before === null ? 0 : before.magnitude) + qty.magnitude));
    }
    const key = id.magnitude;
    if (!customers.has(key)) {
      ids.push(key);
      customers.set(
        key,
        Value.map()
          .set("id", id)
          .set("name", name)
          .set("city", city)
          .set("orders", Value.uint(0))
          .set("total_cents", Value.uint(0)),
      );
    }
    const entry = customers.get(key);
    entry.set("orders", Value.uint(entry.get("orders")!.magnitude + 1));
    entry.set("total_cents", Value.uint(entry.get("total_cents")!.magnitude + orderCents));
    total += orderCents;
  }
  ids.sort((a: u64, b: u64): i32 => (a < b ? -1 : a > b ? 1 : 0));
  const sorted = Value.array();
  for (let i = 0; i < ids.length; i++) sorted.push(customers.get(ids[i]));
  return Result.ok<Value, string>(
    Value.map().set("customers", sorted).set("skus", skus).set("total_cents", Value.uint(total)),
  );
}

let problem = "";

/** `value[name]` when it is there with `kind`; else null, with `problem` saying so. */
function field(value: Value, name: string, kind: Kind, order: i32): Value | null {
  const found = value.get(name);
  if (found === null) {
    problem = `order ${order}: missing field \`${name}\``;
    return null;
  }
  if (found.kind != kind || (kind == Kind.Int && found.negative)) {
    problem = `order ${order}: \`${name}\` has the wrong type`;
    return null;
  }
  return found;
}

/**
 * Every leaf of `value` under its dotted path: map keys and array indexes joined by `.`
 * (`{"a": {"b": [{"c": 1}]}}` gives `{"a.b.0.c": 1}`). Empty maps and arrays are leaves,
 * so no information is lost; a scalar at the top has the path `""`.
 */
@spore
export function flatten(value: Value): Value {
  const leaves = Value.map();
  flattenInto(leaves, "", value);
  return leaves;
}

function flattenInto(leaves: Value, path: string, value: Value): void {
  const prefix = path.length > 0 ? path + "." : "";
  if (value.kind == Kind.Map && value.entries!.length > 0) {
    const entries = value.entries!;
    for (let i = 0; i < entries.length; i++) {
      const key = entries[i].key.asString();
      // JSON objects have text keys; another key is shown by its kind.
      flattenInto(leaves, prefix + (key !== null ? key : `<${entries[i].key.kind}>`), entries[i].value);
    }
  } else if (value.kind == Kind.Array && value.items!.length > 0) {
    const items = value.items!;
    for (let i = 0; i < items.length; i++) flattenInto(leaves, prefix + i.toString(), items[i]);
  } else {
    leaves.set(path, value);
  }
}
