//! Nodes that cannot be dialled (issue 13, item 4): an edge with no listen address at
//! all is reached through a relay the mesh's certificates allow, and the connection is
//! shown as relayed. A relay whose certificate lacks the role is not used.

use std::time::Duration;

use libp2p::identity::Keypair;
use spore_core::{Args, FunctionRef, Hash, TraceId};
use spore_mesh::{CallRequest, Mesh, NatConfig, PeerId};

use crate::common::*;

/// A relay of the tests' mesh, serving circuits; its certificate gives it `roles`.
async fn relay_with_roles(roles: &[&str]) -> Mesh {
    let keypair = Keypair::generate_ed25519();
    let membership = spore_mesh::Membership::admit(&test_mesh(), &keypair, roles, &[]).unwrap();
    start(
        NodeSpec {
            keypair,
            membership: Membership::Given(membership),
            nat: NatConfig {
                serve_relay: true,
                relays: Vec::new(),
            },
            ..NodeSpec::default()
        },
        MemHost::new(),
    )
    .await
}

/// An edge that listens on no address: it can only be reached through `relay`. It
/// serves `gpu`, and answers every call with its arguments.
async fn unreachable_edge(relay: &Mesh) -> Mesh {
    start(
        NodeSpec {
            listen: Vec::new(),
            bootstrap: tcp_addrs(relay).await,
            abilities: vec!["gpu".into()],
            nat: NatConfig {
                serve_relay: false,
                relays: tcp_addrs(relay).await,
            },
            ..NodeSpec::default()
        },
        MemHost::with_invoke(echo),
    )
    .await
}

/// Another edge with no listen address, joining through the relay.
async fn other_edge(relay: &Mesh) -> Mesh {
    start(
        NodeSpec {
            listen: Vec::new(),
            bootstrap: tcp_addrs(relay).await,
            ..NodeSpec::default()
        },
        MemHost::new(),
    )
    .await
}

fn request() -> CallRequest {
    CallRequest::new(
        FunctionRef::new(Hash::of(b"module"), "render".parse().unwrap()),
        Args::from_bytes(vec![0x81, 0x07]),
        std::time::Instant::now() + Duration::from_secs(10),
        16 << 20,
        TraceId::default(),
    )
}

async fn relayed_addr(mesh: &Mesh) -> bool {
    mesh.listen_addrs()
        .await
        .iter()
        .any(|a| a.to_string().contains("/p2p-circuit/"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_with_no_listen_address_is_called_through_a_relay_of_the_mesh() {
    bounded(async {
        let relay = relay_with_roles(&["relay"]).await;
        let edge = unreachable_edge(&relay).await;
        assert!(
            eventually(Duration::from_secs(10), || relayed_addr(&edge)).await,
            "the edge never listened through the relay: {:?}",
            edge.listen_addrs().await
        );
        let caller = other_edge(&relay).await;

        // The caller finds the edge by the ability it advertises, and reaches it at its
        // relayed address: it has no other. The edge's provider record may reach the
        // relay a moment after the edge listens through it (seen once in a full run
        // under load: no provider yet), so the caller asks until it is there.
        let find = || async {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            let found = caller
                .find_ability_peers(&["gpu".to_owned()], deadline)
                .await;
            found.is_ok_and(|found| !found.is_empty())
        };
        assert!(
            eventually(Duration::from_secs(15), find).await,
            "no provider of gpu found"
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let found = caller
            .find_ability_peers(&["gpu".to_owned()], deadline)
            .await
            .unwrap();
        assert_eq!(found, vec![edge.peer_id()]);
        let answer = caller.invoke(edge.peer_id(), &request()).await.unwrap();
        assert_eq!(answer.result.unwrap().value, vec![0x81, 0x07]);

        let to_edge: Vec<_> = caller
            .connections()
            .await
            .into_iter()
            .filter(|c| c.peer == edge.peer_id())
            .collect();
        assert!(!to_edge.is_empty());
        assert!(
            to_edge.iter().all(|c| c.relayed),
            "neither edge can be dialled, so every connection is relayed: {to_edge:?}"
        );
        shutdown_all(&[&caller, &edge, &relay]).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_certificate_lacks_the_role_is_not_listened_through() {
    bounded(async {
        let relay = relay_with_roles(&[]).await;
        let edge = unreachable_edge(&relay).await;
        let relay_id: PeerId = relay.peer_id();
        assert!(
            eventually(Duration::from_secs(10), || async {
                edge.admitted(&relay_id).is_some()
            })
            .await,
            "the edge never admitted the relay"
        );
        // Long enough for a reservation, had one been asked for (milliseconds here).
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            !relayed_addr(&edge).await,
            "{:?}",
            edge.listen_addrs().await
        );
        shutdown_all(&[&edge, &relay]).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_reserves_no_circuit_for_a_peer_it_has_not_admitted() {
    use futures::StreamExt;
    use libp2p::multiaddr::Protocol;
    use libp2p::swarm::SwarmEvent;
    use libp2p::{SwarmBuilder, noise, tcp, yamux};

    bounded(async {
        let relay = relay_with_roles(&["relay"]).await;
        // A bare libp2p node that speaks the relay protocol and sends no hello: the
        // relay keeps its connection up for the seconds a hello may take to come.
        let mut stranger = SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .unwrap()
            .with_behaviour(|_, relay_client| relay_client)
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
            .build();
        let circuit = tcp_addrs(&relay).await[0]
            .clone()
            .with(Protocol::P2pCircuit);
        stranger.listen_on(circuit).unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match stranger.select_next_some().await {
                    SwarmEvent::NewListenAddr { address, .. } => break Ok(address),
                    SwarmEvent::ListenerClosed { reason, .. } => break Err(reason),
                    _ => {}
                }
            }
        })
        .await
        .expect("the relay answered within 10 s");
        assert!(
            outcome.is_err(),
            "a stranger was given a circuit: {outcome:?}"
        );

        // A member still is (the relay admits it).
        let edge = unreachable_edge(&relay).await;
        assert!(
            eventually(Duration::from_secs(10), || relayed_addr(&edge)).await,
            "the member is reachable through the relay"
        );
        shutdown_all(&[&relay, &edge]).await;
    })
    .await
}
