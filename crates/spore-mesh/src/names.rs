//! Mesh names on the wire (`spec/trust.md`, "Mesh names"): chains of signed
//! publications, spread on gossip (topic `spore/names/1`: a chain's latest records) and
//! kept in the DHT (a value record per publisher and name: the whole chain).
//!
//! The mesh checks what it relays and stores (each record's signature, the chain's
//! links, that a DHT record is the chain its key names, from its start); which
//! publishers to believe for which names is the node's business, not the mesh's.

use std::collections::HashMap;

use libp2p::PeerId;
use libp2p::kad::{QueryId, RecordKey};
use spore_core::trust::{ChainRun, PublicKey, chain_key};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// The gossip topic of mesh names.
pub(crate) const NAMES_TOPIC: &str = "spore/names/1";

/// At most this many bytes of a chain's latest records travel on gossip (under
/// gossipsub's 64 KiB message limit, with room for its envelope); a node that misses
/// the records before them finds the whole chain in the DHT.
pub(crate) const GOSSIP_RUN_BYTES: usize = 60 * 1024;

/// The DHT key of `publisher`'s chain of `name`.
pub(crate) fn record_key(publisher: &PublicKey, name: &str) -> RecordKey {
    RecordKey::new(&chain_key(publisher, name))
}

/// The whole chain a DHT value record under `key` holds, if it is one: verified, from
/// its first record, and the chain its key names.
pub(crate) fn check_record(key: &RecordKey, value: &[u8]) -> Result<ChainRun, String> {
    let run = ChainRun::from_bytes(value).map_err(|e| e.to_string())?;
    if run.first_seq() != 1 {
        return Err(format!(
            "it holds `{}` from publication {}, not from its first",
            run.name(),
            run.first_seq()
        ));
    }
    if key.as_ref() != chain_key(&run.publisher(), run.name()).as_slice() {
        return Err(format!(
            "it holds {}'s chain of `{}`, which is kept under another key",
            run.publisher(),
            run.name()
        ));
    }
    Ok(run)
}

/// Whether `offered` should replace `held` under one key: it must extend it (a chain
/// only grows; a different record at a held number is a conflict, and the held chain
/// stays).
pub(crate) fn extends(held: &ChainRun, offered: &ChainRun) -> bool {
    let (held, offered) = (held.records(), offered.records());
    offered.len() > held.len() && offered[..held.len()] == *held
}

/// A running lookup of one chain in the DHT.
pub(crate) struct ChainQuery {
    pub reply: oneshot::Sender<Option<ChainRun>>,
    pub key: RecordKey,
    /// The longest valid chain found so far.
    pub best: Option<ChainRun>,
    pub deadline: Instant,
}

/// The chain lookups in flight.
#[derive(Default)]
pub(crate) struct ChainQueries {
    queries: HashMap<QueryId, ChainQuery>,
}

impl ChainQueries {
    pub fn insert(&mut self, id: QueryId, query: ChainQuery) {
        self.queries.insert(id, query);
    }

    /// Takes a record a peer (or this node's own store: `from` is `None`) gave for
    /// query `id`, keeping the longest valid chain.
    pub fn found(&mut self, id: &QueryId, from: Option<PeerId>, value: &[u8]) {
        let Some(query) = self.queries.get_mut(id) else {
            return;
        };
        match check_record(&query.key, value) {
            Ok(run) => {
                if query.best.as_ref().is_none_or(|best| extends(best, &run)) {
                    query.best = Some(run);
                }
            }
            Err(why) => tracing::info!(?from, "ignoring a DHT record of a name: {why}"),
        }
    }

    /// Ends query `id`, answering with the best chain found.
    pub fn finish(&mut self, id: &QueryId) {
        if let Some(query) = self.queries.remove(id) {
            let _ = query.reply.send(query.best);
        }
    }

    /// The queries past their deadline, to be finished.
    pub fn expired(&self, now: Instant) -> Vec<QueryId> {
        self.queries
            .iter()
            .filter(|(_, q)| q.deadline <= now)
            .map(|(id, _)| *id)
            .collect()
    }
}

#[cfg(test)]
mod tests;
