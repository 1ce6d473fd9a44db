//! The peer book's keeping, replacing and redial schedule.

use super::*;

fn addr(port: u16) -> Multiaddr {
    format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
}

#[test]
fn a_lost_peer_is_redialed_with_doubling_waits_up_to_the_cap() {
    let mut book = Book::default();
    let peer = PeerId::random();
    let start = Instant::now();
    book.add_bootstrap(peer, addr(1), start);
    assert_eq!(book.take_due(start), vec![(peer, vec![addr(1)])]);

    let mut now = start;
    let mut waits = Vec::new();
    for attempt in 0..8 {
        let connection = ConnectionId::new_unchecked(attempt);
        book.dialing(&peer, connection);
        book.dial_failed(&peer, connection, false, now);
        let due = book.next_due().expect("a redial is scheduled");
        waits.push((due - now).as_secs());
        assert!(book.take_due(due - Duration::from_millis(1)).is_empty());
        assert_eq!(book.take_due(due).len(), 1);
        now = due;
    }
    assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
}

#[test]
fn a_healthy_connection_resets_the_backoff_and_a_short_one_does_not() {
    let mut book = Book::default();
    let peer = PeerId::random();
    let start = Instant::now();
    let connection = ConnectionId::new_unchecked(1);
    book.connected(peer, connection, Some(addr(1)), start);
    assert_eq!(book.next_due(), None, "connected: nothing to redial");

    let lost = start + STABLE_CONNECTION;
    book.disconnected(&peer, connection, lost);
    assert_eq!(book.next_due(), Some(lost + FIRST_REDIAL));

    // Reconnected, but dropped again at once: the wait keeps growing.
    book.connected(peer, connection, None, lost + FIRST_REDIAL);
    book.disconnected(&peer, connection, lost + FIRST_REDIAL);
    assert_eq!(book.next_due(), Some(lost + FIRST_REDIAL * 3));
}

#[test]
fn only_the_books_own_redial_moves_its_schedule() {
    let mut book = Book::default();
    let peer = PeerId::random();
    let now = Instant::now();
    book.add_bootstrap(peer, addr(1), now);
    book.take_due(now);
    let ours = ConnectionId::new_unchecked(1);
    book.dialing(&peer, ours);
    // A call's dial failing says nothing about ours, still under way.
    book.dial_failed(&peer, ConnectionId::new_unchecked(2), false, now);
    assert_eq!(book.next_due(), None);
    // Ours was refused because another dial was under way: look again later.
    book.dial_failed(&peer, ours, true, now);
    assert_eq!(book.next_due(), Some(now + FIRST_REDIAL));
}

#[test]
fn a_peer_that_only_dialed_in_is_kept_but_not_redialed() {
    let mut book = Book::default();
    let peer = PeerId::random();
    let now = Instant::now();
    let connection = ConnectionId::new_unchecked(1);
    book.connected(peer, connection, None, now);
    book.disconnected(&peer, connection, now);
    assert_eq!(book.next_due(), None);
    assert!(book.known().is_empty(), "no address to remember");

    book.connected(peer, connection, None, now);
    book.add_announced(&peer, [addr(7)]);
    book.disconnected(&peer, connection, now);
    assert_eq!(book.next_due(), Some(now + FIRST_REDIAL));
    assert_eq!(book.known(), vec![addr(7).with(Protocol::P2p(peer))]);
}

#[test]
fn dialed_addresses_come_first_and_each_peer_keeps_a_few() {
    let mut book = Book::default();
    let peer = PeerId::random();
    let now = Instant::now();
    book.connected(peer, ConnectionId::new_unchecked(1), None, now);
    book.add_announced(&peer, (1..=10).map(addr));
    book.connected(peer, ConnectionId::new_unchecked(2), Some(addr(5)), now);
    let kept = &book.peers[&peer];
    assert_eq!(kept.addrs.len(), MAX_ADDRS_PER_PEER);
    assert_eq!(kept.addrs[0], addr(5));
    assert_eq!(kept.addrs[1], addr(1));
}

#[test]
fn a_full_book_replaces_the_peer_seen_longest_ago_and_never_a_connected_one() {
    let mut book = Book::default();
    let now = Instant::now();
    let peers: Vec<PeerId> = (0..KEPT_PEERS).map(|_| PeerId::random()).collect();
    for (i, peer) in peers.iter().enumerate() {
        let connection = ConnectionId::new_unchecked(i);
        book.connected(*peer, connection, Some(addr(i as u16)), now);
        // All but the first two stay connected; of those two, peers[1] left last.
        if i < 2 {
            book.disconnected(peer, connection, now);
        }
    }
    book.disconnected(&peers[1], ConnectionId::new_unchecked(1), now);
    // Away for a moment: their places are not taken.
    let soon = now + REPLACEABLE_AFTER - Duration::from_millis(1);
    let early = PeerId::random();
    let evicted = book.connected(early, ConnectionId::new_unchecked(99), None, soon);
    assert!(evicted.is_none());
    assert!(!book.peers.contains_key(&early));

    let later = now + REPLACEABLE_AFTER;
    let newcomer = PeerId::random();
    let evicted = book.connected(newcomer, ConnectionId::new_unchecked(100), None, later);
    assert_eq!(evicted.map(|e| e.peer), Some(peers[0]));
    assert!(book.peers.contains_key(&newcomer));

    // peers[1] goes next; then only connected peers are left, and a newcomer is
    // not kept.
    book.connected(
        PeerId::random(),
        ConnectionId::new_unchecked(101),
        None,
        later,
    );
    let ignored = PeerId::random();
    let evicted = book.connected(ignored, ConnectionId::new_unchecked(102), None, later);
    assert!(evicted.is_none());
    assert!(!book.peers.contains_key(&ignored));
    assert_eq!(book.peers.len(), KEPT_PEERS);
}
