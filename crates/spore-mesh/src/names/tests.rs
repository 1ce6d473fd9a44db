//! Mesh names between real swarms on loopback: a member's chain is kept in the DHT and
//! handed to the node; a stranger's, sent on gossip and to the DHT directly, is neither.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::PeerId;
use spore_core::trust::{ChainRun, Publication, SecretKey, Signed};
use spore_core::{CallRequest, Cancel};
use tokio::time::Instant;

use crate::{InvokeResponse, Mesh, MeshHost, Multiaddr};

/// A host that holds nothing and remembers the chains it is told of.
#[derive(Default)]
struct Names(Mutex<Vec<(String, PeerId)>>);

impl MeshHost for Names {
    fn module_bytes(&self, _: &spore_core::Hash) -> Option<Vec<u8>> {
        None
    }
    fn module_hashes(&self) -> Vec<spore_core::Hash> {
        Vec::new()
    }
    fn invoke(&self, _: CallRequest, _: PeerId, _: Cancel) -> InvokeResponse {
        InvokeResponse::error(spore_core::ErrorKind::Failed, "runs nothing")
    }
    fn chain_received(&self, run: ChainRun, from: PeerId) {
        self.0.lock().unwrap().push((run.name().to_owned(), from));
    }
}

async fn start(bootstrap: Vec<Multiaddr>, member: bool, host: Arc<Names>) -> Mesh {
    crate::testing::start_mesh(bootstrap, member, host).await
}

fn chain(key: &SecretKey, name: &str) -> ChainRun {
    let body = Publication {
        publisher: key.public(),
        name: name.into(),
        target: Some(spore_core::Hash::of(name.as_bytes()).to_hex()),
        seq: 1,
        at_ms: 1,
        previous: None,
    };
    ChainRun::new(vec![Signed::sign(body, key).unwrap()]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_chain_is_kept_and_told_and_a_strangers_is_not() {
    let told = Arc::new(Names::default());
    let node = start(Vec::new(), true, told.clone()).await;
    let member = start(node.listen_addrs().await, true, Arc::default()).await;
    let stranger = start(node.listen_addrs().await, false, Arc::default()).await;
    let key = SecretKey::from_seed([0xc1; 32]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.admitted(&member.peer_id()).is_none() {
        assert!(Instant::now() < deadline, "the member was not admitted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Gossipsub grafts its mesh on its heartbeat (each second).
    tokio::time::sleep(Duration::from_millis(1500)).await;

    stranger.publish_chain(chain(&key, "evil.name")).await;
    member.publish_chain(chain(&key, "good.name")).await;
    let found = node
        .find_chain(
            key.public(),
            "good.name",
            Instant::now() + Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        found,
        Some(chain(&key, "good.name")),
        "the member's chain is in the DHT"
    );
    while !told
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|(name, _)| name == "good.name")
    {
        assert!(
            Instant::now() < deadline,
            "the node was not told of the member's chain"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The stranger's went out first; give it a second more to arrive if it could.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let told = told.0.lock().unwrap().clone();
    assert!(
        told.iter()
            .all(|(name, from)| name == "good.name" && *from == member.peer_id()),
        "{told:?}"
    );
    let found = node
        .find_chain(
            key.public(),
            "evil.name",
            Instant::now() + Duration::from_secs(2),
        )
        .await;
    assert_eq!(found, None, "a stranger's chain was kept");
    for mesh in [stranger, member, node] {
        mesh.shutdown().await;
    }
}
