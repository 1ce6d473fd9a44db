//! Nodes on temporary homes, joined to a mesh on loopback when a test needs peers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_core::{Args, CallRequest, FunctionRef, Hash};
use spore_mesh::{Keypair, Mesh, MeshConfig, MeshHost, Multiaddr};
use spore_node::{Called, Home, Node, NodeHost};

/// A node on a home of its own; on a mesh when it was started with one.
pub struct TestNode {
    pub node: Arc<Node>,
    pub mesh: Option<Mesh>,
    _home: tempfile::TempDir,
}

/// The tokio runtime the meshes of a test run on. Calls are made from the test's own
/// thread, as the CLI and the HTTP API make them from blocking threads.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(4 << 20)
        .enable_all()
        .build()
        .unwrap()
}

impl TestNode {
    /// A node off the mesh with `config` as its whole configuration.
    pub fn open(config: &str) -> TestNode {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("config.toml"), config).unwrap();
        TestNode {
            node: Node::open(Home::new(home.path())).unwrap(),
            mesh: None,
            _home: home,
        }
    }

    /// The node joined to a mesh through `bootstrap`, its host the real `NodeHost`.
    pub fn join(self, rt: &tokio::runtime::Runtime, bootstrap: &[&TestNode]) -> TestNode {
        self.join_with(rt, bootstrap, |node| Arc::new(NodeHost::new(node)))
    }

    /// [`TestNode::join`] with a host of the test's choosing around the node.
    pub fn join_with(
        self,
        rt: &tokio::runtime::Runtime,
        bootstrap: &[&TestNode],
        host: impl FnOnce(&Arc<Node>) -> Arc<dyn MeshHost>,
    ) -> TestNode {
        self.join_revoking(rt, bootstrap, &[], host)
    }

    /// [`TestNode::join_with`], the node knowing that the mesh revoked `revoked`: its
    /// hellos carry the revocations to every peer it meets.
    pub fn join_revoking(
        mut self,
        rt: &tokio::runtime::Runtime,
        bootstrap: &[&TestNode],
        revoked: &[&TestNode],
        host: impl FnOnce(&Arc<Node>) -> Arc<dyn MeshHost>,
    ) -> TestNode {
        let bootstrap: Vec<Multiaddr> = bootstrap
            .iter()
            .flat_map(|peer| rt.block_on(peer.mesh().listen_addrs()))
            .collect();
        let keypair = Keypair::generate_ed25519();
        let abilities = self.node.served_abilities();
        let serves: Vec<&str> = abilities.iter().map(String::as_str).collect();
        // Every test node is a member of one mesh, serving what it advertises.
        let mesh_key = spore_core::trust::SecretKey::from_seed([0x5e; 32]);
        let mut membership =
            spore_mesh::Membership::admit(&mesh_key, &keypair, &[], &serves).unwrap();
        for node in revoked {
            let revocation = spore_core::trust::Revocation {
                mesh: mesh_key.public(),
                node: spore_mesh::node_key(&node.mesh().peer_id()).unwrap(),
                revoked_ms: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as u64,
                reason: "revoked by the test".into(),
            };
            membership
                .revocations
                .push(spore_core::trust::Signed::sign(revocation, &mesh_key).unwrap());
        }
        let config = MeshConfig {
            keypair,
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            announce: Vec::new(),
            bootstrap,
            mdns: false,
            abilities,
            membership: Some(membership),
            nat: Default::default(),
        };
        let mesh = rt.block_on(Mesh::start(config, host(&self.node))).unwrap();
        self.node.attach_mesh(mesh.clone(), rt.handle().clone());
        self.mesh = Some(mesh);
        self
    }

    /// The same home, opened again with `config`: for a configuration that names
    /// modules this node published.
    pub fn reopen(self, config: &str) -> TestNode {
        assert!(self.mesh.is_none(), "reopen a node off the mesh");
        let TestNode { node, _home, .. } = self;
        drop(node);
        std::fs::write(_home.path().join("config.toml"), config).unwrap();
        TestNode {
            node: Node::open(Home::new(_home.path())).unwrap(),
            mesh: None,
            _home,
        }
    }

    pub fn mesh(&self) -> &Mesh {
        self.mesh.as_ref().expect("a node on a mesh")
    }

    /// Publishes a module of `codebase/` and returns its hash.
    pub fn publish(&self, module: &str) -> Hash {
        self.publish_bytes(&spore_test_programs::bytes(module))
    }

    pub fn publish_bytes(&self, bytes: &[u8]) -> Hash {
        self.node.publish(bytes, None).unwrap().manifest.module
    }

    /// A call of `module:function` with `args`, as the node makes one by default.
    pub fn request(&self, module: Hash, function: &str, args: &[Value]) -> CallRequest {
        let function = FunctionRef::new(module, function.parse().unwrap());
        self.node.request(function, Args::encode(args).unwrap())
    }

    pub fn call(&self, request: CallRequest) -> Called {
        self.node.call(request)
    }
}

/// The default configuration, with `extra` added.
pub fn defaults_and(extra: &str) -> String {
    format!("{}\n{extra}", spore_node::config::default_config())
}

/// The default configuration, with `kv` open to forwarded calls of the members its
/// `callers` rules admit (`"*"`: every member).
pub fn kv_for(callers: &str) -> String {
    spore_node::config::default_config().replacen(
        "[abilities.kv]\n",
        &format!("[abilities.kv]\ncallers = [{callers}]\n"),
        1,
    )
}

/// The default configuration without the `kv` binding.
pub fn without_kv() -> String {
    let defaults = spore_node::config::default_config();
    let start = defaults
        .find("[abilities.kv]")
        .expect("the defaults bind kv");
    let end = defaults[start..]
        .find("\n\n")
        .map_or(defaults.len(), |n| start + n);
    format!("{}{}", &defaults[..start], &defaults[end..])
}

/// Waits until `a` and `b` are connected (at most 10 s).
pub fn connect(rt: &tokio::runtime::Runtime, a: &TestNode, b: &TestNode) {
    let started = Instant::now();
    let peer = b.mesh().peer_id();
    while !rt.block_on(a.mesh().connected_peers()).contains(&peer) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no connection in 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A module written in WAT, for behaviour the codebase's Rust functions cannot show.
pub fn wat(source: &str) -> Vec<u8> {
    wat::parse_str(source).unwrap()
}
