//! Kademlia routing across a chain of nodes.

use std::num::NonZeroUsize;
use std::time::Duration;

use spore_mesh::{Keypair, Mesh, MeshTuning};
use tokio::time::Instant;

use crate::common::*;

const NODES: usize = 25;

/// 25 nodes, each bootstrapped only to the one before it. With Kademlia's k lowered to
/// 3, no node knows more than a few buckets' worth of peers, so finding the provider
/// takes several hops. The last node fetches a blob only the first one holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_is_found_through_provider_records_across_a_chain() {
    bounded(async {
        let tuning = MeshTuning {
            kademlia_k: NonZeroUsize::new(3).unwrap(),
            ..MeshTuning::default()
        };
        let bytes = blob(256 << 10, 5);
        let first_host = MemHost::new();
        let hash = first_host.insert(bytes.clone());

        let started = Instant::now();
        let mut nodes: Vec<Mesh> = Vec::new();
        for i in 0..NODES {
            let host = if i == 0 { first_host.clone() } else { MemHost::new() };
            let bootstrap = match nodes.last() {
                Some(previous) => tcp_addrs(previous).await,
                None => Vec::new(),
            };
            let spec = NodeSpec {
                keypair: Keypair::ed25519_from_bytes([i as u8 + 1; 32]).unwrap(),
                bootstrap,
                tuning: tuning.clone(),
                ..NodeSpec::default()
            };
            nodes.push(start(spec, host).await);
        }
        let first = &nodes[0];
        let last = &nodes[NODES - 1];
        first.announce(hash).await;
        eprintln!("chain up in {:?}", started.elapsed());

        let connected = last.connected_peers().await;
        eprintln!("last connected to {} peers; first among them: {}", connected.len(), connected.contains(&first.peer_id()));
        assert!(
            !connected.contains(&first.peer_id()),
            "the last node already talks to the first"
        );

        let fetched = last
            .fetch(hash, Instant::now() + Duration::from_secs(20))
            .await
            .expect("fetch through the DHT");
        assert!(fetched.bytes == bytes, "fetched bytes differ");
        assert_eq!(fetched.sources, vec![(first.peer_id(), bytes.len() as u64)]);
        eprintln!("fetched in {:?}, total {:?}", fetched.elapsed, started.elapsed());

        for node in &nodes {
            node.shutdown().await;
        }
    })
    .await
}
