//! The invoke channel's own behaviour: sharing, ordering, idling and protocol errors.
//! (Round trips, remote errors and dying peers are in `tests/mesh/invoke.rs`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::PeerId;
use serde::Serialize;
use spore_core::{CallRequest, Cancel, ErrorKind};
use tokio::time::{Instant, timeout};

use crate::testing::{echo, echo_request};
use crate::wire::{INVOKE_FRAME_LIMIT, INVOKE_PROTOCOL, Numbered, read_numbered, write_frame};
use crate::{
    InvokeNow, InvokeResponse, Keypair, Mesh, MeshConfig, MeshHost, MeshTuning, Multiaddr,
};

/// Echoes the arguments. A call whose arguments are `[0x01]` takes a second; one whose
/// arguments are `[0x02]` is answered by `invoke_now`, the rest by `invoke`. A call whose
/// arguments are `[0x03]` runs until it is cancelled (at most 10 s), and counts itself in
/// [`CANCELLED`].
struct Echo;

static CANCELLED: AtomicU32 = AtomicU32::new(0);

impl MeshHost for Echo {
    fn module_bytes(&self, _: &spore_core::Hash) -> Option<Vec<u8>> {
        None
    }
    fn module_hashes(&self) -> Vec<spore_core::Hash> {
        Vec::new()
    }
    fn invoke(&self, request: CallRequest, _: PeerId, cancel: Cancel) -> InvokeResponse {
        match request.args.as_bytes() {
            [0x01] => std::thread::sleep(Duration::from_secs(1)),
            [0x03] => {
                let started = Instant::now();
                while !cancel.is_cancelled() && started.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if cancel.is_cancelled() {
                    CANCELLED.fetch_add(1, Ordering::SeqCst);
                }
            }
            _ => {}
        }
        echo(&request, "invoke")
    }
    fn invoke_now(&self, request: CallRequest, _: PeerId) -> InvokeNow {
        if request.args.as_bytes() == [0x02] {
            InvokeNow::Answered(echo(&request, "invoke_now"))
        } else {
            InvokeNow::Later(request)
        }
    }
}

async fn start(bootstrap: Vec<Multiaddr>, tuning: MeshTuning) -> Mesh {
    let keypair = Keypair::generate_ed25519();
    let config = MeshConfig {
        membership: crate::testing::member(&keypair, &[]),
        nat: Default::default(),
        keypair,
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        announce: Vec::new(),
        bootstrap,
        mdns: false,
        abilities: Vec::new(),
    };
    Mesh::start_tuned(config, Arc::new(Echo), tuning)
        .await
        .unwrap()
}

async fn pair(client_tuning: MeshTuning) -> (Mesh, Mesh) {
    let server = start(Vec::new(), MeshTuning::default()).await;
    let client = start(server.listen_addrs().await, client_tuning).await;
    (server, client)
}

fn request(args: &[u8]) -> CallRequest {
    echo_request(spore_core::Hash::of(b"m"), args, Duration::from_secs(10))
}

/// The argument bytes an echo answered with.
fn echoed(response: InvokeResponse) -> Vec<u8> {
    response.result.expect("an echo").value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_peer_share_one_stream_and_a_slow_call_holds_up_no_other() {
    let (server, client) = pair(MeshTuning::default()).await;
    let peer = server.peer_id();

    let slow = {
        let client = client.clone();
        tokio::spawn(async move { client.invoke(peer, &request(&[0x01])).await })
    };
    let started = Instant::now();
    let fast: Vec<_> = (0..20u8)
        .map(|i| {
            let client = client.clone();
            let args = [0x18, 100 + i];
            tokio::spawn(async move { (args, client.invoke(peer, &request(&args)).await) })
        })
        .collect();
    for call in fast {
        let (args, response) = call.await.unwrap();
        assert_eq!(echoed(response.unwrap()), args.to_vec());
    }
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "the fast calls waited for the slow one: {:?}",
        started.elapsed()
    );
    assert!(!slow.is_finished());
    let response = slow.await.unwrap().unwrap();
    assert_eq!(echoed(response), vec![0x01]);

    // A call the host answers at once, and one it hands to the blocking pool.
    let now = client.invoke(peer, &request(&[0x02])).await.unwrap();
    assert_eq!(now.path.steps()[0].step, "invoke_now");
    assert_eq!(echoed(now), vec![0x02]);
    let later = client.invoke(peer, &request(&[0x04])).await.unwrap();
    assert_eq!(later.path.steps()[0].step, "invoke");
    assert_eq!(echoed(later), vec![0x04]);

    // One stream for the 23 calls; two when a second connection between the two nodes
    // (both dialed at once, under load) took over meanwhile: the channel moves to the
    // connection both keep (`streams::Superseded`), so that the other can close.
    let opened = client.channels().opened();
    assert!(
        opened <= 2,
        "the calls did not share a stream: {opened} opened"
    );
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_channel_closes_and_the_next_call_opens_another() {
    let tuning = MeshTuning {
        idle_connection_timeout: Duration::from_millis(300),
        ..MeshTuning::default()
    };
    let (server, client) = pair(tuning).await;
    let peer = server.peer_id();

    let first = client.invoke(peer, &request(&[0x80])).await.unwrap();
    assert_eq!(echoed(first), vec![0x80]);
    tokio::time::sleep(Duration::from_millis(900)).await;
    let second = client.invoke(peer, &request(&[0x80])).await.unwrap();
    assert_eq!(echoed(second), vec![0x80]);
    assert_eq!(client.channels().opened(), 2);

    client.shutdown().await;
    server.shutdown().await;
}

/// An invoke stream the test writes and reads by hand.
async fn raw_stream(client: &Mesh, server: &Mesh) -> crate::streams::Stream {
    client
        .control()
        .open_stream(server.peer_id(), INVOKE_PROTOCOL)
        .await
        .unwrap()
}

async fn send<T: Serialize>(stream: &mut crate::streams::Stream, message: &T) {
    write_frame(stream, message, INVOKE_FRAME_LIMIT)
        .await
        .unwrap();
}

async fn answer_to(stream: &mut crate::streams::Stream) -> Numbered<InvokeResponse> {
    timeout(
        Duration::from_secs(5),
        read_numbered(stream, INVOKE_FRAME_LIMIT),
    )
    .await
    .expect("answered within 5 s")
    .expect("a well-formed answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_call_is_refused_by_its_id_and_unnumbered_garbage_resets_the_stream() {
    let (server, client) = pair(MeshTuning::default()).await;
    let mut stream = raw_stream(&client, &server).await;

    send(
        &mut stream,
        &Numbered {
            id: 7,
            message: "not a call",
        },
    )
    .await;
    let refused = answer_to(&mut stream).await;
    assert_eq!(refused.id, 7);
    assert_eq!(
        refused.message.result.unwrap_err().kind,
        ErrorKind::BadRequest
    );

    // The stream is still in step: the next call on it is answered.
    let call = Numbered {
        id: 8,
        message: request(&[0x80]),
    };
    send(&mut stream, &call).await;
    let answered = answer_to(&mut stream).await;
    assert_eq!(answered.id, 8);
    assert_eq!(echoed(answered.message), vec![0x80]);

    // A frame with no id cannot be answered: the server resets the stream.
    send(&mut stream, &[1, 2, 3]).await;
    let mut rest = Vec::new();
    let read = timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
        .await
        .expect("reset within 5 s");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "answered garbage with {rest:?}"
    );
    drop(stream);

    // Other streams are unaffected.
    let response = client
        .invoke(server.peer_id(), &request(&[0x80]))
        .await
        .unwrap();
    assert_eq!(echoed(response), vec![0x80]);
    client.shutdown().await;
    server.shutdown().await;
}

/// A caller closes its side of an invoke stream only when it waits for no answer on it
/// (the channel went idle, a write was cut off, the caller shut down or died): the calls
/// it left are cancelled instead of running on to their deadlines (a killed caller once
/// left its peer at full CPU for 40 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_closes_its_side_cancels_the_calls_it_left() {
    let (server, client) = pair(MeshTuning::default()).await;
    let mut stream = raw_stream(&client, &server).await;
    let before = CANCELLED.load(Ordering::SeqCst);
    for id in [1, 2] {
        let call = Numbered {
            id,
            message: request(&[0x03]),
        };
        send(&mut stream, &call).await;
    }
    // Both calls are running when the caller goes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let closed = Instant::now();
    stream.close().await.unwrap();
    let mut rest = Vec::new();
    let _ = timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
        .await
        .expect("the server ends the stream within 5 s of the caller leaving");
    assert!(
        closed.elapsed() < Duration::from_secs(2),
        "{:?}",
        closed.elapsed()
    );
    assert_eq!(CANCELLED.load(Ordering::SeqCst) - before, 2);
    client.shutdown().await;
    server.shutdown().await;
}
