//! Mesh names (`spec/trust.md`, "Mesh names"): the message that carries a run of one
//! publisher's chain of one name (on gossip and in the DHT), the DHT key of a chain, and
//! a node's trust policy: whose publications of which names it believes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{NameChain, PublicKey, Publication, Signed, TrustError};
use crate::value;

/// The most bytes a chain message may have (`spec/trust.md`): at about 250 bytes a
/// publication, some 1,000 publications of one name by one publisher. Each node keeps
/// chains for others in the DHT, in memory, so this bounds what members can make it
/// hold (with `spore-mesh`'s limit on the number of chains).
pub const MAX_CHAIN_MESSAGE_BYTES: usize = 256 * 1024;

/// Consecutive publications of one name by one publisher, each following the one before
/// (`previous` is its hash): a whole chain, or its latest records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRun {
    records: Vec<Signed<Publication>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    records: Vec<serde_bytes::ByteBuf>,
}

impl ChainRun {
    /// The run of `records`, if they are consecutive publications of one name by one
    /// publisher, each following the one before.
    pub fn new(records: Vec<Signed<Publication>>) -> Result<ChainRun, TrustError> {
        let malformed = |why: String| TrustError::Malformed {
            kind: "chain message",
            why,
        };
        let Some(first) = records.first() else {
            return Err(malformed("it holds no publication".into()));
        };
        let (name, publisher) = (&first.body().name, first.body().publisher);
        for pair in records.windows(2) {
            let (before, after) = (pair[0].body(), pair[1].body());
            if after.name != *name || after.publisher != publisher {
                return Err(malformed(format!(
                    "it mixes publications of `{name}` by {publisher} with others"
                )));
            }
            if after.seq != before.seq + 1 || after.previous != Some(pair[0].hash()) {
                return Err(TrustError::BrokenChain {
                    name: name.clone(),
                    seq: after.seq,
                });
            }
        }
        Ok(ChainRun { records })
    }

    /// The run a chain message holds, every record verified.
    pub fn from_bytes(bytes: &[u8]) -> Result<ChainRun, TrustError> {
        let malformed = |why: String| TrustError::Malformed {
            kind: "chain message",
            why,
        };
        if bytes.len() > MAX_CHAIN_MESSAGE_BYTES {
            return Err(malformed(format!(
                "{} bytes is over the limit of {MAX_CHAIN_MESSAGE_BYTES}",
                bytes.len()
            )));
        }
        let wire: Wire = value::decode_as(bytes).map_err(|e| malformed(e.to_string()))?;
        if value::to_canonical(&wire).map_err(|e| malformed(e.to_string()))? != bytes {
            return Err(malformed("its CBOR is not in canonical form".into()));
        }
        let records = wire
            .records
            .iter()
            .map(|record| Signed::<Publication>::from_bytes(record))
            .collect::<Result<Vec<_>, _>>()?;
        ChainRun::new(records)
    }

    /// The chain message: the canonical CBOR map `{"records": [bytes, ...]}`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let wire = Wire {
            records: self
                .records
                .iter()
                .map(|r| serde_bytes::ByteBuf::from(r.as_bytes().to_vec()))
                .collect(),
        };
        value::to_canonical(&wire).expect("a list of byte strings encodes")
    }

    /// The run of the latest records of `chain` whose message fits in `max_bytes` (at
    /// least the latest record); `None` for an empty chain.
    pub fn latest_of(chain: &NameChain, max_bytes: usize) -> Option<ChainRun> {
        let records = chain.records();
        let mut start = records.len().checked_sub(1)?;
        // Each record costs its bytes and a byte-string head of at most 5 bytes.
        let mut size = 16 + records[start].as_bytes().len() + 5;
        while start > 0 && size + records[start - 1].as_bytes().len() + 5 <= max_bytes {
            start -= 1;
            size += records[start].as_bytes().len() + 5;
        }
        Some(ChainRun {
            records: records[start..].to_vec(),
        })
    }

    pub fn records(&self) -> &[Signed<Publication>] {
        &self.records
    }

    pub fn name(&self) -> &str {
        &self.records[0].body().name
    }

    pub fn publisher(&self) -> PublicKey {
        self.records[0].body().publisher
    }

    /// The number of its first record (1: the run is a whole chain).
    pub fn first_seq(&self) -> u64 {
        self.records[0].body().seq
    }
}

impl NameChain {
    /// Takes in a run of this chain: records it already holds are passed over, the rest
    /// appended in order. Returns how many were appended, or why the run is refused: a
    /// run that ends before the latest record held is `replayed`; one that starts past
    /// the next record is `broken_chain` (the whole chain is needed).
    pub fn accept_run(&mut self, run: &ChainRun) -> Result<usize, TrustError> {
        let last = run.records().last().expect("a run is not empty");
        let held = self.records().len() as u64;
        if last.body().seq < held && self.records()[(last.body().seq - 1) as usize] == *last {
            return Err(TrustError::Replayed {
                name: run.name().to_owned(),
                publisher: run.publisher(),
                seq: last.body().seq,
                latest: held,
            });
        }
        let mut appended = 0;
        for record in run.records() {
            let seq = record.body().seq;
            let held = self.records().len() as u64;
            if seq < held && self.records()[(seq - 1) as usize] == *record {
                continue;
            }
            if self.accept(record.clone())? == super::Accepted::Appended {
                appended += 1;
            }
        }
        Ok(appended)
    }
}

/// The DHT key of `publisher`'s chain of `name`: `"spore/name/"`, the publisher's 32
/// key bytes, then the name in UTF-8.
pub fn chain_key(publisher: &PublicKey, name: &str) -> Vec<u8> {
    let mut key = b"spore/name/".to_vec();
    key.extend_from_slice(publisher.as_bytes());
    key.extend_from_slice(name.as_bytes());
    key
}

/// Which names a rule of a trust policy covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamePattern {
    /// `billing.charge`: that name.
    Exact(String),
    /// `billing.*`: every name starting `billing.` (held without the `*`).
    Prefix(String),
    /// `*`: every name.
    Any,
}

impl NamePattern {
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Exact(exact) => exact == name,
            NamePattern::Prefix(prefix) => name.starts_with(prefix.as_str()),
            NamePattern::Any => true,
        }
    }

    /// Orders patterns from least to most specific: `*`, then prefixes by length, then
    /// exact names.
    fn specificity(&self) -> (u8, usize) {
        match self {
            NamePattern::Any => (0, 0),
            NamePattern::Prefix(prefix) => (1, prefix.len()),
            NamePattern::Exact(_) => (2, 0),
        }
    }
}

impl FromStr for NamePattern {
    type Err = String;

    fn from_str(text: &str) -> Result<NamePattern, String> {
        if text == "*" {
            return Ok(NamePattern::Any);
        }
        let (name, pattern): (&str, fn(String) -> NamePattern) = match text.strip_suffix(".*") {
            Some(prefix) => (prefix, |p| NamePattern::Prefix(format!("{p}."))),
            None => (text, NamePattern::Exact),
        };
        name.parse::<crate::Name>().map_err(|e| {
            format!("`{text}` is not a name pattern (a name, `prefix.*` or `*`): {e}")
        })?;
        Ok(pattern(name.to_owned()))
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NamePattern::Exact(name) => f.write_str(name),
            NamePattern::Prefix(prefix) => write!(f, "{prefix}*"),
            NamePattern::Any => f.write_str("*"),
        }
    }
}

/// Whose publications of which names a node believes: rules of a pattern and the
/// publishers trusted for it, in the order given. The most specific pattern that matches
/// a name decides alone (`billing.charge` over `billing.*` over `*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamePolicy {
    rules: Vec<(NamePattern, Vec<PublicKey>)>,
}

impl NamePolicy {
    pub fn new(rules: Vec<(NamePattern, Vec<PublicKey>)>) -> NamePolicy {
        NamePolicy { rules }
    }

    /// The publishers believed for `name`, most preferred first; empty when no rule
    /// covers it.
    pub fn publishers_for(&self, name: &str) -> &[PublicKey] {
        self.rules
            .iter()
            .filter(|(pattern, _)| pattern.matches(name))
            .max_by_key(|(pattern, _)| pattern.specificity())
            .map_or(&[], |(_, publishers)| publishers.as_slice())
    }

    pub fn rules(&self) -> &[(NamePattern, Vec<PublicKey>)] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hash;
    use crate::trust::SecretKey;

    fn chain_of(key: &SecretKey, name: &str, targets: &[&str]) -> Vec<Signed<Publication>> {
        let mut records: Vec<Signed<Publication>> = Vec::new();
        for (seq, target) in (1..).zip(targets) {
            let body = Publication {
                publisher: key.public(),
                name: name.into(),
                target: Some(Hash::of(target.as_bytes()).to_hex()),
                seq,
                at_ms: seq * 1000,
                previous: records.last().map(Signed::hash),
            };
            records.push(Signed::sign(body, key).unwrap());
        }
        records
    }

    #[test]
    fn a_run_travels_as_its_message_and_is_taken_in_by_a_chain_holding_part_of_it() {
        let key = SecretKey::from_seed([7; 32]);
        let records = chain_of(&key, "billing.charge", &["a", "b", "c", "d"]);
        let whole = ChainRun::new(records.clone()).unwrap();
        let bytes = whole.to_bytes();
        assert_eq!(ChainRun::from_bytes(&bytes).unwrap(), whole);

        let mut chain = NameChain::default();
        chain.accept(records[0].clone()).unwrap();
        chain.accept(records[1].clone()).unwrap();
        assert_eq!(chain.accept_run(&whole), Ok(2));
        assert_eq!(chain.accept_run(&whole), Ok(0));
        assert_eq!(chain.records().len(), 4);

        let old = ChainRun::new(records[..2].to_vec()).unwrap();
        assert_eq!(chain.accept_run(&old).unwrap_err().code(), "replayed");

        let tail = ChainRun::latest_of(&chain, 700).unwrap();
        assert!(tail.first_seq() > 1 && tail.to_bytes().len() <= 700);
        let mut fresh = NameChain::default();
        assert_eq!(
            fresh.accept_run(&tail).unwrap_err().code(),
            "broken_chain",
            "a chain that holds nothing needs the whole chain"
        );
    }

    #[test]
    fn a_run_that_skips_mixes_or_is_not_canonical_is_refused() {
        let key = SecretKey::from_seed([7; 32]);
        let records = chain_of(&key, "billing.charge", &["a", "b", "c"]);
        let skipping = vec![records[0].clone(), records[2].clone()];
        assert_eq!(ChainRun::new(skipping).unwrap_err().code(), "broken_chain");
        let other = chain_of(&key, "billing.refund", &["a", "b"]);
        assert_eq!(
            ChainRun::new(vec![records[0].clone(), other[1].clone()])
                .unwrap_err()
                .code(),
            "malformed"
        );
        let mut bytes = ChainRun::new(records).unwrap().to_bytes();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(
            ChainRun::from_bytes(&bytes).unwrap_err().code(),
            "bad_signature",
            "a tampered record in a run is refused"
        );
    }

    #[test]
    fn the_most_specific_pattern_that_matches_decides_alone() {
        let keys: Vec<PublicKey> = (1..=3)
            .map(|n| SecretKey::from_seed([n; 32]).public())
            .collect();
        let policy = NamePolicy::new(vec![
            ("*".parse().unwrap(), vec![keys[0]]),
            ("billing.*".parse().unwrap(), vec![keys[1]]),
            ("billing.charge".parse().unwrap(), vec![keys[2], keys[1]]),
        ]);
        assert_eq!(policy.publishers_for("math.add"), &keys[..1]);
        assert_eq!(policy.publishers_for("billing.refund"), &keys[1..2]);
        assert_eq!(policy.publishers_for("billing.charge"), &[keys[2], keys[1]]);
        assert!(NamePolicy::default().publishers_for("x").is_empty());
        assert!("billing".parse::<NamePattern>().is_ok());
        assert!("bill*".parse::<NamePattern>().is_err());
        assert!("*.charge".parse::<NamePattern>().is_err());
        assert!(!NamePattern::Prefix("billing.".into()).matches("billingx"));
    }
}
