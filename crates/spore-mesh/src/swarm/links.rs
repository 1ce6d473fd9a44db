//! Closing the connections that are dead (`crate::liveness`) or that no one needs
//! (`crate::connections`).

use tokio::time::Instant;
use tracing::{debug, info};

use super::SwarmTask;

impl SwarmTask {
    /// Closes the connections whose peer stopped answering pings: the calls and fetches
    /// on them fail at once instead of waiting out their deadlines, and the peer book
    /// redials the peer.
    pub(super) fn close_dead_links(&mut self) {
        for (connection, peer, silent) in self.liveness.take_dead(Instant::now()) {
            let open = self.connections.get(connection);
            let open_for = open.map(|(open_for, ..)| open_for);
            let last_round_trip = open.and_then(|(.., round_trip)| round_trip);
            info!(%peer, ?silent, ?open_for, ?last_round_trip, "the link to the peer is dead; closing the connection");
            self.swarm.close_connection(connection);
        }
    }

    /// Closes duplicate connections, and the ones this node dialed to peers it does not
    /// keep once unused (`Connections::needless`).
    pub(super) fn close_needless(&mut self) {
        let local = *self.swarm.local_peer_id();
        let behaviour = self.swarm.behaviour();
        let needless = self.connections.needless(
            &local,
            Instant::now(),
            self.idle,
            |peer| behaviour.peers.keeps(peer),
            |connection| behaviour.streams.unused_since(connection),
        );
        for (connection, peer, why) in needless {
            debug!(%peer, ?connection, ?why, "closing a connection no one needs");
            self.connections.closing(connection);
            self.swarm.close_connection(connection);
        }
    }
}
