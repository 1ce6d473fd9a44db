//! `/spore/invoke/3`: round trips, remote errors, deadlines, peers that go away.

use std::time::Duration;

use spore_core::{Args, ErrorKind, Failure, FunctionRef, Hash, MemoUse, Path, TraceId};
use spore_mesh::{CallRequest, InvokeResponse, MeshError, PathStep, Returned};
use tokio::time::Instant;

use crate::common::*;

/// A call with these argument bytes that must be answered `within` from now.
fn request(args: Vec<u8>, within: Duration) -> CallRequest {
    CallRequest::new(
        FunctionRef::new(Hash::of(b"module"), "main".parse().unwrap()),
        Args::from_bytes(args),
        std::time::Instant::now() + within,
        16 << 20,
        TraceId::from_bytes([1; 16]),
    )
}

fn returned(value: Vec<u8>) -> Returned {
    Returned {
        value,
        memo: MemoUse::Skipped,
        effectful: false,
        stats: None,
    }
}

/// Echoes the arguments, or fails with a guest error when they are CBOR null.
fn echo(request: CallRequest, from: spore_mesh::PeerId) -> InvokeResponse {
    let mut path = Path::new();
    path.push(PathStep {
        node: "b".into(),
        step: format!("run {} for {from}", request.function),
        micros: 42,
    });
    if request.args.as_bytes() == [0xf6] {
        return InvokeResponse {
            result: Err(Failure {
                kind: ErrorKind::GuestError,
                message: "null is not allowed".into(),
                value: Some("x".into()),
            }),
            path,
            refused: false,
        };
    }
    InvokeResponse {
        result: Ok(returned(request.args.as_bytes().to_vec())),
        path,
        refused: false,
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
            .invoke(b.peer_id(), &request(args.clone(), Duration::from_secs(10)))
            .await
            .expect("invoke succeeds");
        assert_eq!(response.result, Ok(returned(args)));
        let steps = response.path.steps();
        assert_eq!(steps.len(), 1);
        assert_eq!(
            steps[0].step,
            format!("run {}:main for {}", Hash::of(b"module"), a.peer_id())
        );
        assert_eq!(steps[0].micros, 42);

        let response = a
            .invoke(b.peer_id(), &request(vec![0xf6], Duration::from_secs(10)))
            .await
            .expect("a remote error is a response, not a mesh error");
        let error = response.result.unwrap_err();
        assert_eq!(error.kind, ErrorKind::GuestError);
        assert_eq!(error.value, Some("x".into()));

        // B listened on QUIC too: a dial waits out QUIC's handshake timeout (3 s)
        // before it fails, so the deadline leaves room for that.
        b.shutdown().await;
        let started = Instant::now();
        let err = a
            .invoke(b.peer_id(), &request(vec![0x80], Duration::from_secs(5)))
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "took {:?}",
            started.elapsed()
        );
        // Unreachable once the dial fails; on a loaded machine the dial (QUIC's handshake
        // timeout) can outlast the call's deadline, which then ends it, naming the peer.
        assert!(
            matches!(err, MeshError::Unreachable { peer, .. } if peer == b.peer_id())
                || matches!(&err, MeshError::Deadline { during } if during.contains(&b.peer_id().to_string())),
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
                result: Ok(returned(request.args.as_bytes().to_vec())),
                path: Path::new(),
                refused: false,
            }
        });
        let b = start(NodeSpec::default(), b_host).await;
        let a = start_joining(&b, MemHost::new()).await;

        // The callee is stuck; the caller's deadline ends the wait.
        let started = Instant::now();
        let err = a
            .invoke(
                b.peer_id(),
                &request(vec![0x80], Duration::from_millis(500)),
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
                    .invoke(b, &request(vec![0x80], Duration::from_secs(20)))
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
