//! Test hosts and node helpers shared by the mesh tests.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use spore_core::Hash;
use spore_core::trust::SecretKey;
use spore_mesh::{
    CallRequest, Cancel, InvokeResponse, Keypair, Mesh, MeshConfig, MeshHost, MeshTuning,
    Multiaddr, PeerId, Returned,
};
use tokio::time::Instant;

/// Every test body runs under this bound, so a hang fails instead of stalling CI.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn bounded<F: Future>(test: F) -> F::Output {
    init_tracing();
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("test exceeded its time bound")
}

/// `RUST_LOG=spore_mesh=debug cargo test -p spore-mesh -- --nocapture` shows the mesh's
/// logs; by default nothing is printed.
fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

type InvokeFn = dyn Fn(CallRequest, PeerId) -> InvokeResponse + Send + Sync;

/// A host holding blobs in memory, answering invocations with a closure, and
/// optionally holding back `module_bytes` until its gate opens.
pub struct MemHost {
    blobs: Mutex<HashMap<Hash, Vec<u8>>>,
    invoke: Box<InvokeFn>,
    gate: Option<Arc<Gate>>,
}

impl MemHost {
    pub fn new() -> Arc<Self> {
        Self::with_invoke(|_, _| {
            InvokeResponse::error(spore_core::ErrorKind::Failed, "this host runs nothing")
        })
    }

    pub fn with_invoke(
        invoke: impl Fn(CallRequest, PeerId) -> InvokeResponse + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(MemHost {
            blobs: Mutex::new(HashMap::new()),
            invoke: Box::new(invoke),
            gate: None,
        })
    }

    pub fn gated(gate: Arc<Gate>) -> Arc<Self> {
        Arc::new(MemHost {
            blobs: Mutex::new(HashMap::new()),
            invoke: Box::new(|_, _| {
                InvokeResponse::error(spore_core::ErrorKind::Failed, "this host runs nothing")
            }),
            gate: Some(gate),
        })
    }

    /// Holds `bytes` under their own hash.
    pub fn insert(&self, bytes: Vec<u8>) -> Hash {
        let hash = Hash::of(&bytes);
        self.blobs.lock().unwrap().insert(hash, bytes);
        hash
    }

    /// Holds `bytes` under `hash`, whatever they hash to: a lying host.
    pub fn insert_as(&self, hash: Hash, bytes: Vec<u8>) {
        self.blobs.lock().unwrap().insert(hash, bytes);
    }
}

impl MeshHost for MemHost {
    fn module_bytes(&self, hash: &Hash) -> Option<Vec<u8>> {
        if let Some(gate) = &self.gate {
            gate.wait();
        }
        self.blobs.lock().unwrap().get(hash).cloned()
    }

    fn module_hashes(&self) -> Vec<Hash> {
        self.blobs.lock().unwrap().keys().copied().collect()
    }

    fn invoke(&self, request: CallRequest, from: PeerId, _: Cancel) -> InvokeResponse {
        (self.invoke)(request, from)
    }
}

/// A latch the test opens; waiters give up after a bound so no thread outlives a test.
pub struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    pub fn new() -> Arc<Self> {
        Arc::new(Gate {
            open: Mutex::new(false),
            opened: Condvar::new(),
        })
    }

    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    /// Blocks until the test opens the gate (or 20 s pass).
    pub fn wait(&self) {
        let open = self.open.lock().unwrap();
        let _ = self
            .opened
            .wait_timeout_while(open, Duration::from_secs(20), |open| !*open)
            .unwrap();
    }
}

/// Deterministic, incompressible-looking test bytes.
pub fn blob(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

pub fn loopback_tcp() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().unwrap()
}

pub fn loopback_quic() -> Multiaddr {
    "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()
}

pub struct NodeSpec {
    pub keypair: Keypair,
    pub listen: Vec<Multiaddr>,
    pub announce: Vec<Multiaddr>,
    pub bootstrap: Vec<Multiaddr>,
    pub abilities: Vec<String>,
    pub tuning: MeshTuning,
    /// The node's membership; by default, of the tests' mesh ([`test_mesh`]), serving
    /// the abilities it advertises.
    pub membership: Membership,
    /// Relaying: none by default.
    pub nat: spore_mesh::NatConfig,
}

/// The mesh the tests' nodes are members of.
pub fn test_mesh() -> SecretKey {
    SecretKey::from_seed([0x5e; 32])
}

/// What `NodeSpec` holds by default: the node is a member of the tests' mesh.
#[derive(Clone)]
pub enum Membership {
    /// Of the tests' mesh, serving its advertised abilities.
    Default,
    /// Of the tests' mesh, serving these.
    Serving(Vec<String>),
    /// As given (another mesh, an expired certificate...).
    Given(spore_mesh::Membership),
    /// None: the node belongs to no mesh.
    Stranger,
}

impl Default for NodeSpec {
    fn default() -> Self {
        NodeSpec {
            keypair: Keypair::generate_ed25519(),
            listen: vec![loopback_tcp()],
            announce: Vec::new(),
            bootstrap: Vec::new(),
            abilities: Vec::new(),
            tuning: MeshTuning::default(),
            membership: Membership::Default,
            nat: spore_mesh::NatConfig::default(),
        }
    }
}

pub async fn start(spec: NodeSpec, host: Arc<dyn MeshHost>) -> Mesh {
    let serving = |serves: &[String]| {
        let serves: Vec<&str> = serves.iter().map(String::as_str).collect();
        spore_mesh::Membership::admit(&test_mesh(), &spec.keypair, &[], &serves).ok()
    };
    let membership = match spec.membership {
        Membership::Default => serving(&spec.abilities),
        Membership::Serving(serves) => serving(&serves),
        Membership::Given(membership) => Some(membership),
        Membership::Stranger => None,
    };
    let config = MeshConfig {
        membership,
        keypair: spec.keypair,
        listen: spec.listen,
        announce: spec.announce,
        bootstrap: spec.bootstrap,
        mdns: false,
        abilities: spec.abilities,
        nat: spec.nat,
    };
    Mesh::start_tuned(config, host, spec.tuning)
        .await
        .expect("mesh starts")
}

/// A node that joins through `via`.
pub async fn start_joining(via: &Mesh, host: Arc<dyn MeshHost>) -> Mesh {
    let spec = NodeSpec {
        bootstrap: tcp_addrs(via).await,
        ..NodeSpec::default()
    };
    start(spec, host).await
}

/// The node's TCP listen addresses, with `/p2p/`.
pub async fn tcp_addrs(mesh: &Mesh) -> Vec<Multiaddr> {
    mesh.listen_addrs()
        .await
        .into_iter()
        .filter(|a| a.to_string().contains("/tcp/"))
        .collect()
}

/// Polls `check` until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

pub async fn shutdown_all(meshes: &[&Mesh]) {
    for mesh in meshes {
        mesh.shutdown().await;
    }
}

/// Answers a call with its own argument bytes.
pub fn echo(request: CallRequest, _: PeerId) -> InvokeResponse {
    InvokeResponse {
        result: Ok(echoed(request.args.as_bytes().to_vec())),
        path: spore_core::Path::new(),
        refused: false,
    }
}

/// What [`echo`] returns for `value`.
pub fn echoed(value: Vec<u8>) -> Returned {
    Returned {
        value,
        memo: spore_core::MemoUse::Skipped,
        effectful: false,
        stats: None,
    }
}
