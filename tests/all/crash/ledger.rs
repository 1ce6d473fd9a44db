//! What was acknowledged before a kill, what may have landed without an answer, and the
//! check that a reopened home holds every acknowledged item.
//!
//! An item is a module (by hash), a name, a `kv` key or a visit counter. A write that was
//! answered (exit 0, HTTP 200) must be found after any later kill; one that was cut off
//! may be found or not. Whatever a reader finds after the home was reopened is what every
//! later reader must find too, so each check settles the item on what it found.

use std::collections::BTreeMap;

use serde_json::Value;

/// Reads a home: through the CLI (each read a process of its own) or a running node's API.
pub trait Reader {
    /// Every module with its manifest and names, as `spore --json ls` prints them.
    fn modules(&mut self) -> Result<Value, String>;
    /// `Ok` when every stored record checks out (`spore verify`).
    fn verify(&mut self) -> Result<(), String>;
    /// The result of calling `reference` with `args`.
    fn invoke(&mut self, reference: &str, args: &[Value]) -> Result<Value, String>;
}

/// What a reader may find for one item.
#[derive(Debug, Default)]
struct Slot {
    /// The last acknowledged value; `None`: absent, never acknowledged.
    acked: Option<Value>,
    /// Values written after it without an acknowledgement.
    pending: Vec<Value>,
}

impl Slot {
    fn acknowledge(&mut self, value: Value) {
        self.acked = Some(value);
        self.pending.clear();
    }

    fn attempt(&mut self, value: Value) {
        self.pending.push(value);
    }

    fn allows(&self, found: Option<&Value>) -> bool {
        match found {
            None => self.acked.is_none(),
            Some(found) => self.acked.as_ref() == Some(found) || self.pending.contains(found),
        }
    }

    fn settle(&mut self, found: Option<Value>) {
        self.acked = found;
        self.pending.clear();
    }
}

/// What one check found wrong in a home that opened.
#[derive(Debug, Default)]
pub struct Findings {
    /// Acknowledged items missing or different, one line each.
    pub lost: Vec<String>,
    /// Why `verify` failed, if it did.
    pub verify_failed: Option<String>,
}

/// Every item of one home.
pub struct Ledger {
    modules: BTreeMap<String, Slot>,
    names: BTreeMap<String, Slot>,
    kv: BTreeMap<String, Slot>,
    /// Page → the highest count a `hit` answered: the counter is at least that.
    counters: BTreeMap<String, u64>,
    /// `HASH:load` of the telemetry module: reads one `kv` key.
    kv_load: String,
    /// `HASH:count` of the visits module: reads one counter.
    counter_count: String,
}

const PRESENT: Value = Value::Bool(true);

impl Ledger {
    pub fn new(telemetry: &str, visits: &str) -> Ledger {
        Ledger {
            modules: BTreeMap::new(),
            names: BTreeMap::new(),
            kv: BTreeMap::new(),
            counters: BTreeMap::new(),
            kv_load: format!("{telemetry}:load"),
            counter_count: format!("{visits}:count"),
        }
    }

    /// Whether the module `hash` was acknowledged (or found after a kill).
    pub fn has_module(&self, hash: &str) -> bool {
        self.modules
            .get(hash)
            .is_some_and(|slot| slot.acked.is_some())
    }

    /// The acknowledged modules' hashes.
    pub fn modules(&self) -> Vec<String> {
        self.modules
            .iter()
            .filter(|(_, slot)| slot.acked.is_some())
            .map(|(hash, _)| hash.clone())
            .collect()
    }

    /// A publish of `hash` that gives `names` (name → `hash:function`).
    pub fn publish(&mut self, hash: &str, names: &[(String, String)], acked: bool) {
        let slot = self.modules.entry(hash.to_owned()).or_default();
        if acked {
            slot.acknowledge(PRESENT);
        } else if slot.acked.is_none() {
            slot.attempt(PRESENT);
        }
        for (name, target) in names {
            self.set_name(name, target, acked);
        }
    }

    pub fn set_name(&mut self, name: &str, target: &str, acked: bool) {
        let slot = self.names.entry(name.to_owned()).or_default();
        let target = Value::from(target);
        if acked {
            slot.acknowledge(target);
        } else {
            slot.attempt(target);
        }
    }

    pub fn put(&mut self, key: &str, value: Value, acked: bool) {
        let slot = self.kv.entry(key.to_owned()).or_default();
        if acked {
            slot.acknowledge(value);
        } else {
            slot.attempt(value);
        }
    }

    /// A `hit` of `page` answered with `count`.
    pub fn hit(&mut self, page: &str, count: u64) {
        let least = self.counters.entry(page.to_owned()).or_default();
        *least = (*least).max(count);
    }

    /// A `hit` of `page` whose answer never came.
    pub fn hit_attempted(&mut self, page: &str) {
        self.counters.entry(page.to_owned()).or_default();
    }

    /// A read of `key` that answered `found` (null: absent): it must be allowed, and it
    /// settles the key. Returns what is wrong, if anything.
    pub fn read(&mut self, key: &str, found: Value) -> Option<String> {
        let slot = self.kv.entry(key.to_owned()).or_default();
        let found = (!found.is_null()).then_some(found);
        let wrong = (!slot.allows(found.as_ref())).then(|| {
            format!(
                "kv {key}: a read found {found:?}, acknowledged {:?}",
                slot.acked
            )
        });
        slot.settle(found);
        wrong
    }

    /// Checks every item through `reader`; `Err` if the home does not open (its modules
    /// cannot be listed).
    pub fn check(&mut self, reader: &mut dyn Reader) -> Result<Findings, String> {
        let listing = reader.modules()?;
        let mut findings = Findings::default();
        let (modules, names) = parse_listing(&listing)?;
        for (hash, slot) in &mut self.modules {
            let found = modules.contains(hash).then_some(PRESENT);
            if !slot.allows(found.as_ref()) {
                findings.lost.push(format!("module {hash} is not listed"));
            }
            slot.settle(found);
        }
        for (name, slot) in &mut self.names {
            let found = names.get(name).cloned().map(Value::from);
            if !slot.allows(found.as_ref()) {
                findings.lost.push(format!(
                    "name {name}: found {found:?}, acknowledged {:?}",
                    slot.acked
                ));
            }
            slot.settle(found);
        }
        if let Err(error) = reader.verify() {
            findings.verify_failed = Some(error);
        }
        for (key, slot) in &mut self.kv {
            match reader.invoke(&self.kv_load, &[Value::from(key.as_str())]) {
                Ok(found) => {
                    let found = (!found.is_null()).then_some(found);
                    if !slot.allows(found.as_ref()) {
                        findings.lost.push(format!(
                            "kv {key}: found {found:?}, acknowledged {:?}",
                            slot.acked
                        ));
                    }
                    slot.settle(found);
                }
                Err(error) if slot.acked.is_some() => {
                    findings
                        .lost
                        .push(format!("kv {key}: reading it failed: {error}"));
                }
                // Nothing acknowledged, and nothing read: the write did not land.
                Err(_) => slot.settle(None),
            }
        }
        for (page, least) in &mut self.counters {
            match reader.invoke(&self.counter_count, &[Value::from(page.as_str())]) {
                Ok(found) => {
                    let found = found.as_u64().unwrap_or(0);
                    if found < *least {
                        findings.lost.push(format!(
                            "counter {page}: {found}, but a hit answered {least}"
                        ));
                    }
                    *least = found;
                }
                Err(error) if *least > 0 => {
                    findings
                        .lost
                        .push(format!("counter {page}: reading it failed: {error}"));
                }
                Err(_) => {}
            }
        }
        Ok(findings)
    }
}

/// The module hashes and the names (name → `hash:function`) of a listing.
type Listing = (Vec<String>, BTreeMap<String, String>);

fn parse_listing(listing: &Value) -> Result<Listing, String> {
    let modules = listing
        .as_array()
        .ok_or_else(|| format!("the listing is not an array: {listing}"))?;
    let mut hashes = Vec::new();
    let mut names = BTreeMap::new();
    for module in modules {
        let hash = module["manifest"]["module"]
            .as_str()
            .ok_or_else(|| format!("a module without a hash: {module}"))?;
        hashes.push(hash.to_owned());
        for entry in module["names"].as_array().into_iter().flatten() {
            // `[name, target]`, or `{name, target}`.
            let (name, target) = match entry {
                Value::Array(pair) if pair.len() == 2 => (&pair[0], &pair[1]),
                _ => (&entry["name"], &entry["target"]),
            };
            if let (Some(name), Some(target)) = (name.as_str(), target.as_str()) {
                names.insert(name.to_owned(), target.to_owned());
            }
        }
    }
    Ok((hashes, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unacknowledged_write_may_be_found_or_not_an_acknowledged_one_must_be() {
        let mut slot = Slot::default();
        slot.attempt(Value::from(1));
        assert!(slot.allows(None) && slot.allows(Some(&Value::from(1))));
        slot.acknowledge(Value::from(2));
        assert!(!slot.allows(None) && !slot.allows(Some(&Value::from(1))));
        slot.attempt(Value::from(3));
        assert!(slot.allows(Some(&Value::from(2))) && slot.allows(Some(&Value::from(3))));
        assert!(!slot.allows(None));
    }
}
