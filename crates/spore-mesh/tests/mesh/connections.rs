//! The connections a node holds: one per peer, and those it dialed to peers it does not
//! keep only while spore streams use them (`spore_mesh::MeshTuning::kept_peers`).

use std::time::Duration;

use libp2p::multiaddr::Protocol;
use spore_core::{Args, FunctionRef, Hash, TraceId};
use spore_mesh::{CallRequest, Mesh, MeshTuning, PeerId};
use tokio::time::Instant;

use crate::common::*;

async fn connections_to(mesh: &Mesh, peer: PeerId) -> usize {
    let all = mesh.connections().await;
    all.iter().filter(|c| c.peer == peer).count()
}

async fn call(from: &Mesh, to: PeerId) {
    let request = CallRequest::new(
        FunctionRef::new(Hash::of(b"module"), "main".parse().unwrap()),
        Args::from_bytes(vec![0x01]),
        std::time::Instant::now() + Duration::from_secs(10),
        1 << 20,
        TraceId::default(),
    );
    let answer = from
        .invoke(to, &request)
        .await
        .expect("the call is answered");
    assert_eq!(answer.result, Ok(echoed(vec![0x01])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_dialed_a_peer_twice_ends_with_one_connection_both_sides_agree_on() {
    bounded(async {
        let b = start(NodeSpec::default(), MemHost::with_invoke(echo)).await;
        // The same peer twice: once through the peer book, once as a bare address
        // (dialed as it is, whoever answers), so that a holds two connections to b.
        let with_id = tcp_addrs(&b).await;
        let bare: Vec<_> = (with_id.iter())
            .map(|a| {
                a.iter()
                    .filter(|p| !matches!(p, Protocol::P2p(_)))
                    .collect()
            })
            .collect();
        let spec = NodeSpec {
            bootstrap: with_id.into_iter().chain(bare).collect(),
            ..NodeSpec::default()
        };
        let a = start(spec, MemHost::new()).await;
        let twice = eventually(Duration::from_secs(5), || async {
            connections_to(&a, b.peer_id()).await == 2
        });
        assert!(twice.await, "a did not dial b twice");

        // Within the grace for streams on the duplicate and a few checks.
        let once = eventually(Duration::from_secs(10), || async {
            connections_to(&a, b.peer_id()).await == 1 && connections_to(&b, a.peer_id()).await == 1
        });
        assert!(once.await, "a and b still hold two connections");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(connections_to(&a, b.peer_id()).await, 1);
        assert_eq!(connections_to(&b, a.peer_id()).await, 1);
        call(&a, b.peer_id()).await;
        shutdown_all(&[&a, &b]).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_connection_to_a_peer_not_kept_is_closed_and_a_kept_peers_is_not() {
    bounded(async {
        let b = start(NodeSpec::default(), MemHost::new()).await;
        // a and c each keep one peer, b, the one they join through.
        let idle = Duration::from_secs(2);
        let tuning = MeshTuning {
            kept_peers: 1,
            idle_connection_timeout: idle,
            unused_connection_timeout: idle,
            ..MeshTuning::default()
        };
        let joining_b = || NodeSpec {
            tuning: tuning.clone(),
            ..NodeSpec::default()
        };
        let bootstrap = tcp_addrs(&b).await;
        let c = start(
            NodeSpec {
                bootstrap: bootstrap.clone(),
                ..joining_b()
            },
            MemHost::with_invoke(echo),
        )
        .await;
        // a learns of c from b, once b has admitted it.
        let admitted = eventually(Duration::from_secs(10), || async {
            b.admitted(&c.peer_id()).is_some()
        });
        assert!(admitted.await, "b did not admit c");
        let started = Instant::now();
        let a = start(
            NodeSpec {
                bootstrap,
                ..joining_b()
            },
            MemHost::new(),
        )
        .await;
        call(&a, c.peer_id()).await;
        assert_eq!(connections_to(&a, c.peer_id()).await, 1);

        // The call's channel idles out after `idle`, the connection `idle` later.
        let closed = eventually(idle * 2 + Duration::from_secs(5), || async {
            connections_to(&a, c.peer_id()).await == 0 && connections_to(&c, a.peer_id()).await == 0
        });
        assert!(closed.await, "a still holds its connection to c");
        let to_b = a.connections().await;
        let to_b: Vec<_> = to_b.iter().filter(|c| c.peer == b.peer_id()).collect();
        assert_eq!(to_b.len(), 1, "{to_b:?}");
        // Opened at a's start (within a second), and not since.
        let since_start = started.elapsed() - Duration::from_secs(1);
        assert!(to_b[0].open_for >= since_start, "{to_b:?}");

        // c is dialed again when called again.
        call(&a, c.peer_id()).await;
        shutdown_all(&[&a, &b, &c]).await;
    })
    .await
}
