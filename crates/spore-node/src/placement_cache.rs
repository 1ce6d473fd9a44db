//! What placement remembers between calls: the peers found serving each set of
//! abilities, and the peers known to hold a module compiled, each for a time to live
//! (`[placement] cache_ttl`, docs/configuration.md).
//!
//! Without it, every placed call asked the DHT again: across links with 50 ms of one-way
//! delay that was about 200 ms before the call itself (issue 13). A peer is forgotten
//! everywhere as soon as a call to it fails for want of reaching it or of its binding;
//! trust is not cached here: every use of a remembered peer is judged again by the mesh
//! (`Mesh::admit`, and the certificate's grants), so a revoked peer is never used.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use spore_core::Hash;
use spore_mesh::PeerId;

/// Sets of abilities remembered at most; past it, expired entries go, then the oldest.
/// A node sees as many sets as its functions' reaches differ: a handful in practice.
const MAX_ABILITY_SETS: usize = 1024;
/// Modules whose compiled holders are remembered at most, pruned the same way.
const MAX_MODULES: usize = 4096;

/// Peers serving abilities, and peers holding modules compiled.
pub(crate) struct PlacementCache {
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Keyed by the abilities a call needs, sorted.
    serving: HashMap<Vec<String>, Found>,
    /// For each module, the peers that ran it, and when they last did.
    compiled: HashMap<Hash, HashMap<PeerId, Instant>>,
}

struct Found {
    peers: Vec<PeerId>,
    at: Instant,
}

/// Peers remembered as serving a set of abilities, and how long ago they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Remembered {
    pub peers: Vec<PeerId>,
    pub age: Duration,
}

impl PlacementCache {
    /// A cache whose entries live `ttl`; zero remembers nothing.
    pub(crate) fn new(ttl: Duration) -> Self {
        PlacementCache {
            ttl,
            state: Mutex::default(),
        }
    }

    /// The peers found serving `abilities` less than the TTL ago, if any.
    pub(crate) fn serving(&self, abilities: &[String], now: Instant) -> Option<Remembered> {
        let key = key(abilities);
        let mut state = self.state();
        let found = state.serving.get(&key)?;
        let age = now.saturating_duration_since(found.at);
        if age >= self.ttl {
            state.serving.remove(&key);
            return None;
        }
        Some(Remembered {
            peers: found.peers.clone(),
            age,
        })
    }

    /// Remembers that the DHT found `peers` serving `abilities` at `now`.
    pub(crate) fn found(&self, abilities: &[String], peers: &[PeerId], now: Instant) {
        if self.ttl.is_zero() || peers.is_empty() {
            return;
        }
        let mut state = self.state();
        let ttl = self.ttl;
        if state.serving.len() >= MAX_ABILITY_SETS {
            state
                .serving
                .retain(|_, found| now.saturating_duration_since(found.at) < ttl);
        }
        if state.serving.len() >= MAX_ABILITY_SETS
            && let Some(oldest) = oldest(state.serving.iter().map(|(k, f)| (k, f.at)))
        {
            state.serving.remove(&oldest);
        }
        let found = Found {
            peers: peers.to_vec(),
            at: now,
        };
        state.serving.insert(key(abilities), found);
    }

    /// Forgets `peer`: every set of abilities it was found serving (so that the next
    /// call looks again, and finds who serves them now), and what it compiled.
    pub(crate) fn forget(&self, peer: &PeerId) {
        let mut state = self.state();
        state.serving.retain(|_, found| !found.peers.contains(peer));
        for holders in state.compiled.values_mut() {
            holders.remove(peer);
        }
        state.compiled.retain(|_, holders| !holders.is_empty());
    }

    /// Remembers that `peer` ran `module` at `now`, so it holds it compiled.
    pub(crate) fn ran(&self, module: Hash, peer: PeerId, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut state = self.state();
        let ttl = self.ttl;
        if !state.compiled.contains_key(&module) && state.compiled.len() >= MAX_MODULES {
            state.compiled.retain(|_, holders| {
                holders.retain(|_, at| now.saturating_duration_since(*at) < ttl);
                !holders.is_empty()
            });
            if state.compiled.len() >= MAX_MODULES {
                let newest = |holders: &HashMap<PeerId, Instant>| holders.values().max().copied();
                let ages = state
                    .compiled
                    .iter()
                    .filter_map(|(module, holders)| Some((module, newest(holders)?)));
                if let Some(oldest) = oldest(ages) {
                    state.compiled.remove(&oldest);
                }
            }
        }
        state.compiled.entry(module).or_default().insert(peer, now);
    }

    /// Puts the peers known to hold `module` compiled first, keeping the order within
    /// each group; says which ones they are.
    pub(crate) fn prefer_compiled(
        &self,
        module: &Hash,
        peers: &mut [PeerId],
        now: Instant,
    ) -> Vec<PeerId> {
        let state = self.state();
        let Some(holders) = state.compiled.get(module) else {
            return Vec::new();
        };
        let compiled = |peer: &PeerId| {
            holders
                .get(peer)
                .is_some_and(|at| now.saturating_duration_since(*at) < self.ttl)
        };
        peers.sort_by_key(|peer| !compiled(peer));
        peers.iter().copied().filter(compiled).collect()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn key(abilities: &[String]) -> Vec<String> {
    let mut key = abilities.to_vec();
    key.sort();
    key.dedup();
    key
}

/// The key of the entry stored longest ago.
fn oldest<'a, K: Clone + 'a>(entries: impl Iterator<Item = (&'a K, Instant)>) -> Option<K> {
    entries.min_by_key(|(_, at)| *at).map(|(k, _)| k.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv() -> Vec<String> {
        vec!["kv".to_owned()]
    }

    #[test]
    fn an_entry_answers_until_its_ttl_and_not_after() {
        let cache = PlacementCache::new(Duration::from_secs(60));
        let (peer, start) = (PeerId::random(), Instant::now());
        cache.found(&kv(), &[peer], start);
        let later = start + Duration::from_secs(59);
        assert_eq!(
            cache.serving(&kv(), later),
            Some(Remembered {
                peers: vec![peer],
                age: Duration::from_secs(59)
            })
        );
        assert_eq!(cache.serving(&kv(), start + Duration::from_secs(60)), None);
        assert_eq!(
            cache.serving(&kv(), later),
            None,
            "an expired entry is gone"
        );
    }

    #[test]
    fn a_forgotten_peer_takes_its_entries_and_its_compiled_modules_with_it() {
        let cache = PlacementCache::new(Duration::from_secs(60));
        let (dead, alive, now) = (PeerId::random(), PeerId::random(), Instant::now());
        let both = vec!["kv".to_owned(), "gpu".to_owned()];
        cache.found(&kv(), &[dead, alive], now);
        cache.found(&both, &[alive], now);
        let module = Hash::of(b"m");
        cache.ran(module, dead, now);
        cache.forget(&dead);
        assert_eq!(cache.serving(&kv(), now), None);
        assert!(
            cache
                .serving(&["gpu".to_owned(), "kv".to_owned()], now)
                .is_some()
        );
        let mut peers = [alive, dead];
        assert!(cache.prefer_compiled(&module, &mut peers, now).is_empty());
    }

    #[test]
    fn peers_that_ran_the_module_come_first_in_their_order() {
        let cache = PlacementCache::new(Duration::from_secs(60));
        let now = Instant::now();
        let [a, b, c, d] = [(); 4].map(|()| PeerId::random());
        let module = Hash::of(b"m");
        cache.ran(module, d, now);
        cache.ran(module, b, now);
        let mut peers = [a, b, c, d];
        assert_eq!(cache.prefer_compiled(&module, &mut peers, now), [b, d]);
        assert_eq!(peers, [b, d, a, c]);
        let mut peers = [a, b];
        let expired = now + Duration::from_secs(60);
        assert!(
            cache
                .prefer_compiled(&module, &mut peers, expired)
                .is_empty()
        );
        assert_eq!(peers, [a, b]);
    }

    #[test]
    fn a_zero_ttl_remembers_nothing_and_the_sets_stay_bounded() {
        let off = PlacementCache::new(Duration::ZERO);
        let now = Instant::now();
        off.found(&kv(), &[PeerId::random()], now);
        assert_eq!(off.serving(&kv(), now), None);

        let cache = PlacementCache::new(Duration::from_secs(60));
        for i in 0..=MAX_ABILITY_SETS {
            let at = now + Duration::from_millis(i as u64);
            cache.found(&[format!("a{i}")], &[PeerId::random()], at);
        }
        assert_eq!(cache.state().serving.len(), MAX_ABILITY_SETS);
        assert!(
            cache.serving(&["a0".to_owned()], now).is_none(),
            "the oldest went"
        );
    }
}
