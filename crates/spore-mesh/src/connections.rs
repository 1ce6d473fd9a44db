//! The connections open now, as `spore node status` shows them: to which peer, at which
//! address, which side dialed, for how long, whether through a relay, and the latest
//! ping round trip. The swarm task keeps the table; [`Mesh::connections`](crate::Mesh::connections)
//! reads it.

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
