//! A hundred nodes in one process, over loopback TCP (issue 13, item 6): fetches by hash
//! and placed calls while a fifth of the nodes leave and others join. Ignored by
//! default (minutes of work for two cores); the short version, `SPORE_SCALE_NODES=30`,
//! runs in CI's time. Its figures go in docs/performance.md:
//!
//!     cargo test -p spore-mesh --test mesh --release -- --ignored scale --nocapture

use std::time::Duration;

use spore_core::{Args, FunctionRef, Hash, TraceId};
use spore_mesh::{CallRequest, Keypair, Mesh};
use tokio::time::Instant;

use crate::common::*;
use crate::hops::Hops;
use crate::traced::{Counts, run_traced};

/// A small deterministic generator, so that a run can be repeated.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Every tenth node serves `gpu`; all answer calls.
async fn node(
    i: usize,
    bootstrap: Vec<spore_mesh::Multiaddr>,
    host: std::sync::Arc<MemHost>,
) -> Mesh {
    start(
        NodeSpec {
            keypair: Keypair::generate_ed25519(),
            bootstrap,
            abilities: if i.is_multiple_of(10) {
                vec!["gpu".into()]
            } else {
                Vec::new()
            },
            ..NodeSpec::default()
        },
        host,
    )
    .await
}

/// The connections the live nodes hold: counted at both ends (each end is one entry in
/// its node's table), and the pairs of nodes they join.
async fn connections_held(nodes: &[Option<Mesh>]) -> String {
    let mut ends = 0;
    let mut pairs = std::collections::HashSet::new();
    for mesh in nodes.iter().flatten() {
        for connection in mesh.connections().await {
            ends += 1;
            let (a, b) = (mesh.peer_id(), connection.peer);
            pairs.insert(if a < b { (a, b) } else { (b, a) });
        }
    }
    let live = nodes.iter().flatten().count();
    format!(
        "{live} nodes hold {ends} connection ends, between {} pairs",
        pairs.len()
    )
}

fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
#[ignore = "a hundred nodes: run with --ignored --release (see the module's doc)"]
fn scale_a_hundred_nodes_fetch_and_place_calls_through_churn() {
    let hops = Hops::default();
    run_traced(&hops, &Counts::default(), a_hundred_nodes(&hops));
}

async fn a_hundred_nodes(hops: &Hops) {
    let nodes_wanted: usize = std::env::var("SPORE_SCALE_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let started = Instant::now();

    // Each node joins through one of the nodes before it, so no node knows them all.
    let mut hosts = Vec::new();
    let mut nodes: Vec<Option<Mesh>> = Vec::new();
    for i in 0..nodes_wanted {
        let host = MemHost::with_invoke(echo);
        let bootstrap = if i == 0 {
            Vec::new()
        } else {
            let via = nodes[rng.below(i)].as_ref().unwrap();
            tcp_addrs(via).await
        };
        nodes.push(Some(node(i, bootstrap, host.clone()).await));
        hosts.push(host);
    }
    eprintln!("{nodes_wanted} nodes started in {:?}", started.elapsed());
    eprintln!("  {}", connections_held(&nodes).await);

    // Blobs held by nodes that stay (every tenth serves gpu and never leaves either).
    let mut blobs = Vec::new();
    let mut announcing = Vec::new();
    for b in 0..20 {
        let holder = (b * 7 + 3) % nodes_wanted;
        let hash = hosts[holder].insert(blob(64 << 10, b as u64));
        // At once: each waits for its provider record to be offered (up to 30 s).
        announcing.push(nodes[holder].as_ref().unwrap().announce(hash));
        blobs.push((hash, holder));
    }
    futures::future::join_all(announcing).await;
    eprintln!("20 blobs announced at {:?}", started.elapsed());
    eprintln!("  {}", connections_held(&nodes).await);

    let stays = |i: usize| i.is_multiple_of(10) || blobs.iter().any(|(_, h)| *h == i) || i == 0;

    // A fifth of the nodes leave during the run, one by one, and as many join.
    let churn = nodes_wanted / 5;
    let mut leave_order: Vec<usize> = (0..nodes_wanted).filter(|i| !stays(*i)).collect();
    for i in (1..leave_order.len()).rev() {
        leave_order.swap(i, rng.below(i + 1));
    }
    leave_order.truncate(churn);

    let mut fetch_ok = 0usize;
    let mut fetch_times = Vec::new();
    let mut fetch_failures = Vec::new();
    let mut invoke_ok = 0usize;
    let mut invoke_times = Vec::new();
    let mut invoke_failures = Vec::new();
    let rounds = churn.max(1);
    let fetches_per_round = 5;
    let invokes_per_round = 25;
    for round in 0..rounds {
        eprintln!(
            "round {round} at {:?}: fetched {fetch_ok} ({} failed), invoked {invoke_ok} ({} failed)",
            started.elapsed(),
            fetch_failures.len(),
            invoke_failures.len()
        );
        if round % 5 == 0 {
            eprintln!("  {}", connections_held(&nodes).await);
        }
        // One leaves (its connections close), one joins through a random live node.
        if let Some(&leaving) = leave_order.get(round)
            && let Some(mesh) = nodes[leaving].take()
        {
            mesh.shutdown().await;
        }
        let live: Vec<usize> = (0..nodes.len()).filter(|i| nodes[*i].is_some()).collect();
        let via = nodes[live[rng.below(live.len())]].as_ref().unwrap();
        let joiner = node(
            nodes.len(),
            tcp_addrs(via).await,
            MemHost::with_invoke(echo),
        )
        .await;
        // A joiner that happens to be a tenth serves gpu too: keep it.
        nodes.push(Some(joiner));

        let live: Vec<usize> = (0..nodes.len()).filter(|i| nodes[*i].is_some()).collect();
        for _ in 0..fetches_per_round {
            let (hash, holder) = blobs[rng.below(blobs.len())];
            let from = live[rng.below(live.len())];
            if from == holder {
                continue;
            }
            let t = Instant::now();
            let mesh = nodes[from].as_ref().unwrap();
            match mesh
                .fetch(hash, Instant::now() + Duration::from_secs(10))
                .await
            {
                Ok(fetched) if Hash::of(&fetched.bytes) == hash => {
                    fetch_ok += 1;
                    fetch_times.push(t.elapsed());
                }
                Ok(_) => fetch_failures.push("wrong bytes".to_owned()),
                Err(e) => {
                    eprintln!("  fetch failed after {:?}: {e}", t.elapsed());
                    fetch_failures.push(e.to_string())
                }
            }
        }
        for n in 0..invokes_per_round {
            let from = live[rng.below(live.len())];
            let mesh = nodes[from].as_ref().unwrap();
            let t = Instant::now();
            let deadline = Instant::now() + Duration::from_secs(10);
            // As placement does: the peers advertising the ability, tried in order.
            let result = async {
                let peers = mesh
                    .find_ability_peers(&["gpu".to_owned()], deadline)
                    .await
                    .map_err(|e| e.to_string())?;
                let request = CallRequest::new(
                    FunctionRef::new(Hash::of(b"module"), "render".parse().unwrap()),
                    Args::from_bytes(vec![0x81, (n % 24) as u8]),
                    deadline.into_std(),
                    1 << 20,
                    TraceId::default(),
                );
                let mut last = "no peer advertises gpu".to_owned();
                for peer in peers {
                    match mesh.invoke(peer, &request).await {
                        Ok(answer) if answer.result.is_ok() => return Ok(()),
                        Ok(answer) => last = format!("{:?}", answer.result.err()),
                        Err(e) => last = e.to_string(),
                    }
                }
                Err(last)
            }
            .await;
            match result {
                Ok(()) => {
                    invoke_ok += 1;
                    invoke_times.push(t.elapsed());
                }
                Err(e) => {
                    eprintln!("  placed invoke failed after {:?}: {e}", t.elapsed());
                    invoke_failures.push(e)
                }
            }
        }
    }

    eprintln!("  at the end: {}", connections_held(&nodes).await);
    fetch_times.sort();
    invoke_times.sort();
    let fetches = fetch_ok + fetch_failures.len();
    let invokes = invoke_ok + invoke_failures.len();
    eprintln!(
        "scale: {nodes_wanted} nodes, {churn} left and {churn} joined, {:?} in all",
        started.elapsed()
    );
    eprintln!(
        "fetch by hash: {fetch_ok}/{fetches} ({:.2}%), p50 {:?}, p99 {:?}",
        100.0 * fetch_ok as f64 / fetches.max(1) as f64,
        percentile(&fetch_times, 0.5),
        percentile(&fetch_times, 0.99)
    );
    eprintln!(
        "placed invoke: {invoke_ok}/{invokes} ({:.2}%), p50 {:?}, p99 {:?}",
        100.0 * invoke_ok as f64 / invokes.max(1) as f64,
        percentile(&invoke_times, 0.5),
        percentile(&invoke_times, 0.99)
    );
    let mut lookup_hops = hops.take();
    lookup_hops.sort();
    eprintln!(
        "lookup hops: {} lookups found a provider, p50 {}, p99 {}, max {}",
        lookup_hops.len(),
        percentile(&lookup_hops, 0.5),
        percentile(&lookup_hops, 0.99),
        lookup_hops.last().copied().unwrap_or_default()
    );
    for failure in fetch_failures.iter().chain(&invoke_failures).take(10) {
        eprintln!("  failure: {failure}");
    }
    for mesh in nodes.into_iter().flatten() {
        mesh.shutdown().await;
    }
    assert!(
        fetch_ok * 100 >= fetches * 99,
        "fetch success {fetch_ok}/{fetches}"
    );
    assert!(
        invoke_ok * 1000 >= invokes * 999,
        "placed invoke success {invoke_ok}/{invokes}"
    );
    assert!(
        percentile(&lookup_hops, 0.5) <= 3,
        "lookup hops p50 {}",
        percentile(&lookup_hops, 0.5)
    );
}
