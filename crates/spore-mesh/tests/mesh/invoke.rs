//! `/spore/invoke/2`: round trips, remote errors, deadlines, peers that go away.

use std::time::Duration;

use spore_core::Hash;
use spore_mesh::{InvokeRequest, InvokeResponse, MeshError, PathStep, WireError};
use tokio::time::Instant;

use crate::common::*;

fn request(args: Vec<u8>) -> InvokeRequest {
    InvokeRequest {
        function: format!("{}:main", Hash::of(b"module")),
        args,
        trace: "trace-1".into(),
        deadline_ms: 5_000,
        hops: 0,
    }
}

/// Echoes the arguments, or fails with a guest error when they are CBOR null.
fn echo(request: InvokeRequest, from: spore_mesh::PeerId) -> InvokeResponse {
    let path = vec![PathStep {
        node: "b".into(),
        step: format!("run {} for {from}", request.function),
        micros: 42,
    }];
    if request.args == [0xf6] {
        return InvokeResponse {
            result: Err(WireError {
                kind: spore_core::ErrorKind::GuestError,
                message: "null is not allowed".into(),
                value: Some(vec![0x61, b'x']),
            }),
            path,
        };
    }
    InvokeResponse {
        result: Ok(request.args),
        path,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invokes_a_peer_and_fails_promptly_once_it_is_gone() {
    bounded(async {
        let b = start(
            NodeSpec {
                listen: vec![loopback_tcp(), loopback_quic()],
                ..NodeSpec::default()
            },
            MemHost::with_invoke(echo),
        )
        .await;
        assert_eq!(b.listen_addrs().await.len(), 2);
        let a = start_joining(&b, MemHost::new()).await;

        let args = vec![0x82, 0x01, 0x02];
        let response = a
            .invoke(
                b.peer_id(),
                request(args.clone()),
                Instant::now() + Duration::from_secs(10),
            )
            .await
            .expect("invoke succeeds");
        assert_eq!(response.result, Ok(args));
        assert_eq!(response.path.len(), 1);
        assert_eq!(
            response.path[0].step,
            format!("run {}:main for {}", Hash::of(b"module"), a.peer_id())
        );
        assert_eq!(response.path[0].micros, 42);

        let response = a
            .invoke(
                b.peer_id(),
                request(vec![0xf6]),
                Instant::now() + Duration::from_secs(10),
            )
            .await
            .expect("a remote error is a response, not a mesh error");
        let error = response.result.unwrap_err();
        assert_eq!(error.kind, spore_core::ErrorKind::GuestError);
        assert_eq!(error.value, Some(vec![0x61, b'x']));

        // B listened on QUIC too: a dial waits out QUIC's handshake timeout (3 s)
        // before it fails, so the deadline leaves room for that.
        b.shutdown().await;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(5);
        let err = a
            .invoke(b.peer_id(), request(vec![0x80]), deadline)
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "took {:?}",
            started.elapsed()
        );
        assert!(
            matches!(err, MeshError::Unreachable { peer, .. } if peer == b.peer_id()),
            "{err}"
        );
        a.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_dying_mid_call_or_a_slow_call_ends_by_the_deadline() {
    bounded(async {
        let gate = Gate::new();
        let held = gate.clone();
        let b_host = MemHost::with_invoke(move |request, _| {
            held.wait();
            InvokeResponse {
                result: Ok(request.args),
                path: Vec::new(),
            }
        });
        let b = start(NodeSpec::default(), b_host).await;
        let a = start_joining(&b, MemHost::new()).await;

        // The callee is stuck; the caller's deadline ends the wait.
        let started = Instant::now();
        let err = a
            .invoke(
                b.peer_id(),
                request(vec![0x80]),
                started + Duration::from_millis(500),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, MeshError::Deadline { .. }), "{err}");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "took {:?}",
            started.elapsed()
        );

        // The callee dies mid-call: the caller learns at once, long before its deadline.
        let call = {
            let a = a.clone();
            let b = b.peer_id();
            tokio::spawn(async move {
                let started = Instant::now();
                let result = a
                    .invoke(b, request(vec![0x80]), started + Duration::from_secs(20))
                    .await;
                (result, started.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.shutdown().await;
        let (result, elapsed) = call.await.unwrap();
        let err = result.unwrap_err();
        assert!(matches!(err, MeshError::Unreachable { .. }), "{err}");
        assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");

        gate.open();
        a.shutdown().await;
    })
    .await
}
