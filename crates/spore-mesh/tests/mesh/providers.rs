//! Provider records at scale (issue 13, item 6): each of `SPORE_PROVIDER_NODES` nodes
//! (5 by default) holds `SPORE_PROVIDED_HASHES` modules (10,000 by default), provides
//! them all in the DHT, and republishes every record when its republication interval
//! comes round, with no error; then a module of each node is fetched by hash from
//! another. Ignored (minutes of work for two cores); its figures go in
//! docs/performance.md:
//!
//!     cargo test -p spore-mesh --test mesh --release -- --ignored provider_records --nocapture
//!
//! The short version, `SPORE_PROVIDED_HASHES=500 SPORE_PROVIDER_NODES=4`, takes about
//! 80 s, most of it waiting for the republication interval.

use std::time::Duration;

use spore_core::Hash;
use spore_mesh::{Keypair, Mesh, MeshTuning};
use tokio::time::Instant;

use crate::common::*;
use crate::hops::Hops;
use crate::traced::{Counts, run_traced};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Long enough for every node to have joined and made its first offer of all its
/// records (`SwarmTask::republish_once`) first, so that the republication is measured
/// alone.
const REPUBLISH_INTERVAL: Duration = Duration::from_secs(60);

#[test]
#[ignore = "10,000 provider records per node: run with --ignored --release (see the module's doc)"]
fn provider_records_for_ten_thousand_hashes_per_node_are_republished_without_errors() {
    let counts = Counts::default();
    run_traced(&Hops::default(), &counts, provider_records(&counts));
}

async fn provider_records(counts: &Counts) {
    let nodes_wanted = env("SPORE_PROVIDER_NODES", 5);
    let per_node = env("SPORE_PROVIDED_HASHES", 10_000);
    let started = Instant::now();
    let mut nodes: Vec<Mesh> = Vec::new();
    let mut held: Vec<Vec<Hash>> = Vec::new();
    for i in 0..nodes_wanted {
        let host = MemHost::new();
        let hashes: Vec<Hash> = (0..per_node)
            .map(|n| host.insert(format!("node {i} module {n}").into_bytes()))
            .collect();
        let bootstrap = match nodes.first() {
            Some(first) => tcp_addrs(first).await,
            None => Vec::new(),
        };
        let spec = NodeSpec {
            keypair: Keypair::generate_ed25519(),
            bootstrap,
            tuning: MeshTuning {
                provider_republish_interval: REPUBLISH_INTERVAL,
                ..MeshTuning::default()
            },
            ..NodeSpec::default()
        };
        nodes.push(start(spec, host).await);
        held.push(hashes);
    }
    let records = nodes_wanted * per_node;
    eprintln!(
        "{nodes_wanted} nodes holding {per_node} modules each started in {:?}",
        started.elapsed()
    );

    // Every node's republication runs once its interval has passed since it started.
    let republished = |counts: &Counts| {
        counts.starting_with("provider record republished")
            + counts.starting_with("provider record not republished")
    };
    let deadline = started + REPUBLISH_INTERVAL + Duration::from_secs(600);
    let mut first_republished = None;
    while republished(counts) < records && Instant::now() < deadline {
        if first_republished.is_none() && republished(counts) > 0 {
            first_republished = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let done = started.elapsed();
    let failed = counts.starting_with("provider record not republished");
    let first_offers_failed = counts.starting_with("provider record not stored remotely");
    eprintln!(
        "provider records: {} of {records} republished, {failed} errors; republication ran \
         from {:?} to {done:?} after the start; first offers that failed: {first_offers_failed}",
        republished(counts) - failed,
        first_republished.unwrap_or_default(),
    );

    // The records lead to the modules: one of each node's, fetched by the next node.
    let mut fetched = 0;
    for (i, hashes) in held.iter().enumerate() {
        let from = &nodes[(i + 1) % nodes_wanted];
        let hash = hashes[hashes.len() / 2];
        match from
            .fetch(hash, Instant::now() + Duration::from_secs(10))
            .await
        {
            Ok(module) if Hash::of(&module.bytes) == hash => fetched += 1,
            Ok(_) => eprintln!("  fetch of {hash} gave other bytes"),
            Err(e) => eprintln!("  fetch of {hash} failed: {e}"),
        }
    }
    eprintln!("fetched by hash: {fetched}/{nodes_wanted}");
    shutdown_all(&nodes.iter().collect::<Vec<_>>()).await;

    assert_eq!(failed, 0, "provider records not republished");
    assert_eq!(
        republished(counts),
        records,
        "every record republished within the bound"
    );
    assert_eq!(
        fetched, nodes_wanted,
        "a module of each node fetched by hash"
    );
}
