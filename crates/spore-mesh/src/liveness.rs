//! Dead links: a connection whose peer has answered no ping for [`DEAD_AFTER`] is
//! closed, so that the calls waiting on it fail at once and the peer is redialed.
//!
//! Nothing below the mesh does this within seconds. TCP keeps a connection whose packets
//! are all lost for about 15 minutes (`tcp_retries2`), and once the path heals it only
//! resumes at its next retransmission, which backs off exponentially: after a partition
//! of a minute, 20 to 40 s later. yamux has no keep-alive, and libp2p's ping only
//! reports failures, which it does after two timeouts in a row (20 s each by default).

use std::collections::HashMap;
use std::time::Duration;

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;
use tokio::time::Instant;

/// How often each side pings each connection. One ping each way per second is a few
/// hundred bytes a second per connection.
pub(crate) const PING_INTERVAL: Duration = Duration::from_secs(1);
/// How long a connection may go without a ping answered before it counts as dead. A
/// healthy link answers in milliseconds; a pong queued behind other traffic (a 4 MiB
/// fetch on a 16 Mbit/s link) takes about 2 s. With pings a second apart, 4 s of silence
/// is three pongs missing or one more than 3 s late, and the link is closed 3 to 5 s
/// after it died.
pub(crate) const DEAD_AFTER: Duration = Duration::from_secs(4);
/// How often connections are checked against [`DEAD_AFTER`].
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(500);
/// A check this late means this node's own tasks were held up (an overloaded machine,
/// a paused process), and pongs may be waiting unread: silence then proves nothing, and
/// every connection is given [`DEAD_AFTER`] again.
const STALLED: Duration = Duration::from_secs(2);

/// When each connection's peer last answered a ping.
#[derive(Default)]
pub(crate) struct Liveness {
    last_heard: HashMap<ConnectionId, (PeerId, Instant)>,
    last_check: Option<Instant>,
    /// The slowest round trip answered lately, and when: see [`Liveness::allowance`].
    slowest: Option<(Instant, Duration)>,
}

impl Liveness {
    pub fn opened(&mut self, connection: ConnectionId, peer: PeerId, now: Instant) {
        self.last_heard.insert(connection, (peer, now));
    }

    /// The connection's peer answered a ping that took `round_trip`.
    pub fn answered(&mut self, connection: ConnectionId, now: Instant, round_trip: Duration) {
        if let Some((_, heard)) = self.last_heard.get_mut(&connection) {
            *heard = now;
        }
        let lapsed = |(at, _): (Instant, Duration)| now - at >= DEAD_AFTER;
        if self.slowest.is_none_or(|s| lapsed(s) || s.1 <= round_trip) {
            self.slowest = Some((now, round_trip));
        }
    }

    /// How much silence, past [`DEAD_AFTER`], the pings' own slowness explains. The next
    /// pong on a link cannot come sooner than a ping interval plus a round trip after the
    /// last, so when this node's pongs take seconds (its process starved of CPU, as 100
    /// nodes on two shared cores are: 1 to 6 s measured in `tests/mesh/scale.rs`), live
    /// links fall silent for [`DEAD_AFTER`] as a matter of course, and closing them only
    /// adds the handshakes of their redials to the load. So the slowest round trip
    /// answered within the last [`DEAD_AFTER`] is added: a node whose pongs come in
    /// milliseconds still closes a dead link 3 to 5 s after it died.
    fn allowance(&self, now: Instant) -> Duration {
        match self.slowest {
            Some((at, round_trip)) if now - at < DEAD_AFTER => round_trip,
            _ => Duration::ZERO,
        }
    }

    /// The connection closed, or its peer does not speak ping: it is not watched.
    pub fn forget(&mut self, connection: ConnectionId) {
        self.last_heard.remove(&connection);
    }

    /// The connections silent for [`DEAD_AFTER`] or longer, with their peer and how
    /// long they have been silent; they are no longer watched.
    pub fn take_dead(&mut self, now: Instant) -> Vec<(ConnectionId, PeerId, Duration)> {
        let stalled = self.last_check.is_some_and(|last| now - last >= STALLED);
        self.last_check = Some(now);
        if stalled {
            for (_, heard) in self.last_heard.values_mut() {
                *heard = now;
            }
            return Vec::new();
        }
        let dead_after = DEAD_AFTER + self.allowance(now);
        let dead: Vec<(ConnectionId, PeerId, Duration)> = self
            .last_heard
            .iter()
            .map(|(connection, (peer, heard))| (*connection, *peer, now - *heard))
            .filter(|(_, _, silent)| *silent >= dead_after)
            .collect();
        for (connection, ..) in &dead {
            self.last_heard.remove(connection);
        }
        dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks every [`CHECK_EVERY`] from `from` to `until`; returns what died.
    fn check(
        liveness: &mut Liveness,
        from: Instant,
        until: Instant,
    ) -> Vec<(ConnectionId, PeerId, Duration)> {
        let mut dead = Vec::new();
        let mut now = from;
        while now < until {
            now = (now + CHECK_EVERY).min(until);
            dead.extend(liveness.take_dead(now));
        }
        dead
    }

    #[test]
    fn a_connection_is_dead_once_silent_for_dead_after_and_reported_once() {
        let mut liveness = Liveness::default();
        let (quiet, chatty, unwatched) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
            ConnectionId::new_unchecked(3),
        );
        let peer = PeerId::random();
        let start = Instant::now();
        for connection in [quiet, chatty, unwatched] {
            liveness.opened(connection, peer, start);
        }
        liveness.forget(unwatched);
        let almost = start + DEAD_AFTER - Duration::from_millis(1);
        assert!(check(&mut liveness, start, almost).is_empty());
        liveness.answered(chatty, almost, Duration::ZERO);

        let dead = check(&mut liveness, almost, start + DEAD_AFTER);
        assert_eq!(dead, vec![(quiet, peer, DEAD_AFTER)]);
        let later = almost + DEAD_AFTER;
        let dead = check(&mut liveness, start + DEAD_AFTER, later);
        assert_eq!(dead, vec![(chatty, peer, DEAD_AFTER)]);
        assert!(check(&mut liveness, later, later + DEAD_AFTER).is_empty());
    }

    #[test]
    fn while_pongs_come_slowly_a_link_is_given_their_round_trip_more() {
        let mut liveness = Liveness::default();
        let (quiet, slow) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
        );
        let quiet_peer = PeerId::random();
        let start = Instant::now();
        let at = |secs: f64| start + Duration::from_secs_f64(secs);
        liveness.opened(quiet, quiet_peer, start);
        liveness.opened(slow, PeerId::random(), start);
        assert!(check(&mut liveness, start, at(3.0)).is_empty());
        liveness.answered(slow, at(3.0), Duration::from_secs(3));
        // Silent for 6.5 s, of which the 3 s pongs explain 3.
        assert!(check(&mut liveness, at(3.0), at(6.5)).is_empty());
        liveness.answered(slow, at(6.5), Duration::from_millis(1));
        // The slow pong is DEAD_AFTER old: no longer an excuse.
        let dead = check(&mut liveness, at(6.5), at(7.0));
        assert_eq!(dead, vec![(quiet, quiet_peer, Duration::from_secs(7))]);
    }

    #[test]
    fn after_a_stall_of_this_node_every_connection_gets_its_full_time_again() {
        let mut liveness = Liveness::default();
        let connection = ConnectionId::new_unchecked(1);
        let start = Instant::now();
        liveness.opened(connection, PeerId::random(), start);
        assert!(liveness.take_dead(start + CHECK_EVERY).is_empty());
        // The next check comes 10 s late: the connection is not judged on that.
        let late = start + Duration::from_secs(10);
        assert!(liveness.take_dead(late).is_empty());
        assert!(check(&mut liveness, late, late + DEAD_AFTER / 2).is_empty());
        let dead = check(&mut liveness, late + DEAD_AFTER / 2, late + DEAD_AFTER);
        assert_eq!(dead.len(), 1);
    }
}
