//! The mesh, side by side with its baselines in one run, all on loopback (127.0.0.1):
//!
//! - `remote_invoke_add`: one round trip of a remote invoke of `arith:add(2, 3)` over a
//!   warm connection: node B calls `Mesh::invoke` on node A, whose host is a real
//!   `NodeHost` running the function in Wasm (memoization off in A's configuration, so
//!   it really runs) (`spore_node_host`); the same with a host that echoes the arguments
//!   without running anything, from the blocking pool as every effectful call is served,
//!   so the transport's cost and that hand-off show (`spore_echo_host`);
//!   NATS request/reply through a `nats-server` this benchmark starts, with spore's
//!   request bytes as the payload and a trivial responder answering as many bytes as
//!   spore's response (`nats_request_reply`); a length-prefixed request/reply over one
//!   plain tokio TCP connection with the same sizes (`tcp_echo`). NATS and TCP only move
//!   bytes while spore's remote invoke also runs the function: that asymmetry is the
//!   comparison the target is about.
//! - `first_invoke_markdown`: on a fresh node that lacks the Markdown module but whose
//!   mesh is connected to one that holds it, the first `render` through
//!   `Node::resolve_anywhere` + `Node::invoke_placed` (fetch, verify, store, compile,
//!   run), against a warm invoke on the node that holds it loaded. Creating the fresh
//!   node (home, mesh, connection) is setup, excluded from the time.
//! - `fetch_64mib`: `Mesh::fetch` of a 64 MiB blob from a peer (every iteration moves and
//!   verifies all of it: the fetching side keeps nothing), against plain TCP moving the
//!   same bytes on one connection, without and with one BLAKE3 pass over them; and, to
//!   tell the transport's share from spore's, the same copy secured with libp2p's noise
//!   (`noise_copy`), with noise and one yamux stream (`noise_yamux_copy`), with
//!   libp2p's TLS 1.3 (`tls_copy`) and over one stream of libp2p's QUIC (`quic_copy`),
//!   without a swarm (`mesh/secured_copy.rs`).
//!
//! - `new_connection`: a client mesh just started calls a server mesh that runs all
//!   along; from `Mesh::start` returning to the first answer (`dial_to_first_answer`:
//!   the connection, the invoke stream and, with membership, the hellos), against the
//!   same call on a connection open all along (`warm_invoke_same_pair`), the round trip
//!   that the new connection's cost is counted in; then both again through a proxy that
//!   holds every byte 10 ms each way (`_slow_link`), where round trips dominate. The
//!   server answers at once; the clients run on a one-thread runtime of their own.
//!
//! Targets (spec): a remote invoke no slower than NATS request/reply; fetch at least
//! 300 MB/s.
//!
//! The NATS case needs `nats-server` on the PATH (`apt-get install nats-server`); without
//! it, that case alone is skipped with a note on stderr. Every node and task runs on one
//! 2-worker tokio runtime per group (`new_connection`'s clients excepted); the measured loops
//! run on a worker, as the daemon's would.

#[path = "support/nats.rs"]
mod nats;
#[path = "mesh/placed_call.rs"]
mod placed_call;
#[path = "mesh/secured_copy.rs"]
mod secured_copy;
#[path = "support/slow_link.rs"]
mod slow_link;

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ciborium::Value;
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use nats::NatsServer;
use slow_link::{slow_link, tcp_socket_addr};
use spore_core::{Args, CallRequest, Cancel, FunctionRef, Hash, MemoUse, Path, TraceId, value};
use spore_mesh::{
    InvokeNow, InvokeResponse, Keypair, Mesh, MeshConfig, MeshHost, Multiaddr, PeerId, Returned,
};
use spore_node::{Home, Node, NodeHost};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

const NATS_SUBJECT: &str = "spore.bench.invoke";
const BLOB_LEN: usize = 64 << 20;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `future` on one of the runtime's workers and waits for it.
fn on_worker<F>(rt: &Runtime, future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    rt.block_on(rt.spawn(future))
        .expect("benchmark task panicked")
}

fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(30)
}

fn cbor<T: serde::Serialize>(message: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(message, &mut bytes).unwrap();
    bytes
}

/// `len` deterministic, incompressible-looking bytes.
fn blob(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

// ---------------------------------------------------------------------------------
// Meshes and nodes

type InvokeFn = dyn Fn(CallRequest) -> InvokeResponse + Send + Sync;

/// A mesh host serving blobs from memory and answering invocations with a closure.
struct BenchHost {
    blobs: HashMap<Hash, Vec<u8>>,
    invoke: Box<InvokeFn>,
}

impl BenchHost {
    fn new(
        blobs: HashMap<Hash, Vec<u8>>,
        invoke: impl Fn(CallRequest) -> InvokeResponse + Send + Sync + 'static,
    ) -> Arc<BenchHost> {
        Arc::new(BenchHost {
            blobs,
            invoke: Box::new(invoke),
        })
    }

    fn empty() -> Arc<BenchHost> {
        Self::new(HashMap::new(), |_| {
            InvokeResponse::error(spore_core::ErrorKind::Failed, "this host runs nothing")
        })
    }
}

impl MeshHost for BenchHost {
    fn module_bytes(&self, hash: &Hash) -> Option<Vec<u8>> {
        self.blobs.get(hash).cloned()
    }

    fn module_hashes(&self) -> Vec<Hash> {
        self.blobs.keys().copied().collect()
    }

    fn invoke(&self, request: CallRequest, _from: PeerId, _cancel: Cancel) -> InvokeResponse {
        (self.invoke)(request)
    }
}

async fn start_mesh(
    keypair: Keypair,
    host: Arc<dyn MeshHost>,
    bootstrap: Vec<Multiaddr>,
    abilities: Vec<String>,
) -> Mesh {
    // Both nodes are members of one mesh: the hello is part of what is measured.
    let mesh_key = spore_core::trust::SecretKey::from_seed([0x5e; 32]);
    let serves: Vec<&str> = abilities.iter().map(String::as_str).collect();
    let membership = spore_mesh::Membership::admit(&mesh_key, &keypair, &[], &serves).ok();
    let config = MeshConfig {
        keypair,
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        announce: Vec::new(),
        bootstrap,
        mdns: false,
        abilities,
        membership,
        nat: Default::default(),
    };
    Mesh::start(config, host).await.expect("mesh starts")
}

async fn wait_connected(mesh: &Mesh, peer: PeerId) {
    let started = Instant::now();
    while !mesh.connected_peers().await.contains(&peer) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} did not connect to {peer} within 10 s",
            mesh.peer_id()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A `Node` on a home of its own, joined to the mesh with its real `NodeHost`; its mesh
/// is shut down when it is dropped (from a thread outside the runtime).
struct MeshNode {
    node: Arc<Node>,
    mesh: Mesh,
    runtime: tokio::runtime::Handle,
    _home: tempfile::TempDir,
}

impl MeshNode {
    fn open(
        rt: &Runtime,
        config: Option<&str>,
        keypair: Keypair,
        bootstrap: Vec<Multiaddr>,
    ) -> MeshNode {
        let home = tempfile::tempdir().unwrap();
        if let Some(config) = config {
            std::fs::write(home.path().join("config.toml"), config).unwrap();
        }
        let node = Node::open(Home::new(home.path())).unwrap();
        let host = Arc::new(NodeHost::new(&node));
        let mesh = rt.block_on(start_mesh(
            keypair,
            host,
            bootstrap,
            node.served_abilities(),
        ));
        node.attach_mesh(mesh.clone(), rt.handle().clone());
        MeshNode {
            node,
            mesh,
            runtime: rt.handle().clone(),
            _home: home,
        }
    }
}

impl Drop for MeshNode {
    fn drop(&mut self) {
        self.runtime.block_on(self.mesh.shutdown());
    }
}

// ---------------------------------------------------------------------------------
// NATS

// ---------------------------------------------------------------------------------
// Plain TCP

/// One length-prefixed frame: the 4-byte big-endian length, then the body.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

async fn read_frame(socket: &mut TcpStream, body: &mut Vec<u8>) -> std::io::Result<()> {
    let len = socket.read_u32().await? as usize;
    body.resize(len, 0);
    socket.read_exact(body).await?;
    Ok(())
}

/// A TCP server on loopback answering every frame it receives with `reply` (a whole
/// frame), until the runtime stops.
async fn tcp_server(reply: Arc<Vec<u8>>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            socket.set_nodelay(true).unwrap();
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut body = Vec::new();
                while read_frame(&mut socket, &mut body).await.is_ok() {
                    if socket.write_all(&reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn tcp_client(addr: std::net::SocketAddr) -> TcpStream {
    let socket = TcpStream::connect(addr).await.unwrap();
    socket.set_nodelay(true).unwrap();
    socket
}

// ---------------------------------------------------------------------------------
// remote_invoke_add

fn remote_invoke_add(c: &mut Criterion) {
    let rt = runtime();
    // A runs the function every time: with the memo on, it would answer from it. B calls
    // far more often than A lets one peer by default (`per_peer_calls_per_second`, 200):
    // the limit is raised so that its check is timed but never refuses.
    let default = spore_node::config::default_config();
    let memo_off = default.replace("[memo]\nenabled = true", "[memo]\nenabled = false");
    assert_ne!(memo_off, default);
    let a_config = memo_off.replace(
        "per_peer_calls_per_second = 200\n",
        "per_peer_calls_per_second = 1000000000\n",
    );
    assert_ne!(a_config, memo_off);
    let a = MeshNode::open(
        &rt,
        Some(&a_config),
        Keypair::generate_ed25519(),
        Vec::new(),
    );
    let arith = a
        .node
        .publish(&spore_test_programs::bytes("arith"), None)
        .unwrap()
        .manifest
        .module;
    let a_peer = a.mesh.peer_id();
    let b = rt.block_on(async {
        let b = start_mesh(
            Keypair::generate_ed25519(),
            BenchHost::empty(),
            a.mesh.listen_addrs().await,
            Vec::new(),
        )
        .await;
        wait_connected(&b, a_peer).await;
        b
    });

    // One request for the whole run: its deadline is far enough for every iteration,
    // and A cuts it to its own limit for forwarded calls anyway.
    let request = CallRequest::new(
        FunctionRef::new(arith, "add".parse().unwrap()),
        Args::encode(&[2.into(), 3.into()]).unwrap(),
        std::time::Instant::now() + Duration::from_secs(3600),
        64 << 20,
        TraceId::from_bytes([7; 16]),
    );
    let five = value::encode_canonical(&Value::Integer(5.into())).unwrap();
    // Warm: the connection, A's loaded module and its instance pool.
    let real = {
        let (b, request) = (b.clone(), request.clone());
        on_worker(&rt, async move {
            let mut last = None;
            for _ in 0..200 {
                last = Some(b.invoke(a_peer, &request).await.unwrap());
            }
            last.unwrap()
        })
    };
    assert_eq!(
        real.result.as_ref().map(|returned| &returned.value),
        Ok(&five),
        "{real:?}"
    );
    let steps = real.path.steps();
    assert!(
        steps.len() == 1
            && steps[0].step.starts_with("ran ")
            && steps[0].step.contains("Memory load"),
        "A runs the loaded module, neither the memo nor a compile: {steps:?}"
    );
    let request_body = cbor(&request);
    let response_len = cbor(&real).len();
    eprintln!(
        "remote_invoke_add: request {} bytes, response {response_len} bytes (CBOR bodies)",
        request_body.len()
    );

    // E echoes the arguments with the same path, so its response is as large as A's.
    let path: Path = real.path.clone();
    let returned: Returned = real.result.clone().expect("A answered");
    let echo = BenchHost::new(HashMap::new(), move |request| InvokeResponse {
        result: Ok(Returned {
            value: request.args.as_bytes().to_vec(),
            ..returned.clone()
        }),
        path: path.clone(),
        refused: false,
    });
    let e = rt.block_on(async {
        let e = start_mesh(
            Keypair::generate_ed25519(),
            echo,
            b.listen_addrs().await,
            Vec::new(),
        )
        .await;
        wait_connected(&b, e.peer_id()).await;
        e
    });
    let e_peer = e.peer_id();
    {
        let (b, sent) = (b.clone(), request.clone());
        let echoed = on_worker(&rt, async move {
            let mut last = None;
            for _ in 0..200 {
                last = Some(b.invoke(e_peer, &sent).await.unwrap());
            }
            last.unwrap()
        });
        assert_eq!(
            echoed
                .result
                .as_ref()
                .map(|returned| returned.value.as_slice()),
            Ok(request.args.as_bytes())
        );
        assert!(cbor(&echoed).len().abs_diff(response_len) <= 4);
    }

    // NATS: a responder on its own connection answers every request with a reply as
    // large as spore's response.
    let nats_server = NatsServer::start(false);
    let nats = nats_server.as_ref().map(|server| {
        let url = server.url();
        let request_payload = Bytes::from(request_body.clone());
        rt.block_on(async move {
            let responder = async_nats::connect(&url).await.unwrap();
            let mut requests = responder.subscribe(NATS_SUBJECT).await.unwrap();
            responder.flush().await.unwrap();
            let reply = Bytes::from(vec![0xa5; response_len]);
            let answering = tokio::spawn(async move {
                while let Some(message) = requests.next().await {
                    if let Some(to) = message.reply {
                        responder.publish(to, reply.clone()).await.unwrap();
                    }
                }
            });
            let client = async_nats::connect(&url).await.unwrap();
            for _ in 0..200 {
                let answer = client
                    .request(NATS_SUBJECT, request_payload.clone())
                    .await
                    .unwrap();
                assert_eq!(answer.payload.len(), response_len);
            }
            (client, request_payload, answering)
        })
    });

    // Plain TCP: one connection, a request frame of spore's request bytes, a reply frame
    // of its response's size.
    let reply_frame = Arc::new(frame(&vec![0xa5; response_len]));
    let request_frame = Arc::new(frame(&request_body));
    let tcp_addr = rt.block_on(tcp_server(reply_frame.clone()));
    let mut tcp = Some(rt.block_on(async {
        let mut socket = tcp_client(tcp_addr).await;
        let mut body = Vec::new();
        for _ in 0..200 {
            socket.write_all(&request_frame).await.unwrap();
            read_frame(&mut socket, &mut body).await.unwrap();
            assert_eq!(body.len(), response_len);
        }
        socket
    }));

    let mut group = c.benchmark_group("remote_invoke_add");
    group
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    for (case, peer) in [("spore_node_host", a_peer), ("spore_echo_host", e_peer)] {
        group.bench_function(case, |bencher| {
            bencher.iter_custom(|iters| {
                let (b, request) = (b.clone(), request.clone());
                on_worker(&rt, async move {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let response = b.invoke(peer, &request).await;
                        assert!(black_box(response).unwrap().result.is_ok());
                    }
                    started.elapsed()
                })
            })
        });
    }
    if let Some((client, payload, _)) = &nats {
        group.bench_function("nats_request_reply", |bencher| {
            bencher.iter_custom(|iters| {
                let (client, payload) = (client.clone(), payload.clone());
                on_worker(&rt, async move {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let answer = client.request(NATS_SUBJECT, payload.clone()).await;
                        assert_eq!(black_box(answer).unwrap().payload.len(), response_len);
                    }
                    started.elapsed()
                })
            })
        });
    }
    group.bench_function("tcp_echo", |bencher| {
        bencher.iter_custom(|iters| {
            let mut socket = tcp.take().expect("the TCP client is back");
            let request_frame = request_frame.clone();
            let (socket, elapsed) = on_worker(&rt, async move {
                let mut body = Vec::new();
                let started = Instant::now();
                for _ in 0..iters {
                    socket.write_all(&request_frame).await.unwrap();
                    read_frame(&mut socket, &mut body).await.unwrap();
                    assert_eq!(black_box(&body).len(), response_len);
                }
                (socket, started.elapsed())
            });
            tcp = Some(socket);
            elapsed
        })
    });
    group.finish();

    if let Some((_, _, answering)) = nats {
        answering.abort();
    }
    drop(nats_server);
    rt.block_on(async {
        e.shutdown().await;
        b.shutdown().await;
    });
    drop(a);
    rt.shutdown_timeout(Duration::from_secs(5));
}

// ---------------------------------------------------------------------------------
// first_invoke_markdown

fn first_invoke_markdown(c: &mut Criterion) {
    let rt = runtime();
    let holder = MeshNode::open(&rt, None, Keypair::generate_ed25519(), Vec::new());
    let markdown = holder
        .node
        .publish(&spore_test_programs::bytes("markdown"), None)
        .unwrap()
        .manifest
        .module;
    let text = format!("{markdown}:render");
    let holder_addrs = rt.block_on(holder.mesh.listen_addrs());
    let holder_peer = holder.mesh.peer_id();
    let args = vec![Value::Text(
        "# Title\n\nSome *markdown* with a [link](https://example.org).".into(),
    )];

    // What a caller of the node does: resolve the reference once, then call; placement
    // fetches the module when it is not here. The memo is off so that every call runs.
    let args = Args::encode(&args).unwrap();
    let run = |node: &Node| -> (Value, Path) {
        let function = node.function_ref(&text).unwrap();
        let request = CallRequest {
            memo: false,
            deadline: std::time::Instant::now() + Duration::from_secs(30),
            ..node.request(function, args.clone())
        };
        let called = node.call(request);
        (called.result.unwrap().value, called.path)
    };
    // Every fresh node has the same identity. Each one announces the module it fetched,
    // so with new identities the holder would hand every later node a growing list of
    // dead providers to dial; this way the only stale record names the asker itself.
    let fresh_identity = Keypair::generate_ed25519();
    // A first call leaves Cranelift compiling in the background (tiered compilation),
    // for 0.6 s of a core per node. Unwaited, the compiles of every measured fresh node
    // would run on through this group's other benchmark and the groups after it. So each
    // node is kept until its compiles end, which is waited for outside the timings.
    let retired: RefCell<Vec<Arc<Node>>> = RefCell::new(Vec::new());
    let settle = || {
        for node in retired.borrow_mut().drain(..) {
            while node.runtime().compiles_in_flight() > 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    let fresh = || {
        settle();
        let fresh = MeshNode::open(&rt, None, fresh_identity.clone(), holder_addrs.clone());
        rt.block_on(wait_connected(&fresh.mesh, holder_peer));
        fresh
    };

    let (warm, warm_path) = run(&holder.node);
    let (again, again_path) = run(&holder.node);
    assert_eq!(again, warm);
    assert!(
        again_path.len() == 1 && again_path.steps()[0].step.contains("Memory load"),
        "the holder runs its loaded module: {again_path:?}"
    );
    let Value::Text(html) = &warm else {
        panic!("render returns text: {warm:?} {warm_path:?}")
    };
    assert!(html.contains("<h1>"), "{html}");
    {
        let probe = fresh();
        assert!(
            probe.node.manifest(&markdown).is_err(),
            "the fresh node lacks the module"
        );
        let (value, path) = run(&probe.node);
        let path = path.steps();
        assert_eq!(value, warm);
        assert!(
            path.len() == 2
                && path[0].step.starts_with("fetched")
                && path[0].step.contains(&holder_peer.to_string())
                && path[1].step.contains("Compiled load"),
            "a fresh node fetches, compiles and runs: {path:?}"
        );
        // Where a first call's time goes, as its path reports it.
        eprintln!(
            "first_invoke_markdown: a fresh node's first call: fetch {} us, compile and run {} us ({})",
            path[0].micros, path[1].micros, path[1].step
        );
        retired.borrow_mut().push(probe.node.clone());
    }
    // The holder's own calls run on Cranelift's code, as a warm node's do.
    retired.borrow_mut().push(holder.node.clone());
    settle();

    let mut group = c.benchmark_group("first_invoke_markdown");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    group.bench_function("fresh_node_fetch_compile_run", |bencher| {
        bencher.iter_batched(
            fresh,
            |fresh| {
                let (value, path) = run(&fresh.node);
                assert!(path.steps()[0].step.starts_with("fetched"), "{path:?}");
                retired.borrow_mut().push(fresh.node.clone());
                // Returned, so that shutting the node down is not timed.
                (fresh, value)
            },
            BatchSize::PerIteration,
        )
    });
    settle();
    group.bench_function("warm_node", |bencher| bencher.iter(|| run(&holder.node)));
    group.finish();

    drop(holder);
    rt.shutdown_timeout(Duration::from_secs(5));
}

// ---------------------------------------------------------------------------------
// fetch_64mib

fn fetch_64mib(c: &mut Criterion) {
    let rt = runtime();
    // The serving side has a runtime of its own, as the other node's process would: on
    // one runtime of two workers, the two sides' tasks woke each other on the same
    // worker and the fetch kept one core of two busy.
    let serving = runtime();
    let data = Arc::new(blob(BLOB_LEN, 7));
    let hash = Hash::of(&data);
    let server = serving.block_on(start_mesh(
        Keypair::generate_ed25519(),
        BenchHost::new(HashMap::from([(hash, data.to_vec())]), |_| {
            InvokeResponse::error(spore_core::ErrorKind::Failed, "this host runs nothing")
        }),
        Vec::new(),
        Vec::new(),
    ));
    let (server, fetcher) = rt.block_on(async {
        let fetcher = start_mesh(
            Keypair::generate_ed25519(),
            BenchHost::empty(),
            server.listen_addrs().await,
            Vec::new(),
        )
        .await;
        wait_connected(&fetcher, server.peer_id()).await;
        (server, fetcher)
    });
    // The first fetch also makes the server build the module's tree, which it keeps
    // for the fetches that follow (as it would for a module in demand).
    {
        let (fetcher, data) = (fetcher.clone(), data.clone());
        let server_peer = server.peer_id();
        on_worker(&rt, async move {
            let fetched = fetcher.fetch(hash, deadline()).await.unwrap();
            assert!(fetched.bytes == *data);
            assert_eq!(fetched.sources, vec![(server_peer, BLOB_LEN as u64)]);
        });
    }

    // The same bytes over one plain TCP connection: ask with an empty frame, receive
    // one 64 MiB frame into a new buffer, as a fetch does.
    let whole = Arc::new(frame(&data));
    let tcp_addr = serving.block_on(tcp_server(whole));
    let mut tcp = Some(rt.block_on(tcp_client(tcp_addr)));

    let mut group = c.benchmark_group("fetch_64mib");
    group
        .throughput(Throughput::Bytes(BLOB_LEN as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(12));
    group.bench_function("spore_mesh_fetch", |bencher| {
        bencher.iter_custom(|iters| {
            let fetcher = fetcher.clone();
            on_worker(&rt, async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let fetched = fetcher.fetch(hash, deadline()).await.unwrap();
                    total += started.elapsed();
                    // Everything came over the wire, this time.
                    assert_eq!(fetched.sources[0].1, BLOB_LEN as u64);
                    assert_eq!(black_box(fetched).bytes.len(), BLOB_LEN);
                }
                total
            })
        })
    });
    for (case, layers) in [
        ("noise_copy", secured_copy::Layers::Noise),
        ("noise_yamux_copy", secured_copy::Layers::NoiseYamux),
        ("tls_copy", secured_copy::Layers::Tls),
        ("quic_copy", secured_copy::Layers::Quic),
    ] {
        let data = data.clone();
        let copier = rt.block_on(secured_copy::SecuredCopy::connect(&serving, layers, data));
        let copier = Arc::new(tokio::sync::Mutex::new(copier));
        group.bench_function(case, |bencher| {
            bencher.iter_custom(|iters| {
                let copier = copier.clone();
                on_worker(&rt, async move {
                    let mut copier = copier.lock().await;
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let started = Instant::now();
                        // A new buffer each time, as the fetch and the TCP copy have.
                        let mut body = vec![0; BLOB_LEN];
                        copier.copy(&mut body).await;
                        total += started.elapsed();
                        black_box(body);
                    }
                    total
                })
            })
        });
    }
    for (case, hash_it) in [("tcp_copy", false), ("tcp_copy_then_blake3", true)] {
        group.bench_function(case, |bencher| {
            bencher.iter_custom(|iters| {
                let mut socket = tcp.take().expect("the TCP client is back");
                let (socket, elapsed) = on_worker(&rt, async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let started = Instant::now();
                        socket.write_all(&frame(&[])).await.unwrap();
                        let mut body = Vec::new();
                        read_frame(&mut socket, &mut body).await.unwrap();
                        if hash_it {
                            black_box(Hash::of(&body));
                        }
                        total += started.elapsed();
                        assert_eq!(black_box(body).len(), BLOB_LEN);
                    }
                    (socket, total)
                });
                tcp = Some(socket);
                elapsed
            })
        });
    }
    group.finish();

    drop(tcp);
    rt.block_on(async {
        fetcher.shutdown().await;
        server.shutdown().await;
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    serving.shutdown_timeout(Duration::from_secs(5));
}

// ---------------------------------------------------------------------------------
// new_connection

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
fn new_connection(c: &mut Criterion) {
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

criterion_group!(
    benches,
    remote_invoke_add,
    first_invoke_markdown,
    fetch_64mib,
    new_connection,
    placed_call::placed_call_slow_link
);
criterion_main!(benches);
