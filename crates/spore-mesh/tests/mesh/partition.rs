//! A partition between two nodes: the link dies without a word, and later heals. The
//! mesh must notice within seconds, fail the calls caught in it with a clear error, and
//! carry calls again as soon as the network is back.

use std::time::Duration;

use spore_core::{Args, FunctionRef, Hash, TraceId};
use spore_mesh::{CallRequest, InvokeResponse, Mesh, MeshError, PeerId};
use tokio::time::Instant;

use crate::common::*;
use crate::relay::Relay;

/// Long enough for both sides to give up on the link and to redial into the partition
/// a few times; the old connections' retransmissions are then 10 s apart.
const PARTITION: Duration = Duration::from_secs(15);
/// A dead link must be closed within this.
const DETECTION_BOUND: Duration = Duration::from_secs(6);
/// After the network heals, a call must be answered within this.
const RECOVERY_BOUND: Duration = Duration::from_secs(5);

/// A call of `echo` with an empty argument array, to be answered `within` from now.
fn request(within: Duration) -> CallRequest {
    CallRequest::new(
        FunctionRef::new(Hash::of(b"module"), "echo".parse().unwrap()),
        Args::from_bytes(vec![0x80]),
        std::time::Instant::now() + within,
        16 << 20,
        TraceId::default(),
    )
}

async fn call(a: &Mesh, b: PeerId, within: Duration) -> Result<InvokeResponse, MeshError> {
    a.invoke(b, &request(within)).await
}

/// B, listening on loopback but telling peers only the relay's address, and A, which
/// listens nowhere and joins through the relay: every byte between them crosses it.
async fn pair_through(relay: &mut Relay) -> (Mesh, Mesh) {
    let b = start(
        NodeSpec {
            announce: vec![relay.multiaddr()],
            ..NodeSpec::default()
        },
        MemHost::with_invoke(echo),
    )
    .await;
    // "/ip4/127.0.0.1/tcp/PORT/p2p/ID"
    let b_addr = tcp_addrs(&b).await[0].to_string();
    let port: u16 = b_addr.split('/').nth(4).unwrap().parse().unwrap();
    relay.forward_to(([127, 0, 0, 1], port).into());
    let a = start(
        NodeSpec {
            listen: Vec::new(),
            bootstrap: vec![
                format!("{}/p2p/{}", relay.multiaddr(), b.peer_id())
                    .parse()
                    .unwrap(),
            ],
            ..NodeSpec::default()
        },
        MemHost::new(),
    )
    .await;
    (a, b)
}

/// Waits until `mesh` has no connection to `peer`; returns when, or `None`.
async fn disconnected_within(mesh: &Mesh, peer: PeerId, within: Duration) -> Option<Instant> {
    eventually(within, || async {
        !mesh.connected_peers().await.contains(&peer)
    })
    .await
    .then(Instant::now)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_link_is_closed_within_seconds_and_calls_get_through_soon_after_it_heals() {
    bounded(async {
        let mut relay = Relay::bind().await;
        let (a, b) = pair_through(&mut relay).await;
        let answered = call(&a, b.peer_id(), Duration::from_secs(10))
            .await
            .expect("a call before the partition");
        assert_eq!(answered.result, Ok(echoed(vec![0x80])));

        relay.partition();
        let partitioned = Instant::now();
        // A call caught in the partition fails when the link is found dead, long before
        // its own deadline.
        let caught = {
            let a = a.clone();
            let b = b.peer_id();
            tokio::spawn(async move {
                let result = call(&a, b, Duration::from_secs(30)).await;
                (result, Instant::now())
            })
        };
        let a_noticed = disconnected_within(&a, b.peer_id(), PARTITION - Duration::from_secs(1))
            .await
            .expect("A never noticed that the link died");
        let b_noticed = disconnected_within(&b, a.peer_id(), Duration::from_secs(1))
            .await
            .expect("B never noticed that the link died");
        let (result, failed_at) = caught.await.unwrap();
        let detection = a_noticed - partitioned;
        eprintln!(
            "dead link noticed by A after {detection:?}, by B after {:?}",
            b_noticed - partitioned
        );
        assert!(detection < DETECTION_BOUND, "A noticed after {detection:?}");
        assert!(
            b_noticed - partitioned < DETECTION_BOUND,
            "B noticed after {:?}",
            b_noticed - partitioned
        );
        let err = result.expect_err("a call through a dead link");
        assert!(
            matches!(&err, MeshError::Unreachable { peer, .. } if *peer == b.peer_id()),
            "{err}"
        );
        assert!(failed_at - partitioned < DETECTION_BOUND + Duration::from_secs(1));

        // A call made while the network is down fails by its deadline, saying why.
        let started = Instant::now();
        let err = call(&a, b.peer_id(), Duration::from_secs(3))
            .await
            .expect_err("a call into the partition");
        let took = started.elapsed();
        assert!(took < Duration::from_millis(3500), "took {took:?}");
        let message = err.to_string();
        assert!(
            matches!(
                err,
                MeshError::Unreachable { .. } | MeshError::Deadline { .. }
            ) && message.contains(&b.peer_id().to_string()),
            "{message}"
        );

        tokio::time::sleep_until(partitioned + PARTITION).await;
        relay.heal();
        let healed = Instant::now();
        let answered = call(&a, b.peer_id(), RECOVERY_BOUND)
            .await
            .unwrap_or_else(|e| panic!("no answer within {RECOVERY_BOUND:?} of the heal: {e}"));
        assert_eq!(answered.result, Ok(echoed(vec![0x80])));
        eprintln!("answered {:?} after the heal", healed.elapsed());

        shutdown_all(&[&a, &b]).await;
    })
    .await
}

/// A call must not fail because a dial made before it, into the partition, gave up
/// after the network healed: it gets a dial of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_after_the_heal_is_not_failed_by_a_dial_from_before_it() {
    bounded(async {
        let mut relay = Relay::bind().await;
        relay.partition();
        // A dials B as it starts, into the partition: its SYN would be retransmitted at
        // 1 s and 3 s, then at 7 s, after the 5 s its setup may take.
        let started = Instant::now();
        let (a, b) = pair_through(&mut relay).await;
        tokio::time::sleep_until(started + Duration::from_millis(3300)).await;
        relay.heal();
        let answered = call(&a, b.peer_id(), RECOVERY_BOUND)
            .await
            .unwrap_or_else(|e| panic!("the call failed with the old dial: {e}"));
        assert_eq!(answered.result, Ok(echoed(vec![0x80])));
        shutdown_all(&[&a, &b]).await;
    })
    .await
}
