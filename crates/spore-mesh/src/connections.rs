//! The connections open now, as `spore node status` shows them: to which peer, at which
//! address, which side dialed, for how long, whether through a relay, and the latest
//! ping round trip. The swarm task keeps the table; [`Mesh::connections`](crate::Mesh::connections)
//! reads it.
//!
//! The table also says which connections no one needs ([`Connections::needless`]), for
//! the swarm task to close: a node holds one connection per peer, and the connections
//! it dialed to peers it does not keep only while spore streams use them. libp2p closes
//! an idle connection only once no stream at all is open on it, and gossipsub keeps one
//! open on every connection for as long as it lives: 100 nodes in one process
//! (`tests/mesh/scale.rs`) held about 5,800 connections for 4,950 pairs, all pinging
//! each second, and with two cores their pongs took 0.5 to 3 s and Kademlia's queries
//! timed out (docs/performance.md, "A hundred nodes").

use std::collections::HashMap;
use std::time::Duration;

use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use tokio::time::Instant;

/// One open connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerConnection {
    pub peer: PeerId,
    /// The peer's address on this connection.
    pub remote: Multiaddr,
    /// Whether this node dialed (else the peer did).
    pub dialed: bool,
    /// Whether the connection goes through a relay (`/p2p-circuit`) rather than direct.
    pub relayed: bool,
    /// How long it has been open.
    pub open_for: Duration,
    /// The latest ping's round trip, once one was answered.
    pub round_trip: Option<Duration>,
}

struct Open {
    peer: PeerId,
    /// Closed by [`Connections::needless`]'s verdict, and not judged again.
    closing: bool,
    remote: Multiaddr,
    dialed: bool,
    /// Through a relay: the dialed address, or for a connection the relay brought in,
    /// the local (circuit) address, says so; the remote address of the latter is only
    /// the peer's `/p2p/` id.
    relayed: bool,
    since: Instant,
    round_trip: Option<Duration>,
}

#[derive(Default)]
pub(crate) struct Connections {
    open: HashMap<ConnectionId, Open>,
}

impl Connections {
    pub fn opened(&mut self, connection: ConnectionId, peer: PeerId, endpoint: &ConnectedPoint) {
        let open = Open {
            peer,
            closing: false,
            remote: endpoint.get_remote_address().clone(),
            dialed: endpoint.is_dialer(),
            relayed: endpoint.is_relayed(),
            since: Instant::now(),
            round_trip: None,
        };
        self.open.insert(connection, open);
    }

    pub fn pinged(&mut self, connection: ConnectionId, round_trip: Duration) {
        if let Some(open) = self.open.get_mut(&connection) {
            open.round_trip = Some(round_trip);
        }
    }

    pub fn closed(&mut self, connection: ConnectionId) {
        self.open.remove(&connection);
    }

    /// How long `connection` has been open, which side dialed it and its latest round
    /// trip, if it is open.
    pub fn get(&self, connection: ConnectionId) -> Option<(Duration, bool, Option<Duration>)> {
        let open = self.open.get(&connection)?;
        Some((open.since.elapsed(), open.dialed, open.round_trip))
    }

    /// The swarm task is closing `connection`.
    pub fn closing(&mut self, connection: ConnectionId) {
        if let Some(open) = self.open.get_mut(&connection) {
            open.closing = true;
        }
    }

    /// The connections no one needs at `now`, each with its peer and why:
    ///
    /// - Of several direct connections to one peer, all but the newest of those that
    ///   [`survives`] keeps, once unused for [`DUPLICATE_GRACE`]. Both sides close the
    ///   ones the other direction dialed; extras of the kept direction, their dialer.
    /// - A relayed connection to a peer with a direct one (a hole punched, or a dial
    ///   that got through), once unused for [`DUPLICATE_GRACE`], by either side: new
    ///   streams go on the direct one (`streams`), and the relay, which carries
    ///   gossip and pings for as long as the circuit is open, is spared it.
    /// - A connection this node dialed to a peer it does not keep (`keeps`), once no
    ///   spore stream has been open on it for `idle` (`unused_since`: `None` while one
    ///   is). The side that dialed decides, so that a connection the other side keeps is
    ///   not closed under it: a peer that keeps this node dials it itself and holds that
    ///   connection.
    pub fn needless(
        &self,
        local: &PeerId,
        now: Instant,
        idle: Duration,
        keeps: impl Fn(&PeerId) -> bool,
        unused_since: impl Fn(ConnectionId) -> Option<Instant>,
    ) -> Vec<(ConnectionId, PeerId, Needless)> {
        let mut by_peer: HashMap<PeerId, Vec<(ConnectionId, &Open)>> = HashMap::new();
        for (id, open) in &self.open {
            by_peer.entry(open.peer).or_default().push((*id, open));
        }
        let unused_for = |id: ConnectionId, open: &Open| {
            unused_since(id).map(|since| now.saturating_duration_since(since.max(open.since)))
        };
        let mut needless = Vec::new();
        for (peer, connections) in by_peer {
            let direct = (connections.iter()).filter(|(_, open)| !open.relayed && !open.closing);
            let keeper = direct
                .clone()
                .max_by_key(|(id, open)| (survives(local, &peer, open.dialed), open.since, *id));
            let mut duplicates = Vec::new();
            if let Some(&(keeper, kept)) = keeper {
                let unused = |id, open| unused_for(id, open).is_some_and(|u| u >= DUPLICATE_GRACE);
                for &(id, open) in direct.filter(|(id, _)| *id != keeper) {
                    let ours = open.dialed != kept.dialed || open.dialed;
                    if ours && unused(id, open) {
                        needless.push((id, peer, Needless::Duplicate));
                        duplicates.push(id);
                    }
                }
                let relayed = connections
                    .iter()
                    .filter(|(_, open)| open.relayed && !open.closing);
                for &(id, open) in relayed {
                    if unused(id, open) {
                        needless.push((id, peer, Needless::Relayed));
                        duplicates.push(id);
                    }
                }
            }
            if keeps(&peer) {
                continue;
            }
            for &(id, open) in &connections {
                if !open.dialed || open.closing || duplicates.contains(&id) {
                    continue;
                }
                if let Some(unused) = unused_for(id, open).filter(|u| *u >= idle) {
                    needless.push((id, peer, Needless::Unused(unused)));
                }
            }
        }
        needless
    }

    /// Whether every open connection to `peer` goes through a relay (and there is one).
    pub fn only_relayed(&self, peer: &PeerId) -> bool {
        let mut to_peer = self.open.values().filter(|open| open.peer == *peer);
        to_peer.clone().next().is_some() && to_peer.all(|open| open.relayed)
    }

    /// Every open connection, by peer and then oldest first.
    pub fn list(&self) -> Vec<PeerConnection> {
        let now = Instant::now();
        let mut list: Vec<(Instant, PeerConnection)> = self
            .open
            .values()
            .map(|open| {
                let connection = PeerConnection {
                    peer: open.peer,
                    remote: open.remote.clone(),
                    dialed: open.dialed,
                    relayed: open.relayed,
                    open_for: now.saturating_duration_since(open.since),
                    round_trip: open.round_trip,
                };
                (open.since, connection)
            })
            .collect();
        list.sort_by(|(a_since, a), (b_since, b)| {
            (a.peer.to_bytes(), a_since).cmp(&(b.peer.to_bytes(), b_since))
        });
        list.into_iter().map(|(_, connection)| connection).collect()
    }
}

/// Why a connection is needless.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Needless {
    /// Another connection to its peer is kept.
    Duplicate,
    /// Through a relay, beside a direct connection to its peer.
    Relayed,
    /// Dialed by this node to a peer it does not keep, and unused for this long.
    Unused(Duration),
}

/// How long a duplicate must have carried no spore stream before it is closed: a stream
/// the peer opened on it before it saw the connection kept has been negotiated (and
/// counted) by then, even with pongs taking a second or two.
pub(crate) const DUPLICATE_GRACE: Duration = Duration::from_secs(3);

/// Whether a connection between `local` and `peer` is of those kept when the two hold
/// several: the ones the peer with the lower id dialed (`dialed`: this node did). Both
/// sides judge alike, so they close the same ones.
pub(crate) fn survives(local: &PeerId, peer: &PeerId, dialed: bool) -> bool {
    dialed == (local < peer)
}

pub(crate) fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::core::Endpoint;
    use libp2p::core::transport::PortUse;

    fn dialer(addr: &str) -> ConnectedPoint {
        ConnectedPoint::Dialer {
            address: addr.parse().unwrap(),
            role_override: Endpoint::Dialer,
            port_use: PortUse::Reuse,
        }
    }

    fn listener() -> ConnectedPoint {
        ConnectedPoint::Listener {
            local_addr: "/ip4/10.0.0.1/tcp/4001".parse().unwrap(),
            send_back_addr: "/ip4/10.0.0.2/tcp/50000".parse().unwrap(),
        }
    }

    /// The connections `table` finds needless `after` from now, none of them in use
    /// but those in `busy`, the peer kept if `kept`.
    fn needless(
        table: &Connections,
        local: &PeerId,
        after: Duration,
        kept: bool,
        busy: &[ConnectionId],
    ) -> Vec<(ConnectionId, Needless)> {
        let start = Instant::now();
        let mut needless: Vec<(ConnectionId, Needless)> = table
            .needless(
                local,
                start + after,
                Duration::from_secs(60),
                |_| kept,
                |c| (!busy.contains(&c)).then_some(start),
            )
            .into_iter()
            .map(|(c, _, why)| (c, why))
            .collect();
        needless.sort_by_key(|(c, _)| *c);
        needless
    }

    #[test]
    fn two_peers_that_dialed_each_other_close_the_same_connection() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let (low, high) = if a < b { (a, b) } else { (b, a) };
        // Each side's table: the low peer's dial and the high peer's, by local ids.
        let (mut low_side, mut high_side) = (Connections::default(), Connections::default());
        let id = ConnectionId::new_unchecked;
        low_side.opened(id(1), high, &dialer("/ip4/10.0.0.2/tcp/4001"));
        low_side.opened(id(2), high, &listener());
        high_side.opened(id(7), low, &listener());
        high_side.opened(id(8), low, &dialer("/ip4/10.0.0.1/tcp/4001"));

        // Kept peers: no connection is closed for being unused, only the duplicate,
        // the high peer's dial, on both sides; not while it carries a stream, nor
        // before the grace.
        let grace = DUPLICATE_GRACE;
        let dup = Needless::Duplicate;
        assert_eq!(needless(&low_side, &low, grace, true, &[]), [(id(2), dup)]);
        assert_eq!(
            needless(&high_side, &high, grace, true, &[]),
            [(id(8), dup)]
        );
        assert!(needless(&low_side, &low, grace, true, &[id(2)]).is_empty());
        let early = grace - Duration::from_millis(1);
        assert!(needless(&high_side, &high, early, true, &[]).is_empty());

        low_side.closing(id(2));
        assert!(needless(&low_side, &low, grace, true, &[]).is_empty());
    }

    #[test]
    fn extra_connections_one_side_dialed_are_closed_by_that_side_only() {
        let (local, peer) = (PeerId::random(), PeerId::random());
        let id = ConnectionId::new_unchecked;
        let (mut dialing, mut listening) = (Connections::default(), Connections::default());
        for n in 1..=3 {
            dialing.opened(id(n), peer, &dialer("/ip4/10.0.0.2/tcp/4001"));
            listening.opened(id(n), local, &listener());
        }
        let closed = needless(&dialing, &local, DUPLICATE_GRACE, true, &[]);
        assert_eq!(closed.len(), 2, "all but one: {closed:?}");
        assert!(needless(&listening, &peer, DUPLICATE_GRACE, true, &[]).is_empty());
    }

    #[test]
    fn a_dialed_connection_to_a_peer_not_kept_is_closed_once_unused_for_idle() {
        let (local, peer) = (PeerId::random(), PeerId::random());
        let id = ConnectionId::new_unchecked;
        let mut table = Connections::default();
        table.opened(id(1), peer, &dialer("/ip4/10.0.0.2/tcp/4001"));
        let idle = Duration::from_secs(60);
        let early = idle - Duration::from_millis(1);
        assert!(needless(&table, &local, early, false, &[]).is_empty());
        assert_eq!(
            needless(&table, &local, idle, false, &[]),
            [(id(1), Needless::Unused(idle))]
        );
        assert!(
            needless(&table, &local, idle, false, &[id(1)]).is_empty(),
            "in use"
        );
        assert!(needless(&table, &local, idle, true, &[]).is_empty(), "kept");

        // Dialed by the peer: its to close.
        let mut accepted = Connections::default();
        accepted.opened(id(1), peer, &listener());
        assert!(needless(&accepted, &local, idle, false, &[]).is_empty());
    }

    #[test]
    fn a_relayed_connection_beside_a_direct_one_is_closed_once_unused_by_either_side() {
        let (local, peer, relay) = (PeerId::random(), PeerId::random(), PeerId::random());
        let id = ConnectionId::new_unchecked;
        let circuit = format!("/ip4/10.0.0.9/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{peer}");
        for dialed_relayed in [true, false] {
            let mut table = Connections::default();
            if dialed_relayed {
                table.opened(id(1), peer, &dialer(&circuit));
            } else {
                let local_addr = format!("/ip4/10.0.0.9/tcp/4001/p2p/{relay}/p2p-circuit");
                table.opened(
                    id(1),
                    peer,
                    &ConnectedPoint::Listener {
                        local_addr: local_addr.parse().unwrap(),
                        send_back_addr: format!("/p2p/{peer}").parse().unwrap(),
                    },
                );
            }
            // Alone, it is the only way to the peer: kept.
            assert!(needless(&table, &local, DUPLICATE_GRACE, true, &[]).is_empty());

            table.opened(id(2), peer, &listener());
            let early = DUPLICATE_GRACE - Duration::from_millis(1);
            assert!(needless(&table, &local, early, true, &[]).is_empty());
            assert!(
                needless(&table, &local, DUPLICATE_GRACE, true, &[id(1)]).is_empty(),
                "in use"
            );
            assert_eq!(
                needless(&table, &local, DUPLICATE_GRACE, true, &[]),
                [(id(1), Needless::Relayed)]
            );
        }
    }

    #[test]
    fn a_connection_is_listed_from_open_to_close_with_its_round_trip() {
        let mut table = Connections::default();
        let peer = PeerId::random();
        let id = ConnectionId::new_unchecked(1);
        table.opened(id, peer, &dialer("/ip4/10.0.0.2/tcp/4001"));
        assert_eq!(table.list()[0].round_trip, None);
        table.pinged(id, Duration::from_millis(3));
        let listed = table.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].peer, peer);
        assert!(listed[0].dialed);
        assert!(!listed[0].relayed);
        assert_eq!(listed[0].round_trip, Some(Duration::from_millis(3)));
        table.closed(id);
        assert!(table.list().is_empty());
    }

    #[test]
    fn a_connection_through_a_relay_is_marked_relayed() {
        let mut table = Connections::default();
        let relay = PeerId::random();
        let addr = format!("/ip4/10.0.0.9/tcp/4001/p2p/{relay}/p2p-circuit");
        table.opened(
            ConnectionId::new_unchecked(2),
            PeerId::random(),
            &dialer(&addr),
        );
        assert!(table.list()[0].relayed);
    }

    #[test]
    fn a_connection_a_relay_brought_in_is_marked_relayed() {
        // Its remote address is only the peer's id; its local one is the circuit.
        let mut table = Connections::default();
        let (relay, peer) = (PeerId::random(), PeerId::random());
        table.opened(
            ConnectionId::new_unchecked(3),
            peer,
            &ConnectedPoint::Listener {
                local_addr: format!("/ip4/10.0.0.9/tcp/4001/p2p/{relay}/p2p-circuit")
                    .parse()
                    .unwrap(),
                send_back_addr: format!("/p2p/{peer}").parse().unwrap(),
            },
        );
        assert!(table.list()[0].relayed);
        assert!(table.only_relayed(&peer));
        assert!(!table.only_relayed(&relay));
    }
}
