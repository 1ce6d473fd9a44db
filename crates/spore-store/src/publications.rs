//! Signed publications of mesh names (`spec/trust.md`), kept as received. The store
//! keeps their bytes in key order (a name, a publisher, a number); the node verifies
//! them and decides what they mean.

use redb::{Durability, ReadableTable};
use spore_core::trust::{Publication, Signed};

use crate::index::PUBLICATIONS;
use crate::{Codebase, StoreError, envelope};

impl Codebase {
    /// Keeps `records`, in one durable step: what a node acknowledges it holds.
    pub fn keep_publications(&self, records: &[Signed<Publication>]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let index = self.index();
        index.write(Durability::Immediate, |txn| {
            let mut table = index.open_table(txn, PUBLICATIONS)?;
            for record in records {
                let key = publication_key(record.body());
                table
                    .insert(
                        key.as_slice(),
                        envelope::seal(PUBLICATIONS, &key, record.as_bytes()).as_slice(),
                    )
                    .map_err(|e| index.err(e))?;
            }
            Ok(())
        })
    }

    /// The bytes of every publication kept whose record opens, in key order: each
    /// publisher's chain of each name in order. A damaged record is left out with a log
    /// line (`spore verify` names it); the chain it was part of ends before it here, and
    /// the mesh can give it again.
    pub fn publications(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let index = self.index();
        index.read(|txn| {
            let Some(table) = index.read_table(txn, PUBLICATIONS)? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for item in table.iter().map_err(|e| index.err(e))? {
                let (key, record) = item.map_err(|e| index.err(e))?;
                match envelope::open(PUBLICATIONS, key.value(), record.value()) {
                    Ok(bytes) => out.push(bytes.to_vec()),
                    Err(why) => tracing::warn!(
                        key = %String::from_utf8_lossy(key.value()).escape_debug(),
                        why,
                        "leaving out a damaged publication"
                    ),
                }
            }
            Ok(out)
        })
    }
}

/// A publication's key: its name, a zero byte (which no name contains), the publisher's
/// 32 key bytes, then its number big-endian, so that one chain is one range, in order.
fn publication_key(body: &Publication) -> Vec<u8> {
    let mut key = body.name.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(body.publisher.as_bytes());
    key.extend_from_slice(&body.seq.to_be_bytes());
    key
}
