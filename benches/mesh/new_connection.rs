//! `new_connection`: what a new connection costs before it carries a call, against the
//! same call on a connection open all along, directly and through a slow link; the
//! benchmark function's doc says how.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use spore_core::{Args, CallRequest, Cancel, FunctionRef, Hash, MemoUse, Path, TraceId};
use spore_mesh::{InvokeNow, InvokeResponse, Keypair, Mesh, MeshHost, Multiaddr, PeerId, Returned};

use super::slow_link::{slow_link, tcp_socket_addr};
use super::{BenchHost, runtime, start_mesh, wait_connected};

/// The one-way delay of the slow link in `new_connection`: a round trip of 20 ms.
const LINK_ONE_WAY: Duration = Duration::from_millis(10);

/// Answers every call at once with its arguments, on the mesh's own thread
/// (`MeshHost::invoke_now`): the cheapest answer a host can give, so that a call's time
/// is the mesh's.
struct EchoNow;

impl EchoNow {
    fn answer(request: &CallRequest) -> InvokeResponse {
        InvokeResponse {
            result: Ok(Returned {
                value: request.args.as_bytes().to_vec(),
                memo: MemoUse::Skipped,
                effectful: false,
                stats: None,
            }),
            path: Path::new(),
            refused: false,
        }
    }
}

impl MeshHost for EchoNow {
    fn module_bytes(&self, _: &Hash) -> Option<Vec<u8>> {
        None
    }

    fn module_hashes(&self) -> Vec<Hash> {
        Vec::new()
    }

    fn invoke(&self, request: CallRequest, _from: PeerId, _cancel: Cancel) -> InvokeResponse {
        Self::answer(&request)
    }

    fn invoke_now(&self, request: CallRequest, _from: PeerId) -> InvokeNow {
        InvokeNow::Answered(Self::answer(&request))
    }
}

async fn wait_disconnected(mesh: &Mesh, peer: PeerId) {
    let started = Instant::now();
    while mesh.connected_peers().await.contains(&peer) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} still connected to {peer} after 10 s",
            mesh.peer_id()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One client's first call: starts a client mesh bootstrapping to `addrs`, calls the
/// server at once, and returns the time from `Mesh::start` returning to the answer; then
/// shuts the client down and waits for the server to see it go (a second connection of
/// the same peer would not be greeted).
async fn first_answer(
    identity: &Keypair,
    addrs: &[Multiaddr],
    server: &Mesh,
    request: &CallRequest,
) -> Duration {
    let client = start_mesh(
        identity.clone(),
        BenchHost::empty(),
        addrs.to_vec(),
        Vec::new(),
    )
    .await;
    let started = Instant::now();
    let answer = client.invoke(server.peer_id(), request).await;
    let elapsed = started.elapsed();
    assert!(black_box(answer).unwrap().result.is_ok());
    client.shutdown().await;
    wait_disconnected(server, identity.public().to_peer_id()).await;
    elapsed
}

/// A client connected to `server` through `addrs`, its connection warm.
async fn warm_client(addrs: &[Multiaddr], server: &Mesh, request: &CallRequest) -> Mesh {
    let client = start_mesh(
        Keypair::generate_ed25519(),
        BenchHost::empty(),
        addrs.to_vec(),
        Vec::new(),
    )
    .await;
    wait_connected(&client, server.peer_id()).await;
    for _ in 0..20 {
        let answer = client.invoke(server.peer_id(), request).await.unwrap();
        assert_eq!(
            answer.result.unwrap().value.as_slice(),
            request.args.as_bytes()
        );
    }
    client
}

/// What a new connection costs before it carries a call: a client mesh that was just
/// started, bootstrapping to a server mesh that runs all along, calls the server at once;
/// the time from `Mesh::start` returning to the answer is taken (`dial_to_first_answer`):
/// TCP, noise, yamux, the invoke stream's negotiation and, where membership exists, the
/// hello each way and the wait for the server's verdict, besides what else a new
/// connection carries at first (identify, Kademlia's bootstrap, gossipsub). The same call
/// on a connection open all along, between the same server and another client, is the
/// round trip it is counted in (`warm_invoke_same_pair`). The server answers at once
/// (`EchoNow`), so nothing but the mesh is timed, and it has no other peer while the
/// clients connect, so they dial no one else. The `_slow_link` cases do the same through
/// a proxy that holds each byte 10 ms each way: there, round trips outweigh the work
/// done on each side, and a difference in time is a difference in round trips.
///
/// The clients run on a runtime of their own with one thread, as a node in another
/// process would: a client's swarm runs only once the timing task waits, so nothing of
/// the connection happens before the clock starts (on a shared multi-thread runtime,
/// another worker could take the swarm task and connect while the timing thread is
/// descheduled). Starting and shutting a client down is not timed; every client has the
/// same identity, and the next starts only once the server saw the last one go.
pub(super) fn new_connection(c: &mut Criterion) {
    let rt = runtime();
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(start_mesh(
        Keypair::generate_ed25519(),
        Arc::new(EchoNow),
        Vec::new(),
        Vec::new(),
    ));
    let direct = rt.block_on(server.listen_addrs());
    let proxy = rt.block_on(slow_link(tcp_socket_addr(&direct), LINK_ONE_WAY));
    let slow: Vec<Multiaddr> = vec![
        format!(
            "/ip4/127.0.0.1/tcp/{}/p2p/{}",
            proxy.port(),
            server.peer_id()
        )
        .parse()
        .unwrap(),
    ];
    let request = CallRequest::new(
        FunctionRef::new(Hash::of(b"echo"), "add".parse().unwrap()),
        Args::encode(&[2.into(), 3.into()]).unwrap(),
        std::time::Instant::now() + Duration::from_secs(3600),
        64 << 20,
        TraceId::from_bytes([8; 16]),
    );
    let client_identity = Keypair::generate_ed25519();

    let mut group = c.benchmark_group("new_connection");
    group
        .sample_size(30)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    for (case, addrs) in [
        ("dial_to_first_answer", &direct),
        ("dial_to_first_answer_slow_link", &slow),
    ] {
        if case.ends_with("slow_link") {
            group.sample_size(10);
        }
        group.bench_function(case, |bencher| {
            bencher.iter_custom(|iters| {
                client_rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += first_answer(&client_identity, addrs, &server, &request).await;
                    }
                    total
                })
            })
        });
    }
    // Only now does the server get other peers: while the clients above connected, its
    // routing table held no one else for their Kademlia bootstrap to find and dial.
    group.sample_size(30);
    for (case, addrs) in [
        ("warm_invoke_same_pair", &direct),
        ("warm_invoke_slow_link", &slow),
    ] {
        let warm = client_rt.block_on(warm_client(addrs, &server, &request));
        if case.ends_with("slow_link") {
            group.sample_size(10);
        }
        group.bench_function(case, |bencher| {
            bencher.iter_custom(|iters| {
                client_rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let answer = warm.invoke(server.peer_id(), &request).await;
                        assert!(black_box(answer).unwrap().result.is_ok());
                    }
                    started.elapsed()
                })
            })
        });
        client_rt.block_on(warm.shutdown());
    }
    group.finish();

    drop(client_rt);
    rt.block_on(server.shutdown());
    rt.shutdown_timeout(Duration::from_secs(5));
}
