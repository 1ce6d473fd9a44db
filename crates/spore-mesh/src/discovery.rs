//! What the DHT and gossip say about who holds what (`spec/wire.md`, discovery).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use libp2p::PeerId;
use libp2p::kad::{QueryId, RecordKey};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The Kademlia key a holder of module `hash` provides.
pub(crate) fn module_key(hash: &spore_core::Hash) -> RecordKey {
    let mut key = b"spore/module/".to_vec();
    key.extend_from_slice(hash.as_bytes());
    RecordKey::new(&key)
}

/// The Kademlia key a node serving ability `name` for others provides.
pub(crate) fn ability_key(name: &str) -> RecordKey {
    let mut key = b"spore/ability/".to_vec();
    key.extend_from_slice(name.as_bytes());
    RecordKey::new(&key)
}

/// A gossip announcement of a publication: hashes travel, modules never do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Announcement {
    pub hash: spore_core::Hash,
    /// The announcing node's peer id, as text.
    pub peer: String,
}

impl Announcement {
    /// The gossip message's data: the CBOR map `{hash, peer}`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut data = Vec::new();
        ciborium::into_writer(self, &mut data).expect("encoding to a Vec cannot fail");
        data
    }

    pub fn from_bytes(data: &[u8]) -> Option<Self> {
        ciborium::from_reader(data).ok()
    }
}

/// How long a provider lookup keeps running for more providers once it found one.
/// Kademlia would otherwise walk on until its query timeout.
pub(crate) const PROVIDER_GRACE: Duration = Duration::from_millis(300);

/// A running `get_providers` query and who waits for its answers.
pub(crate) struct ProviderQuery {
    /// Receives each provider once, as it is found; closed when the query ends.
    pub found: mpsc::UnboundedSender<PeerId>,
    pub seen: HashSet<PeerId>,
    pub deadline: Instant,
    /// Set once the first provider arrived: the query ends at this instant.
    pub grace_until: Option<Instant>,
}

impl ProviderQuery {
    pub fn ends_at(&self) -> Instant {
        self.grace_until
            .map_or(self.deadline, |g| g.min(self.deadline))
    }
}

#[derive(Default)]
pub(crate) struct ProviderQueries {
    queries: HashMap<QueryId, ProviderQuery>,
}

impl ProviderQueries {
    pub fn insert(&mut self, id: QueryId, query: ProviderQuery) {
        self.queries.insert(id, query);
    }

    pub fn get_mut(&mut self, id: &QueryId) -> Option<&mut ProviderQuery> {
        self.queries.get_mut(id)
    }

    /// Forgets the query; dropping its sender tells the waiter it is over.
    pub fn remove(&mut self, id: &QueryId) {
        self.queries.remove(id);
    }

    pub fn next_wake(&self) -> Option<Instant> {
        self.queries.values().map(ProviderQuery::ends_at).min()
    }

    /// Queries whose deadline or grace period is over, or whose waiter went away.
    pub fn expired(&self, now: Instant) -> Vec<QueryId> {
        self.queries
            .iter()
            .filter(|(_, q)| q.ends_at() <= now || q.found.is_closed())
            .map(|(id, _)| *id)
            .collect()
    }
}

/// At most this many of the offers of [`Offers`] run at once: as many as libp2p-kad's
/// own republication runs (its `JOBS_MAX_QUERIES`).
const OFFERS_IN_FLIGHT: usize = 100;

/// Provider records to offer to the peers closest to their keys, a bounded number of
/// lookups at a time. Offering all of a node's records at once (10,000 modules: 10,000
/// lookups started together) left each so little of the node that 70,131 of 100,000
/// timed out (`tests/mesh/providers.rs`, 10 nodes), and those records stayed unknown
/// to the DHT until the next republication, hours later.
#[derive(Default)]
pub(crate) struct Offers {
    pending: VecDeque<RecordKey>,
    in_flight: HashSet<QueryId>,
}

impl Offers {
    pub fn queue(&mut self, keys: impl IntoIterator<Item = RecordKey>) {
        self.pending.extend(keys);
    }

    /// The next key to offer, if one waits and fewer than [`OFFERS_IN_FLIGHT`] run.
    pub fn next(&mut self) -> Option<RecordKey> {
        if self.in_flight.len() >= OFFERS_IN_FLIGHT {
            return None;
        }
        self.pending.pop_front()
    }

    pub fn started(&mut self, id: QueryId) {
        self.in_flight.insert(id);
    }

    /// Whether `id` was one of these offers (then it no longer runs).
    pub fn finished(&mut self, id: &QueryId) -> bool {
        self.in_flight.remove(id)
    }
}

/// Peers that announced a module on gossip, newest hashes kept, oldest forgotten.
pub(crate) struct Hints {
    peers: HashMap<spore_core::Hash, Vec<PeerId>>,
    order: VecDeque<spore_core::Hash>,
}

const MAX_HINTED_HASHES: usize = 4096;
const MAX_PEERS_PER_HINT: usize = 8;

impl Hints {
    pub fn new() -> Self {
        Hints {
            peers: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn insert(&mut self, hash: spore_core::Hash, peer: PeerId) {
        let peers = self.peers.entry(hash).or_insert_with(|| {
            self.order.push_back(hash);
            Vec::new()
        });
        if !peers.contains(&peer) && peers.len() < MAX_PEERS_PER_HINT {
            peers.push(peer);
        }
        while self.order.len() > MAX_HINTED_HASHES {
            if let Some(old) = self.order.pop_front() {
                self.peers.remove(&old);
            }
        }
    }

    pub fn get(&self, hash: &spore_core::Hash) -> Vec<PeerId> {
        self.peers.get(hash).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_spec_prefixes_followed_by_the_raw_hash_or_name() {
        let hash = spore_core::Hash::of(b"m");
        let key = module_key(&hash);
        assert_eq!(&key.as_ref()[..13], b"spore/module/");
        assert_eq!(&key.as_ref()[13..], hash.as_bytes());
        assert_eq!(ability_key("kv").as_ref(), b"spore/ability/kv");
    }

    #[test]
    fn hints_forget_the_oldest_hashes() {
        let mut hints = Hints::new();
        let peer = PeerId::random();
        for i in 0..(MAX_HINTED_HASHES + 10) as u32 {
            hints.insert(spore_core::Hash::of(&i.to_le_bytes()), peer);
        }
        assert!(
            hints
                .get(&spore_core::Hash::of(&0u32.to_le_bytes()))
                .is_empty()
        );
        let last = spore_core::Hash::of(&((MAX_HINTED_HASHES + 9) as u32).to_le_bytes());
        assert_eq!(hints.get(&last), vec![peer]);
    }
}
