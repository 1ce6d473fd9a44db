//! What `verify`, `verify --repair`, `gc` and `rm` answer, as JSON: one place, so that
//! the CLI's direct path and the HTTP API give the same answer (docs/api.md).

use serde_json::{Value, json};
use spore_node::{Damage, Damaged, Node, NodeError, SalvageReport, VerifyReport};

/// Checks every record; with `repair`, drops what is damaged and says what was lost.
pub fn verify(node: &Node, repair: bool) -> Result<Value, NodeError> {
    if repair {
        let report = node.repair()?;
        Ok(verified(&report.verified, true))
    } else {
        Ok(verified(&node.verify()?, false))
    }
}

fn verified(report: &VerifyReport, repaired: bool) -> Value {
    json!({
        "checked": {
            "modules": report.modules,
            "names": report.names,
            "name_events": report.name_events,
            "kv_records": report.kv_records,
        },
        "rebuilt": report.rebuilt,
        "damaged": report.damaged.iter().map(damage).collect::<Vec<_>>(),
        "repaired": repaired,
    })
}

/// One damaged item: what a person reads, and what a program matches on.
fn damage(damage: &Damage) -> Value {
    item(&damage.item, &damage.what)
}

fn item(item: &Damaged, what: &str) -> Value {
    let mut out = json!({ "item": item.to_string(), "what": what });
    let fields = match item {
        Damaged::Module(hash) => json!({ "kind": "module", "hash": hash }),
        Damaged::Name(name) => json!({ "kind": "name", "name": name }),
        Damaged::NameHistory { name, seq } => {
            json!({ "kind": "name_history", "name": name, "seq": seq })
        }
        Damaged::Kv { namespace, key } => {
            json!({ "kind": "kv", "namespace": namespace, "key": key })
        }
        Damaged::Record { table, key } => json!({ "kind": "record", "table": table, "key": key }),
        Damaged::Index(path) => json!({ "kind": "index", "path": path }),
        _ => json!({ "kind": "other" }),
    };
    if let (Some(out), Some(fields)) = (out.as_object_mut(), fields.as_object()) {
        out.extend(fields.clone());
    }
    out
}

/// What salvaging an index that could not be opened kept and lost.
pub fn salvaged(report: &SalvageReport) -> Value {
    json!({
        "damaged_index": report.damaged_index,
        "records_kept": report.records_kept,
        "read_from": report.read_from.as_str(),
        "modules": report.modules,
        "lost": report.lost.iter().map(|(i, what)| item(i, what)).collect::<Vec<_>>(),
    })
}

/// Removes what nothing refers to.
pub fn gc(node: &Node) -> Result<Value, NodeError> {
    let report = node.gc()?;
    Ok(json!({
        "modules": report.modules,
        "artifacts": report.artifacts,
        "memo_entries": report.memo_entries,
    }))
}

/// Removes a module (and, with `force`, the names pointing into it).
pub fn remove(node: &Node, reference: &str, force: bool) -> Result<Value, NodeError> {
    let removed = node.remove_module(reference, force)?;
    Ok(json!({ "module": removed.hash, "names": removed.names }))
}
