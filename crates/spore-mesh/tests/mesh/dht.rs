//! Kademlia routing across a chain of nodes.

use std::num::NonZeroUsize;
use std::time::Duration;

use spore_mesh::{Keypair, Mesh, MeshTuning};
use tokio::time::Instant;

use crate::common::*;

const NODES: usize = 25;

/// 25 nodes, each bootstrapped only to the one before it, with Kademlia's k lowered to
/// 3 so that a provider record lives on 3 nodes and no routing table holds the whole
/// mesh: finding it takes several hops. Nodes 0..=23 form the DHT, node 0 announces a
/// blob only it holds, then node 24 joins through node 23 and fetches the blob at once.
/// Having just joined, node 24 knows only node 23 (and holds no gossip), so reaching
/// node 0 can only come from the provider records.
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

        let mut nodes: Vec<Mesh> = Vec::new();
        for i in 0..NODES {
            let host = if i == 0 {
                first_host.clone()
            } else {
                MemHost::new()
            };
            let bootstrap = match nodes.last() {
                Some(previous) => tcp_addrs(previous).await,
                None => Vec::new(),
            };
            let spec = NodeSpec {
                // Fixed identities keep the DHT's geometry the same on every run.
                keypair: Keypair::ed25519_from_bytes([i as u8 + 1; 32]).unwrap(),
                bootstrap,
                tuning: tuning.clone(),
                ..NodeSpec::default()
            };
            if i == NODES - 1 {
                // The DHT has formed once every node knows more peers than its k; the
                // record then lands where node 24's lookup will converge.
                let formed = eventually(Duration::from_secs(20), || async {
                    for node in &nodes {
                        if node.connected_peers().await.len() <= 3 {
                            return false;
                        }
                    }
                    true
                })
                .await;
                assert!(
                    formed,
                    "the first {} nodes never found each other",
                    NODES - 1
                );
                nodes[0].announce(hash).await;
            }
            nodes.push(start(spec, host).await);
        }
        let first = &nodes[0];
        let last = &nodes[NODES - 1];

        let before = last.connected_peers().await;
        assert!(
            !before.contains(&first.peer_id()),
            "node 24 talks to node 0 before fetching: {before:?}"
        );
        let fetched = last
            .fetch(hash, Instant::now() + Duration::from_secs(20))
            .await
            .expect("fetch through the DHT");
        assert!(fetched.bytes == bytes, "fetched bytes differ");
        assert_eq!(fetched.sources, vec![(first.peer_id(), bytes.len() as u64)]);

        for node in &nodes {
            node.shutdown().await;
        }
    })
    .await
}
