//! `/spore/fetch/1`: transfer, verification, failover.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use spore_core::Hash;
use spore_mesh::{FailureReason, FetchError, MeshTuning, Multiaddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::common::*;

const MIB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_a_blob_from_its_holder_and_reports_unknown_hashes_by_the_deadline() {
    bounded(async {
        let a_host = MemHost::new();
        let bytes = blob(5 * MIB, 1);
        let hash = a_host.insert(bytes.clone());
        let a = start(NodeSpec::default(), a_host).await;
        let b = start_joining(&a, MemHost::new()).await;

        let fetched = b
            .fetch(hash, Instant::now() + Duration::from_secs(20))
            .await
            .expect("fetch succeeds");
        assert!(fetched.bytes == bytes, "fetched bytes differ");
        assert_eq!(fetched.sources, vec![(a.peer_id(), bytes.len() as u64)]);

        let unknown = Hash::of(b"nobody holds this");
        let started = Instant::now();
        let deadline = started + Duration::from_secs(3);
        let err = b.fetch(unknown, deadline).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "took {:?}",
            started.elapsed()
        );
        assert!(
            matches!(err, FetchError::NoProviders { hash } if hash == unknown),
            "{err}"
        );
        assert!(err.to_string().contains("no providers found"), "{err}");

        shutdown_all(&[&a, &b]).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_over_the_fetchers_size_limit_is_refused_before_it_is_downloaded() {
    bounded(async {
        let a_host = MemHost::new();
        let hash = a_host.insert(blob(3 * MIB, 9));
        let a = start(NodeSpec::default(), a_host).await;
        let b = start(
            NodeSpec {
                bootstrap: tcp_addrs(&a).await,
                tuning: MeshTuning {
                    max_module_bytes: 2 * MIB as u64,
                    ..MeshTuning::default()
                },
                ..NodeSpec::default()
            },
            MemHost::new(),
        )
        .await;

        let err = b
            .fetch(hash, Instant::now() + Duration::from_secs(20))
            .await
            .unwrap_err();
        let FetchError::AllProvidersFailed { failures, .. } = &err else {
            panic!("{err}");
        };
        assert!(
            matches!(&failures[0].reason, FailureReason::Protocol(why)
                if why.contains("3145728 bytes, over this node's limit of 2097152")),
            "{err}"
        );

        shutdown_all(&[&a, &b]).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_bytes_are_refused_and_an_honest_provider_is_used() {
    bounded(async {
        let bytes = blob(5 * MIB, 2);
        let hash = Hash::of(&bytes);
        let mut tampered = bytes.clone();
        tampered[3 * MIB + 12345] ^= 0x40;
        let liar_host = MemHost::new();
        liar_host.insert_as(hash, tampered);
        let liar = start(NodeSpec::default(), liar_host).await;
        let b = start_joining(&liar, MemHost::new()).await;

        let err = b
            .fetch(hash, Instant::now() + Duration::from_secs(20))
            .await
            .unwrap_err();
        let FetchError::AllProvidersFailed { failures, .. } = &err else {
            panic!("expected every provider to fail, got: {err}");
        };
        assert_eq!(failures.len(), 1, "{err}");
        assert_eq!(failures[0].peer, liar.peer_id());
        assert!(
            matches!(failures[0].reason, FailureReason::HashMismatch(_)),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains(&liar.peer_id().to_string()), "{message}");
        assert!(message.contains("hash mismatch"), "{message}");

        let honest_host = MemHost::new();
        honest_host.insert(bytes.clone());
        let honest = start_joining(&liar, honest_host).await;
        honest.announce(hash).await;
        let fetched = b
            .fetch(hash, Instant::now() + Duration::from_secs(20))
            .await
            .expect("the honest provider serves the module");
        assert!(fetched.bytes == bytes, "fetched bytes differ");
        assert_eq!(
            fetched.sources,
            vec![(honest.peer_id(), bytes.len() as u64)],
            "the liar contributed bytes"
        );

        shutdown_all(&[&liar, &b, &honest]).await;
    })
    .await
}

/// Provider A is reached through a throttled proxy, and C's host holds every request
/// back until the test opens its gate. So A alone serves at first: it proves the size
/// with the final range, then streams more ranges. Once the proxy has passed more than
/// that first range, A has delivered it; A is shut down mid-transfer, C's gate opens,
/// and the fetch must finish from C, including the ranges A had in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_continues_from_another_provider_when_one_disappears() {
    bounded(async {
        let bytes = blob(16 * MIB, 3);
        let a_host = MemHost::new();
        let hash = a_host.insert(bytes.clone());
        let a = start(NodeSpec::default(), a_host).await;

        let gate = Gate::new();
        let c_host = MemHost::gated(gate.clone());
        c_host.insert(bytes.clone());
        let c = start_joining(&a, c_host).await;
        c.announce(hash).await;

        let (b, proxy) = start_behind_proxy(&a, 4 * MIB as u64).await;

        let fetch = {
            let b = b.clone();
            tokio::spawn(async move {
                b.fetch(hash, Instant::now() + Duration::from_secs(30))
                    .await
            })
        };
        // The final range is 1 MiB plus proof; beyond 2.5 MiB, A is streaming ranges
        // that B asked for only after verifying and keeping that first one.
        let passed = eventually(Duration::from_secs(20), || async {
            proxy.forwarded.load(Ordering::Relaxed) > (5 * MIB / 2) as u64
        })
        .await;
        assert!(passed, "A never served through the proxy");
        a.shutdown().await;
        gate.open();

        let fetched = fetch.await.unwrap().expect("fetch completes from C");
        assert!(fetched.bytes == bytes, "fetched bytes differ");
        let from = |peer| {
            fetched
                .sources
                .iter()
                .find(|(p, _)| *p == peer)
                .map_or(0, |(_, n)| *n)
        };
        assert!(
            from(a.peer_id()) >= MIB as u64,
            "sources: {:?}",
            fetched.sources
        );
        assert!(from(c.peer_id()) > 0, "sources: {:?}", fetched.sources);
        assert_eq!(from(a.peer_id()) + from(c.peer_id()), bytes.len() as u64);
        assert!(from(a.peer_id()) < bytes.len() as u64);

        proxy.task.abort();
        shutdown_all(&[&b, &c]).await;
    })
    .await
}

/// `Mesh::fetches` lists a fetch while it runs, its verified bytes growing range by
/// range, and no longer once it has succeeded. The holder is reached through a
/// throttled proxy (2 MiB/s), so that an 8 MiB fetch lasts long enough to watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_in_flight_is_listed_with_its_growing_progress_until_it_succeeds() {
    bounded(async {
        let bytes = blob(8 * MIB, 5);
        let a_host = MemHost::new();
        let hash = a_host.insert(bytes.clone());
        let a = start(NodeSpec::default(), a_host).await;
        let (b, proxy) = start_behind_proxy(&a, 2 * MIB as u64).await;
        assert!(b.fetches().is_empty(), "{:?}", b.fetches());

        let fetch = {
            let b = b.clone();
            tokio::spawn(async move {
                b.fetch(hash, Instant::now() + Duration::from_secs(30))
                    .await
            })
        };
        let mut seen = Vec::new();
        while !fetch.is_finished() {
            match b.fetches().as_slice() {
                [] => {}
                [one] => {
                    assert_eq!(one.hash, hash);
                    assert!(one.received <= bytes.len() as u64, "{one:?}");
                    if one.received > 0 {
                        // The final range proves the size before any byte is kept.
                        assert_eq!(one.size, Some(bytes.len() as u64), "{one:?}");
                        assert_eq!(one.peers, vec![a.peer_id()], "{one:?}");
                    }
                    seen.push(one.received);
                }
                more => panic!("one fetch runs, {} are listed: {more:?}", more.len()),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let fetched = fetch.await.unwrap().expect("fetch succeeds");
        assert!(fetched.bytes == bytes, "fetched bytes differ");
        assert!(b.fetches().is_empty(), "{:?}", b.fetches());

        assert!(
            seen.windows(2).all(|w| w[0] <= w[1]),
            "the bytes received went back: {seen:?}"
        );
        let mut partial: Vec<u64> = seen
            .iter()
            .copied()
            .filter(|&n| n > 0 && n < bytes.len() as u64)
            .collect();
        partial.dedup();
        assert!(
            partial.len() >= 3,
            "the fetch was not seen growing range by range: {seen:?}"
        );

        proxy.task.abort();
        shutdown_all(&[&a, &b]).await;
    })
    .await
}

/// A fetch that fails leaves `Mesh::fetches` too. The only peer holds every request
/// back until the test opens its gate, so the fetch is surely listed first, with
/// nothing received and no size; then the peer answers that it does not hold the
/// module.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_is_listed_until_it_fails() {
    bounded(async {
        let gate = Gate::new();
        let a = start(NodeSpec::default(), MemHost::gated(gate.clone())).await;
        let b = start_joining(&a, MemHost::new()).await;
        assert!(
            eventually(Duration::from_secs(10), || async {
                b.member_peers().await.contains(&a.peer_id())
            })
            .await
        );
        let unknown = Hash::of(b"held by nobody");
        let fetch = {
            let b = b.clone();
            tokio::spawn(async move {
                b.fetch(unknown, Instant::now() + Duration::from_secs(8))
                    .await
            })
        };
        assert!(
            eventually(Duration::from_secs(5), || async {
                matches!(b.fetches().as_slice(), [one] if one.hash == unknown)
            })
            .await,
            "the fetch is not listed: {:?}",
            b.fetches()
        );
        let listed = &b.fetches()[0];
        assert_eq!((listed.received, listed.size), (0, None), "{listed:?}");
        assert!(listed.peers.is_empty(), "{listed:?}");

        gate.open();
        let err = fetch.await.unwrap().unwrap_err();
        assert!(
            matches!(err, FetchError::NoProviders { hash } if hash == unknown),
            "{err}"
        );
        assert!(b.fetches().is_empty(), "{:?}", b.fetches());

        shutdown_all(&[&a, &b]).await;
    })
    .await
}

/// Not a benchmark with assertions: prints the throughput it saw, for reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_64_mib_between_two_local_nodes() {
    bounded(async {
        let bytes = blob(64 * MIB, 4);
        let a_host = MemHost::new();
        let hash = a_host.insert(bytes.clone());
        let a = start(NodeSpec::default(), a_host).await;
        let b = start_joining(&a, MemHost::new()).await;

        for round in ["cold", "warm"] {
            let fetched = b
                .fetch(hash, Instant::now() + Duration::from_secs(50))
                .await
                .expect("fetch succeeds");
            assert!(fetched.bytes == bytes, "fetched bytes differ");
            let secs = fetched.elapsed.as_secs_f64();
            eprintln!(
                "64 MiB fetch ({round} provider cache): {:.3} s, {:.0} MB/s",
                secs,
                bytes.len() as f64 / secs / 1e6
            );
        }
        shutdown_all(&[&a, &b]).await;
    })
    .await
}

/// A node that knows `a` only through a proxy passing `bytes_per_second`, connected to
/// `a` when this returns.
async fn start_behind_proxy(
    a: &spore_mesh::Mesh,
    bytes_per_second: u64,
) -> (spore_mesh::Mesh, ThrottledProxy) {
    let proxy = ThrottledProxy::start(socket_addr(&tcp_addrs(a).await[0]), bytes_per_second).await;
    let via_proxy: Multiaddr = format!(
        "/ip4/127.0.0.1/tcp/{}/p2p/{}",
        proxy.addr.port(),
        a.peer_id()
    )
    .parse()
    .unwrap();
    let b = start(
        NodeSpec {
            bootstrap: vec![via_proxy],
            ..NodeSpec::default()
        },
        MemHost::new(),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            b.connected_peers().await.contains(&a.peer_id())
        })
        .await
    );
    (b, proxy)
}

fn socket_addr(addr: &Multiaddr) -> SocketAddr {
    let mut ip = None;
    let mut port = None;
    for protocol in addr.iter() {
        match protocol {
            Protocol::Ip4(v) => ip = Some(v),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    SocketAddr::from((ip.unwrap(), port.unwrap()))
}

/// A TCP forwarder in front of one node that passes the node's bytes back at a fixed
/// rate and counts them.
struct ThrottledProxy {
    addr: SocketAddr,
    forwarded: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl ThrottledProxy {
    async fn start(target: SocketAddr, bytes_per_sec: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let forwarded = Arc::new(AtomicU64::new(0));
        let counter = forwarded.clone();
        let task = tokio::spawn(async move {
            // Dropped with this task, which aborts every connection.
            let mut connections = JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                let counter = counter.clone();
                connections.spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut in_read, mut in_write) = inbound.into_split();
                    let (mut out_read, mut out_write) = outbound.into_split();
                    let up = tokio::io::copy(&mut in_read, &mut out_write);
                    let down = async {
                        let mut buf = vec![0u8; 16 << 10];
                        loop {
                            let n = out_read.read(&mut buf).await?;
                            if n == 0 {
                                break;
                            }
                            in_write.write_all(&buf[..n]).await?;
                            counter.fetch_add(n as u64, Ordering::Relaxed);
                            let pause = Duration::from_secs_f64(n as f64 / bytes_per_sec as f64);
                            tokio::time::sleep(pause).await;
                        }
                        in_write.shutdown().await
                    };
                    // Either side closing ends the connection both ways.
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                    }
                });
            }
        });
        ThrottledProxy {
            addr,
            forwarded,
            task,
        }
    }
}
