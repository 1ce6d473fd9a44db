//! The fetches in flight, as `spore node status` and the node's API show them: which
//! module, from whom, how many verified bytes so far out of how many, for how long.
//! [`Mesh::fetches`](crate::Mesh::fetches) reads a snapshot.
//!
//! A fetch registers itself when it begins and holds a [`Tracked`] guard; dropping the
//! guard removes the entry, so a fetch that succeeds, fails or is cancelled (its future
//! dropped) leaves nothing behind. The registry's lock is taken only to add, remove or
//! list entries, never across an await; a fetch's progress is counted in atomics it
//! updates without the lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use libp2p::PeerId;
use tokio::time::Instant;

/// One fetch in flight, as it stood when listed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchProgress {
    /// Tells this fetch apart from the others this mesh ran, the same hash's included,
    /// from one snapshot to the next.
    pub id: u64,
    pub hash: spore_core::Hash,
    /// The providers that delivered a range of it so far, in the order they first did;
    /// none until a provider has proven the module's size with the final range.
    pub peers: Vec<PeerId>,
    /// Verified bytes kept so far. They arrive a range (1 MiB) at a time.
    pub received: u64,
    /// The module's size, once a provider has proven it.
    pub size: Option<u64>,
    /// How long since the fetch began, the search for providers included.
    pub elapsed: Duration,
}

/// What [`Entry::size`] holds while the size is unknown: no module is that large, as a
/// fetch refuses any over [`super::MAX_MODULE_SIZE`].
const SIZE_UNKNOWN: u64 = u64::MAX;

struct Entry {
    hash: spore_core::Hash,
    started: Instant,
    received: AtomicU64,
    size: AtomicU64,
    /// Changes only when a provider delivers its first range: a handful of times per
    /// fetch, so a lock costs nothing here.
    peers: Mutex<Vec<PeerId>>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    /// By id, so in the order the fetches began.
    open: BTreeMap<u64, Arc<Entry>>,
}

/// The registry of a mesh's fetches in flight; clones share it.
#[derive(Clone, Default)]
pub(crate) struct Fetches(Arc<Mutex<Registry>>);

impl Fetches {
    /// Registers a fetch of `hash` beginning now, until the guard returned is dropped.
    pub fn begin(&self, hash: spore_core::Hash) -> Tracked {
        let entry = Arc::new(Entry {
            hash,
            started: Instant::now(),
            received: AtomicU64::new(0),
            size: AtomicU64::new(SIZE_UNKNOWN),
            peers: Mutex::new(Vec::new()),
        });
        let mut registry = self.lock();
        let id = registry.next_id;
        registry.next_id += 1;
        registry.open.insert(id, entry.clone());
        Tracked {
            fetches: self.clone(),
            id,
            entry,
        }
    }

    /// Every fetch in flight, the oldest first.
    pub fn list(&self) -> Vec<FetchProgress> {
        let now = Instant::now();
        self.lock()
            .open
            .iter()
            .map(|(&id, entry)| {
                let size = entry.size.load(Ordering::Relaxed);
                FetchProgress {
                    id,
                    hash: entry.hash,
                    peers: lock(&entry.peers).clone(),
                    received: entry.received.load(Ordering::Relaxed),
                    size: (size != SIZE_UNKNOWN).then_some(size),
                    elapsed: now.saturating_duration_since(entry.started),
                }
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        lock(&self.0)
    }
}

/// A poisoned lock only means a panic elsewhere while it was held; the registry's data
/// is counters and lists that stay consistent, so it is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A fetch's place in the registry: it reports its progress through this, and leaves
/// the registry when this is dropped.
pub(crate) struct Tracked {
    fetches: Fetches,
    id: u64,
    entry: Arc<Entry>,
}

impl Tracked {
    /// The module's size is proven.
    pub fn sized(&self, size: u64) {
        self.entry.size.store(size, Ordering::Relaxed);
    }

    /// `peer` delivered `bytes` verified bytes.
    pub fn delivered(&self, peer: PeerId, bytes: u64) {
        self.entry.received.fetch_add(bytes, Ordering::Relaxed);
        let mut peers = lock(&self.entry.peers);
        if !peers.contains(&peer) {
            peers.push(peer);
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.fetches.lock().open.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetch_is_listed_with_its_progress_until_its_guard_is_dropped() {
        let fetches = Fetches::default();
        assert!(fetches.list().is_empty());
        let hash = spore_core::Hash::of(b"a module");
        let tracked = fetches.begin(hash);
        let listed = fetches.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].hash, hash);
        assert_eq!(listed[0].received, 0);
        assert_eq!(listed[0].size, None);
        assert!(listed[0].peers.is_empty());

        let (a, b) = (PeerId::random(), PeerId::random());
        tracked.sized(3 << 20);
        tracked.delivered(a, 1 << 20);
        tracked.delivered(b, 1 << 20);
        tracked.delivered(a, 1 << 19);
        let listed = fetches.list();
        assert_eq!(listed[0].size, Some(3 << 20));
        assert_eq!(listed[0].received, (2 << 20) + (1 << 19));
        assert_eq!(listed[0].peers, vec![a, b]);

        drop(tracked);
        assert!(fetches.list().is_empty());
    }

    #[test]
    fn fetches_of_one_hash_are_told_apart_and_listed_oldest_first() {
        let fetches = Fetches::default();
        let hash = spore_core::Hash::of(b"wanted twice");
        let first = fetches.begin(hash);
        let second = fetches.begin(hash);
        let other = fetches.begin(spore_core::Hash::of(b"another"));
        second.delivered(PeerId::random(), 42);
        let listed = fetches.list();
        let ids: Vec<u64> = listed.iter().map(|f| f.id).collect();
        assert_eq!(ids, vec![first.id, second.id, other.id]);
        assert!(ids[0] < ids[1] && ids[1] < ids[2]);
        assert_eq!(
            listed.iter().map(|f| f.received).collect::<Vec<_>>(),
            vec![0, 42, 0]
        );

        drop(second);
        let left: Vec<u64> = fetches.list().iter().map(|f| f.id).collect();
        assert_eq!(left, vec![first.id, other.id]);
        drop((first, other));
        assert!(fetches.list().is_empty());
    }

    #[tokio::test]
    async fn a_cancelled_fetch_leaves_the_registry() {
        let fetches = Fetches::default();
        let tracked = fetches.begin(spore_core::Hash::of(b"never arrives"));
        // A fetch holds its guard across awaits; dropping its future (a caller that
        // stopped waiting) must remove it as surely as returning does.
        let fetch = tokio::spawn(async move {
            let _tracked = tracked;
            std::future::pending::<()>().await;
        });
        tokio::task::yield_now().await;
        assert_eq!(fetches.list().len(), 1);
        fetch.abort();
        assert!(fetch.await.unwrap_err().is_cancelled());
        assert!(fetches.list().is_empty());
    }
}
