//! What this node knows of how peers reach it, for `spore node status` and the metrics:
//! AutoNAT's verdict on whether it can be dialled, the relays it is reachable through,
//! and how its hole punches went. The swarm task writes it as the events come
//! (`swarm/nat.rs`); the [`Mesh`](crate::Mesh) handle reads a copy, without a round
//! trip through the swarm task.

use std::sync::Mutex;

use libp2p::{Multiaddr, PeerId};

/// Whether peers can dial this node, as AutoNAT last judged from its peers' attempts to
/// dial it back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialable {
    /// Not judged yet (too few peers asked), or the last verdict went stale.
    #[default]
    Unknown,
    /// A peer dialled this address back.
    Yes(Multiaddr),
    /// Peers could not dial it back: it is reached through a relay, or over a hole
    /// punched from a relayed connection.
    No,
}

/// How peers reach this node, now and since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reachability {
    pub dialable: Dialable,
    /// The relays holding a reservation for this node now, each listed once.
    pub relays: Vec<PeerId>,
    /// Relayed connections that a hole punch (DCUtR) replaced by a direct one.
    pub holes_punched: u64,
    /// Hole punches that gave up: those connections stayed relayed.
    pub hole_punches_failed: u64,
}

/// The one copy, shared by the swarm task (which writes it) and the mesh's handles.
#[derive(Default)]
pub(crate) struct Shared(Mutex<Reachability>);

impl Shared {
    pub fn get(&self) -> Reachability {
        self.lock().clone()
    }

    pub fn set_dialable(&self, dialable: Dialable) {
        self.lock().dialable = dialable;
    }

    pub fn reserved(&self, relay: PeerId) {
        let mut reachability = self.lock();
        if !reachability.relays.contains(&relay) {
            reachability.relays.push(relay);
        }
    }

    pub fn unreserved(&self, relay: &PeerId) {
        self.lock().relays.retain(|r| r != relay);
    }

    /// Counts a hole punch that ended, `punched` or not.
    pub fn hole_punch(&self, punched: bool) {
        let mut reachability = self.lock();
        if punched {
            reachability.holes_punched += 1;
        } else {
            reachability.hole_punches_failed += 1;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Reachability> {
        // Every writer leaves the struct whole: a panic elsewhere cannot have broken it.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_is_listed_once_while_it_holds_a_reservation() {
        let shared = Shared::default();
        let relay = PeerId::random();
        shared.reserved(relay);
        shared.reserved(relay);
        assert_eq!(shared.get().relays, vec![relay]);
        shared.unreserved(&relay);
        assert!(shared.get().relays.is_empty());
    }

    #[test]
    fn hole_punches_are_counted_by_outcome() {
        let shared = Shared::default();
        shared.hole_punch(true);
        shared.hole_punch(false);
        shared.hole_punch(false);
        let reachability = shared.get();
        assert_eq!(
            (reachability.holes_punched, reachability.hole_punches_failed),
            (1, 2)
        );
    }
}
