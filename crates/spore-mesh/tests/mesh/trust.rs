//! Membership (`spec/trust.md`): only peers whose certificate admits them to this node's
//! mesh are served, and only those whose certificate grants an ability are asked for it.

use std::time::Duration;

use spore_core::trust::{self, SecretKey, Signed};
use spore_mesh::{Keypair, MeshError};
use tokio::time::Instant;

use crate::common::*;

/// A certificate of the tests' mesh for `keypair`, issued and expiring as given.
fn certificate(
    keypair: &Keypair,
    issued_ms: u64,
    expires_ms: Option<u64>,
) -> spore_mesh::Membership {
    let body = trust::Membership {
        mesh: test_mesh().public(),
        node: spore_mesh::keypair_key(keypair).unwrap(),
        roles: Vec::new(),
        serves: Vec::new(),
        issued_ms,
        expires_ms,
    };
    spore_mesh::Membership {
        certificate: Signed::sign(body, &test_mesh()).unwrap(),
        revocations: Vec::new(),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Starts a node joining `via` with `membership`, and returns why `via` would not
/// serve it: the error of a call from it.
async fn refusal(via: &spore_mesh::Mesh, keypair: Keypair, membership: Membership) -> MeshError {
    let node = start(
        NodeSpec {
            keypair,
            bootstrap: tcp_addrs(via).await,
            membership,
            ..NodeSpec::default()
        },
        MemHost::new(),
    )
    .await;
    // The member side judges the newcomer and disconnects it.
    assert!(
        eventually(Duration::from_secs(15), || async {
            !via.connected_peers().await.contains(&node.peer_id())
        })
        .await,
        "the member kept the connection"
    );
    assert!(via.admitted(&node.peer_id()).is_none());
    let request = spore_core::CallRequest::new(
        spore_core::FunctionRef::new(spore_core::Hash::of(b"f"), "main".parse().unwrap()),
        spore_core::Args::from_bytes(vec![0x80]),
        std::time::Instant::now() + Duration::from_secs(5),
        1 << 20,
        spore_core::TraceId::default(),
    );
    let error = via.invoke(node.peer_id(), &request).await.unwrap_err();
    node.shutdown().await;
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_a_valid_certificate_is_refused_saying_why() {
    bounded(async {
        let member = start(NodeSpec::default(), MemHost::new()).await;

        let stranger = refusal(&member, Keypair::generate_ed25519(), Membership::Stranger).await;
        assert!(
            stranger.to_string().contains("belongs to no mesh"),
            "{stranger}"
        );

        let other_mesh = SecretKey::from_seed([0x77; 32]);
        let keypair = Keypair::generate_ed25519();
        let elsewhere = spore_mesh::Membership::admit(&other_mesh, &keypair, &[], &[]).unwrap();
        let foreign = refusal(&member, keypair, Membership::Given(elsewhere)).await;
        assert!(
            foreign.to_string().contains("not this node's mesh"),
            "{foreign}"
        );

        let keypair = Keypair::generate_ed25519();
        let lapsed = certificate(&keypair, now_ms() - 10_000, Some(now_ms() - 1_000));
        let expired = refusal(&member, keypair, Membership::Given(lapsed)).await;
        assert!(expired.to_string().contains("expired"), "{expired}");

        shutdown_all(&[&member]).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_spreads_with_the_hello_and_cuts_the_revoked_peer_off() {
    bounded(async {
        let revoked_keypair = Keypair::generate_ed25519();
        let revoked_key = spore_mesh::keypair_key(&revoked_keypair).unwrap();
        let b = start(NodeSpec::default(), MemHost::new()).await;
        let revoked = start(
            NodeSpec {
                keypair: revoked_keypair,
                bootstrap: tcp_addrs(&b).await,
                ..NodeSpec::default()
            },
            MemHost::new(),
        )
        .await;
        assert!(
            eventually(Duration::from_secs(10), || async {
                b.admitted(&revoked.peer_id()).is_some()
            })
            .await,
            "b admits the node before it hears of the revocation"
        );
        // A knows of the revocation; its hello to B carries it.
        let keypair = Keypair::generate_ed25519();
        let mut knows = spore_mesh::Membership::admit(&test_mesh(), &keypair, &[], &[]).unwrap();
        let revocation = trust::Revocation {
            mesh: test_mesh().public(),
            node: revoked_key,
            revoked_ms: now_ms(),
            reason: "the device was lost".into(),
        };
        knows
            .revocations
            .push(Signed::sign(revocation, &test_mesh()).unwrap());
        let a = start(
            NodeSpec {
                keypair,
                bootstrap: tcp_addrs(&b).await,
                membership: Membership::Given(knows),
                ..NodeSpec::default()
            },
            MemHost::new(),
        )
        .await;
        assert!(
            eventually(Duration::from_secs(15), || async {
                b.admitted(&revoked.peer_id()).is_none()
                    && !b.connected_peers().await.contains(&revoked.peer_id())
            })
            .await,
            "b still serves the revoked node"
        );
        assert!(b.admitted(&a.peer_id()).is_some());
        shutdown_all(&[&a, &b, &revoked]).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ability_is_asked_only_of_members_whose_certificate_grants_it() {
    bounded(async {
        let caller = start(NodeSpec::default(), MemHost::new()).await;
        let sensor = |membership: Membership| {
            let caller = caller.clone();
            async move {
                start(
                    NodeSpec {
                        abilities: vec!["sensor".into()],
                        bootstrap: tcp_addrs(&caller).await,
                        membership,
                        ..NodeSpec::default()
                    },
                    MemHost::new(),
                )
                .await
            }
        };
        let granted = sensor(Membership::Default).await;
        let not_granted = sensor(Membership::Serving(Vec::new())).await;
        let stranger = sensor(Membership::Stranger).await;
        let find = || async {
            caller
                .find_ability_peers(&["sensor".into()], Instant::now() + Duration::from_secs(5))
                .await
                .unwrap()
        };
        assert!(
            eventually(Duration::from_secs(15), || async {
                find().await == vec![granted.peer_id()]
            })
            .await,
            "sensor peers: {:?} (granted {}, not granted {}, stranger {})",
            find().await,
            granted.peer_id(),
            not_granted.peer_id(),
            stranger.peer_id()
        );
        shutdown_all(&[&caller, &granted, &not_granted, &stranger]).await;
    })
    .await
}
