//! What a peer stores in a node's DHT (a provider record, a name's chain) before its
//! hello is judged: Kademlia sends its request as soon as a connection is open, so it
//! can come first. It is kept once the peer is admitted, and not if the peer is refused.
//!
//! A spore node sends its hello at once, so the peer here is a bare libp2p client that
//! speaks spore's Kademlia and sends its hello only when the test says.

use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{AsyncWriteExt, FutureExt, StreamExt};
use libp2p::core::upgrade::{DeniedUpgrade, OutboundUpgrade, UpgradeInfo};
use libp2p::swarm::handler::{OneShotHandler, OneShotHandlerConfig};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, NotifyHandler, StreamUpgradeError,
    SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{StreamProtocol, Swarm, SwarmBuilder, kad, noise, tcp, yamux};
use spore_core::trust::{ChainRun, Hello, Publication, SecretKey, Signed};
use spore_mesh::{Keypair, Mesh, Multiaddr, PeerId};
use tokio::time::Instant;

use crate::common::*;

/// spore's Kademlia and hello protocols (`spec/wire.md`).
const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/spore/kad/1");
const HELLO_PROTOCOL: StreamProtocol = StreamProtocol::new("/spore/hello/1");
/// The largest hello (`spec/trust.md`).
const HELLO_FRAME_LIMIT: usize = 256 << 10;

/// The Kademlia key of the providers of ability `name` (`spec/wire.md`).
fn ability_key(name: &str) -> kad::RecordKey {
    kad::RecordKey::new(&format!("spore/ability/{name}"))
}

#[derive(libp2p::swarm::NetworkBehaviour)]
struct Bare {
    kad: kad::Behaviour<kad::store::MemoryStore>,
    hello: SendHello,
}

/// A bare libp2p client of `node`, connected to it, whose hello (when it sends one)
/// carries `membership`'s certificate.
struct Client {
    swarm: Swarm<Bare>,
    node: PeerId,
    hello: Hello,
}

impl Client {
    async fn connect(node: &Mesh, membership: impl FnOnce(&Keypair) -> Hello) -> Client {
        let keypair = Keypair::generate_ed25519();
        let hello = membership(&keypair);
        let mut swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|key| {
                let peer = key.public().to_peer_id();
                let store = kad::store::MemoryStore::new(peer);
                let mut kad =
                    kad::Behaviour::with_config(peer, store, kad::Config::new(KAD_PROTOCOL));
                // It answers no Kademlia request: the records the node holds are seen
                // in the node's answers, not in this client's.
                kad.set_mode(Some(kad::Mode::Client));
                Bare {
                    kad,
                    hello: SendHello::default(),
                }
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        // A provider record without an address is given to no one who asks the node
        // (libp2p-kad leaves it out of its answers): the client listens, and its record
        // carries where.
        swarm.listen_on(loopback_tcp()).unwrap();
        let listening = loop {
            if let BareSwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                break address;
            }
        };
        swarm.add_external_address(listening);
        let addr = tcp_addrs(node).await.remove(0);
        let mut transport = addr.clone();
        transport.pop();
        swarm
            .behaviour_mut()
            .kad
            .add_address(&node.peer_id(), transport);
        swarm.dial(addr).unwrap();
        let mut client = Client {
            swarm,
            node: node.peer_id(),
            hello,
        };
        client
            .until(|event| matches!(event, BareSwarmEvent::ConnectionEstablished { .. }))
            .await;
        client
    }

    fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Drives the swarm until `wanted` holds of an event.
    async fn until(&mut self, mut wanted: impl FnMut(&BareSwarmEvent) -> bool) {
        loop {
            let event = self.swarm.select_next_some().await;
            if wanted(&event) {
                return;
            }
        }
    }

    /// Drives the swarm while `work` runs: the connection stays served.
    async fn meanwhile<T>(&mut self, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = self.swarm.select_next_some() => {}
            }
        }
    }

    /// Offers a provider record of `key` to the peers closest to it (the node, the only
    /// one known), and returns once Kademlia has sent it.
    async fn provide(&mut self, key: kad::RecordKey) {
        let id = self.swarm.behaviour_mut().kad.start_providing(key).unwrap();
        let last = self.query_results(id).await.pop();
        assert!(
            matches!(last, Some(kad::QueryResult::StartProviding(Ok(_)))),
            "the record was not sent: {last:?}"
        );
    }

    /// Stores `value` under `key` at the node (the only peer known), as a member
    /// publishing a name's chain does, and returns once Kademlia has sent it.
    async fn put_record(&mut self, key: kad::RecordKey, value: Vec<u8>) {
        let record = kad::Record::new(key, value);
        let kad = &mut self.swarm.behaviour_mut().kad;
        let id = kad.put_record(record, kad::Quorum::One).unwrap();
        let last = self.query_results(id).await.pop();
        assert!(
            matches!(last, Some(kad::QueryResult::PutRecord(Ok(_)))),
            "the record was not sent: {last:?}"
        );
    }

    /// Drives the swarm until Kademlia's query `id` has ended; returns its results in
    /// the order they came, the last one last.
    async fn query_results(&mut self, id: kad::QueryId) -> Vec<kad::QueryResult> {
        let mut results = Vec::new();
        self.until(|event| match event {
            libp2p::swarm::SwarmEvent::Behaviour(BareEvent::Kad(
                kad::Event::OutboundQueryProgressed {
                    id: done,
                    result,
                    step,
                    ..
                },
            )) if *done == id => {
                results.push(result.clone());
                step.last
            }
            _ => false,
        })
        .await;
        results
    }

    async fn send_hello(&mut self) {
        let frame = spore_core::frame::encode(&self.hello, HELLO_FRAME_LIMIT).unwrap();
        let node = self.node;
        self.swarm.behaviour_mut().hello.send(node, frame);
        self.until(|event| match event {
            libp2p::swarm::SwarmEvent::Behaviour(BareEvent::Hello(sent)) => {
                assert!(sent.is_ok(), "the hello was not sent: {sent:?}");
                true
            }
            _ => false,
        })
        .await;
    }

    /// The providers of `key` the node gives when asked (and this client, if it
    /// provides the key itself).
    async fn providers_at_node(&mut self, key: kad::RecordKey) -> HashSet<PeerId> {
        let id = self.swarm.behaviour_mut().kad.get_providers(key);
        let mut found = HashSet::new();
        for result in self.query_results(id).await {
            if let kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                providers,
                ..
            })) = result
            {
                found.extend(providers);
            }
        }
        found
    }
}

type BareSwarmEvent = libp2p::swarm::SwarmEvent<BareEvent>;

/// The DHT key of `publisher`'s chain of `name` (`spec/trust.md`, "Mesh names").
fn chain_key(publisher: &SecretKey, name: &str) -> kad::RecordKey {
    kad::RecordKey::new(&spore_core::trust::chain_key(&publisher.public(), name))
}

/// `publisher`'s chain of `name`: one publication, pointing `name` at a hash.
fn chain(publisher: &SecretKey, name: &str) -> ChainRun {
    let body = Publication {
        publisher: publisher.public(),
        name: name.into(),
        target: Some(spore_core::Hash::of(name.as_bytes()).to_hex()),
        seq: 1,
        at_ms: 1,
        previous: None,
    };
    ChainRun::new(vec![Signed::sign(body, publisher).unwrap()]).unwrap()
}

/// A hello whose certificate is `mesh`'s for `keypair`, serving `serves`.
fn hello_of(mesh: &SecretKey, keypair: &Keypair, serves: &[&str]) -> Hello {
    let membership = spore_mesh::Membership::admit(mesh, keypair, &[], serves).unwrap();
    Hello {
        certificate: Some(serde_bytes::ByteBuf::from(
            membership.certificate.as_bytes().to_vec(),
        )),
        revocations: Vec::new(),
    }
}

/// Sends hellos on `/spore/hello/1`, one stream each, when told to; accepts no stream.
#[derive(Default)]
struct SendHello {
    queued: Vec<(PeerId, Vec<u8>)>,
    sent: Vec<Result<(), String>>,
}

impl SendHello {
    fn send(&mut self, peer: PeerId, frame: Vec<u8>) {
        self.queued.push((peer, frame));
    }
}

/// One hello frame, written on a stream of its own, which is then closed.
#[derive(Debug)]
struct HelloUpgrade(Vec<u8>);

#[derive(Debug)]
struct HelloSent;

impl From<Infallible> for HelloSent {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}

impl UpgradeInfo for HelloUpgrade {
    type Info = StreamProtocol;
    type InfoIter = std::iter::Once<StreamProtocol>;

    fn protocol_info(&self) -> Self::InfoIter {
        std::iter::once(HELLO_PROTOCOL)
    }
}

impl OutboundUpgrade<libp2p::Stream> for HelloUpgrade {
    type Output = HelloSent;
    type Error = std::io::Error;
    type Future = BoxFuture<'static, std::io::Result<HelloSent>>;

    fn upgrade_outbound(self, mut stream: libp2p::Stream, _: StreamProtocol) -> Self::Future {
        async move {
            stream.write_all(&self.0).await?;
            stream.close().await?;
            Ok(HelloSent)
        }
        .boxed()
    }
}

type HelloHandler = OneShotHandler<DeniedUpgrade, HelloUpgrade, HelloSent>;

impl NetworkBehaviour for SendHello {
    type ConnectionHandler = HelloHandler;
    type ToSwarm = Result<(), String>;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(handler())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: libp2p::core::Endpoint,
        _: libp2p::core::transport::PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(handler())
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        let sent = event.map(|HelloSent| ()).map_err(|e| match e {
            StreamUpgradeError::Apply(e) => e.to_string(),
            other => other.to_string(),
        });
        self.sent.push(sent);
    }

    fn poll(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some(sent) = self.sent.pop() {
            return std::task::Poll::Ready(ToSwarm::GenerateEvent(sent));
        }
        match self.queued.pop() {
            Some((peer, frame)) => std::task::Poll::Ready(ToSwarm::NotifyHandler {
                peer_id: peer,
                handler: NotifyHandler::Any,
                event: HelloUpgrade(frame),
            }),
            None => std::task::Poll::Pending,
        }
    }
}

fn handler() -> HelloHandler {
    OneShotHandler::new(
        SubstreamProtocol::new(DeniedUpgrade, ()),
        OneShotHandlerConfig::default(),
    )
}

/// The client offers a provider record of an ability its certificate grants before it
/// sends its hello; once admitted, it is found as a provider of that ability.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_record_stored_before_the_hello_is_kept_once_the_peer_is_admitted() {
    bounded(async {
        let node = start(NodeSpec::default(), MemHost::new()).await;
        let mut client =
            Client::connect(&node, |keypair| hello_of(&test_mesh(), keypair, &["early"])).await;
        client.provide(ability_key("early")).await;
        // For the node to take the record in before the hello (well within the 10 s a
        // hello may take).
        client
            .meanwhile(tokio::time::sleep(Duration::from_secs(1)))
            .await;
        assert!(node.admitted(&client.peer_id()).is_none());
        client.send_hello().await;

        let peer = client.peer_id();
        let found = client
            .meanwhile(eventually(Duration::from_secs(10), || async {
                let deadline = Instant::now() + Duration::from_secs(2);
                let found = node
                    .find_ability_peers(&["early".to_owned()], deadline)
                    .await;
                found.unwrap() == vec![peer]
            }))
            .await;
        assert!(found, "the record offered before the hello was not kept");
        assert!(node.admitted(&peer).is_some());
        node.shutdown().await;
    })
    .await
}

/// The same, from a peer whose certificate is of another mesh: refused, its record is
/// not kept. The node's own lookups leave out peers it does not admit whatever it
/// holds, so another client, admitted, asks the node's Kademlia for the providers of
/// that key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_record_stored_before_a_refused_hello_is_not_kept() {
    bounded(async {
        let node = start(NodeSpec::default(), MemHost::new()).await;
        let other_mesh = SecretKey::from_seed([0x0f; 32]);
        let mut refused =
            Client::connect(&node, |keypair| hello_of(&other_mesh, keypair, &["early"])).await;
        refused.provide(ability_key("early")).await;
        refused
            .meanwhile(tokio::time::sleep(Duration::from_secs(1)))
            .await;
        refused.send_hello().await;
        // The node hangs up on a peer it refuses.
        refused
            .until(|event| matches!(event, BareSwarmEvent::ConnectionClosed { .. }))
            .await;
        assert!(node.admitted(&refused.peer_id()).is_none());

        let mut observer =
            Client::connect(&node, |keypair| hello_of(&test_mesh(), keypair, &[])).await;
        observer.send_hello().await;
        let observer_id = observer.peer_id();
        let admitted = observer
            .meanwhile(eventually(Duration::from_secs(10), || async {
                node.admitted(&observer_id).is_some()
            }))
            .await;
        assert!(admitted, "the observer was not admitted");
        let providers = observer.providers_at_node(ability_key("early")).await;
        assert!(
            !providers.contains(&refused.peer_id()),
            "the node kept the record of a peer it refused: {providers:?}"
        );
        node.shutdown().await;
    })
    .await
}

/// The client stores a name's chain at the node before it sends its hello; once
/// admitted, the node holds the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_names_chain_stored_before_the_hello_is_kept_once_the_peer_is_admitted() {
    bounded(async {
        let node = start(NodeSpec::default(), MemHost::new()).await;
        let mut client =
            Client::connect(&node, |keypair| hello_of(&test_mesh(), keypair, &[])).await;
        let publisher = SecretKey::from_seed([0xc3; 32]);
        let early = chain(&publisher, "early.name");
        client
            .put_record(chain_key(&publisher, "early.name"), early.to_bytes())
            .await;
        client
            .meanwhile(tokio::time::sleep(Duration::from_secs(1)))
            .await;
        assert!(node.admitted(&client.peer_id()).is_none());
        client.send_hello().await;

        let kept = client
            .meanwhile(eventually(Duration::from_secs(10), || async {
                let deadline = Instant::now() + Duration::from_secs(2);
                node.find_chain(publisher.public(), "early.name", deadline)
                    .await
                    .as_ref()
                    == Some(&early)
            }))
            .await;
        assert!(kept, "the chain stored before the hello was not kept");
        node.shutdown().await;
    })
    .await
}

/// The same from a peer of another mesh: refused, its chain is not kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_names_chain_stored_before_a_refused_hello_is_not_kept() {
    bounded(async {
        let node = start(NodeSpec::default(), MemHost::new()).await;
        let other_mesh = SecretKey::from_seed([0x0f; 32]);
        let mut refused =
            Client::connect(&node, |keypair| hello_of(&other_mesh, keypair, &[])).await;
        let publisher = SecretKey::from_seed([0xc3; 32]);
        refused
            .put_record(
                chain_key(&publisher, "early.name"),
                chain(&publisher, "early.name").to_bytes(),
            )
            .await;
        refused
            .meanwhile(tokio::time::sleep(Duration::from_secs(1)))
            .await;
        refused.send_hello().await;
        refused
            .until(|event| matches!(event, BareSwarmEvent::ConnectionClosed { .. }))
            .await;
        assert!(node.admitted(&refused.peer_id()).is_none());

        // The node hung up on the only peer it knew: what it finds is what it holds.
        let deadline = Instant::now() + Duration::from_secs(2);
        let found = node
            .find_chain(publisher.public(), "early.name", deadline)
            .await;
        assert_eq!(found, None, "the node kept the chain of a peer it refused");
        node.shutdown().await;
    })
    .await
}
