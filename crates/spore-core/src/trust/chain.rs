//! A name's publications by one publisher, as a chain (`spec/trust.md`, "Publication"):
//! each record names the hash of the one before, so that a replayed older record, two
//! different records with one number, or a record that skips the chain are told apart
//! and refused, whoever relays them.

use super::{Publication, Signed, TrustError};

/// The chain of one publisher's publications of one name, held so far.
#[derive(Debug, Clone, Default)]
pub struct NameChain {
    records: Vec<Signed<Publication>>,
}

/// What [`NameChain::accept`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// It is the next record: the name now points where it says.
    Appended,
    /// It is the latest record, already held (a relay of it).
    AlreadyHeld,
}

impl NameChain {
    /// The latest record, if any.
    pub fn latest(&self) -> Option<&Signed<Publication>> {
        self.records.last()
    }

    /// Every record held, first first.
    pub fn records(&self) -> &[Signed<Publication>] {
        &self.records
    }

    /// Takes `record` if it is the next of this chain (or the latest again); else says
    /// why not. A chain holds one publisher's records of one name: `record` must be of
    /// the same as those held.
    pub fn accept(&mut self, record: Signed<Publication>) -> Result<Accepted, TrustError> {
        let body = record.body();
        if let Some(first) = self.records.first()
            && (first.body().name != body.name || first.body().publisher != body.publisher)
        {
            return Err(TrustError::Malformed {
                kind: "publication",
                why: format!(
                    "it is {}'s publication of `{}`, not of this chain's name and publisher",
                    body.publisher, body.name
                ),
            });
        }
        let held = self.records.len() as u64;
        let (name, publisher, seq) = (body.name.clone(), body.publisher, body.seq);
        if seq == held + 1 && body.previous == self.latest().map(Signed::hash) {
            self.records.push(record);
            return Ok(Accepted::Appended);
        }
        if seq == 0 || seq > held {
            return Err(TrustError::BrokenChain { name, seq });
        }
        if self.records[(seq - 1) as usize] != record {
            return Err(TrustError::Conflicting {
                name,
                publisher,
                seq,
            });
        }
        if seq == held {
            return Ok(Accepted::AlreadyHeld);
        }
        Err(TrustError::Replayed {
            name,
            publisher,
            seq,
            latest: held,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hash;
    use crate::trust::SecretKey;

    fn publish(
        key: &SecretKey,
        seq: u64,
        previous: Option<Hash>,
        target: &str,
    ) -> Signed<Publication> {
        let body = Publication {
            publisher: key.public(),
            name: "billing.charge".into(),
            target: Some(Hash::of(target.as_bytes()).to_hex()),
            seq,
            at_ms: seq * 1000,
            previous,
        };
        Signed::sign(body, key).unwrap()
    }

    #[test]
    fn a_chain_takes_the_next_record_and_refuses_replays_conflicts_and_gaps_saying_which() {
        let key = SecretKey::from_seed([4; 32]);
        let mut chain = NameChain::default();
        let first = publish(&key, 1, None, "v1");
        let second = publish(&key, 2, Some(first.hash()), "v2");
        assert_eq!(chain.accept(first.clone()), Ok(Accepted::Appended));
        assert_eq!(chain.accept(first.clone()), Ok(Accepted::AlreadyHeld));
        assert_eq!(chain.accept(second.clone()), Ok(Accepted::Appended));
        // The rollback is a new record pointing at the first's target again.
        let rollback = publish(&key, 3, Some(second.hash()), "v1");
        assert_eq!(chain.accept(rollback.clone()), Ok(Accepted::Appended));
        assert_eq!(chain.latest(), Some(&rollback));

        assert_eq!(chain.accept(first).unwrap_err().code(), "replayed");
        let other_second = publish(&key, 2, Some(chain.records()[0].hash()), "evil");
        assert_eq!(
            chain.accept(other_second).unwrap_err().code(),
            "conflicting"
        );
        let skipping = publish(&key, 5, Some(rollback.hash()), "v5");
        assert_eq!(chain.accept(skipping).unwrap_err().code(), "broken_chain");
        let unlinked = publish(&key, 4, Some(Hash::of(b"elsewhere")), "v4");
        assert_eq!(chain.accept(unlinked).unwrap_err().code(), "broken_chain");
        let other_publisher = publish(
            &SecretKey::from_seed([5; 32]),
            4,
            Some(rollback.hash()),
            "v4",
        );
        assert_eq!(
            chain.accept(other_publisher).unwrap_err().code(),
            "malformed"
        );
        assert_eq!(chain.records().len(), 3);
    }
}
