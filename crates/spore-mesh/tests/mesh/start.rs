//! Starting a node: bound addresses, bootstrap peers that are not there.

use libp2p::multiaddr::Protocol;
use spore_mesh::{Keypair, Multiaddr};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_starts_despite_unreachable_bootstrap_peers_and_reports_bound_addresses() {
    bounded(async {
        let closed_port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let nobody = Keypair::generate_ed25519().public().to_peer_id();
        let unreachable: Multiaddr = format!("/ip4/127.0.0.1/tcp/{closed_port}/p2p/{nobody}")
            .parse()
            .unwrap();
        let mesh = start(
            NodeSpec {
                listen: vec![loopback_tcp(), loopback_quic()],
                bootstrap: vec![unreachable],
                ..NodeSpec::default()
            },
            MemHost::new(),
        )
        .await;

        let addrs = mesh.listen_addrs().await;
        assert_eq!(addrs.len(), 2, "{addrs:?}");
        for addr in &addrs {
            let protocols: Vec<Protocol> = addr.iter().collect();
            assert_eq!(
                protocols.last(),
                Some(&Protocol::P2p(mesh.peer_id())),
                "{addr}"
            );
            assert!(
                protocols
                    .iter()
                    .all(|p| !matches!(p, Protocol::Tcp(0) | Protocol::Udp(0))),
                "port not resolved: {addr}"
            );
        }
        assert!(mesh.connected_peers().await.is_empty());
        mesh.shutdown().await;
    })
    .await
}
