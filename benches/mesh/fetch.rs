//! `fetch_64mib`: `Mesh::fetch` of a 64 MiB blob from a peer, against plain TCP moving the
//! same bytes on one connection (without and with one BLAKE3 pass over them) and the
//! secured copies of `secured_copy.rs`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use spore_core::Hash;
use spore_mesh::{InvokeResponse, Keypair};
use tokio::io::AsyncWriteExt;

use super::secured_copy;
use super::{
    BenchHost, frame, on_worker, read_frame, runtime, start_mesh, tcp_client, tcp_server,
    wait_connected,
};

const BLOB_LEN: usize = 64 << 20;

fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(30)
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

pub(super) fn fetch_64mib(c: &mut Criterion) {
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
