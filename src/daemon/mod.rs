//! `spore node run`: a long-lived node that serves the local HTTP API (and joins the
//! mesh), and `spore node info`.

mod api;
mod gateway;
mod mesh_state;
mod schedules;
mod server;
mod status;
mod subscriptions;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use spore_node::{Home, Node, mesh};

use crate::api_token::{ApiToken, TOKEN_FILE};
use crate::cli::backend::{NODE_FILE, NodeFile, Remote};
use crate::cli::output::{Output, outln};
use mesh_state::MeshState;
pub use status::FetchStatus;

/// How often the known peers are written to the home while the node runs, so that a
/// node killed rather than stopped still rejoins the peers it knew 10 s before.
const SAVE_PEERS_EVERY: Duration = Duration::from_secs(10);

#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Run this home's node until Ctrl-C or SIGTERM.
    Run(Box<RunArgs>),
    /// Print the running node's peer id, listen addresses and API address.
    Info,
    /// Show what the running node is doing: peers with their roles and connections,
    /// adverts, calls running, the functions that took it the most time.
    Status,
    /// Print this node's peer id and identity key (made on first use).
    Id,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A multiaddr to listen on for peers (repeatable; TCP and QUIC). Without it, all
    /// interfaces on the ports of the last run.
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// An address peers should dial to reach this node instead of its listen addresses
    /// (a port forward, a NAT, a proxy) (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    pub announce: Vec<String>,
    /// A peer to join the mesh through, with its /p2p/ id (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<String>,
    /// A relay to be reachable through, with its /p2p/ id (repeatable): for a node that
    /// peers cannot dial (behind a NAT or firewall). It is used once admitted with the
    /// role `relay`; relayed connections are upgraded to direct ones by hole punching
    /// where it succeeds.
    #[arg(long, value_name = "MULTIADDR")]
    pub relay: Vec<String>,
    /// Relay for the mesh's members that cannot be dialled (circuit relay v2): for a
    /// node with a public address whose certificate gives it the role `relay`.
    #[arg(long)]
    pub serve_relay: bool,
    /// Where to serve the local HTTP API.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub api: SocketAddr,
    /// Serve the routes of config.toml (`[[routes]]`) on this address: the public HTTP
    /// listener, apart from the API (spec/http.md).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Also serve `/metrics` on this address, without the API token: for a Prometheus
    /// server on another host. Bind it where only that server can reach it.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Export spans to this OpenTelemetry collector (OTLP over HTTP/protobuf, e.g.
    /// http://127.0.0.1:4318): each call, route, schedule run and delivery, one trace
    /// across every node a call reaches. Off without it.
    #[arg(long, value_name = "URL", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp: Option<String>,
    /// Do not discover peers on the local network with mDNS.
    #[arg(long)]
    pub no_mdns: bool,
}

pub fn run(command: &NodeCommand, home: &Home, out: &Output) -> anyhow::Result<()> {
    match command {
        NodeCommand::Run(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                // Short pure calls from peers run on these threads (`MeshHost::invoke_now`):
                // room for the Wasm stack limit and the host frames beneath it.
                .thread_stack_size(4 << 20)
                .enable_all()
                .build()?;
            runtime.block_on(serve(home.clone(), args))
        }
        NodeCommand::Info => info(home, out),
        NodeCommand::Status => status::show(home, out),
        NodeCommand::Id => crate::cli::mesh::node_id(home, out),
    }
}

async fn serve(home: Home, args: &RunArgs) -> anyhow::Result<()> {
    let node = {
        let home = home.clone();
        let options = spore_node::NodeOptions {
            compiler: crate::cli::compiler(),
            role: spore_node::Role::Server,
        };
        tokio::task::spawn_blocking(move || Node::open_with(home, options)).await??
    };
    // Once the home exists, and before the mesh starts or node.json tells clients where
    // the API is: a home whose token file is unusable stops the node here.
    let token = ApiToken::ensure(home.root())?;
    let (mesh, remembered) = join_mesh(&home, &node, args).await?;
    let saver = tokio::spawn(save_peers(home.clone(), mesh.clone(), remembered.clone()));
    let listener = tokio::net::TcpListener::bind(args.api).await?;
    let api = listener.local_addr()?;
    let http = match args.http {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for HTTP routes on {addr}: {e}"))?,
        ),
        None => None,
    };
    let http_addr = http.as_ref().map(|l| l.local_addr()).transpose()?;
    let metrics = match args.metrics {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))?,
        ),
        None => None,
    };
    let metrics_addr = metrics.as_ref().map(|l| l.local_addr()).transpose()?;
    let file = NodeFile {
        pid: std::process::id(),
        api: api.to_string(),
        http: http_addr.map(|a| a.to_string()),
        metrics: metrics_addr.map(|a| a.to_string()),
        peer_id: mesh.peer_id().to_string(),
        listen: mesh
            .listen_addrs()
            .await
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    let node_file = home.root().join(NODE_FILE);
    spore_node::home::replace_private_file(&node_file, &serde_json::to_vec_pretty(&file)?)?;
    tracing::info!(%api, peer = %file.peer_id, home = %home.root().display(), "node running");
    eprintln!(
        "spore node {} running, api http://{api}, home {}",
        file.peer_id,
        home.root().display()
    );
    for addr in &file.listen {
        eprintln!("  listening on {addr}");
    }
    if let Some(addr) = http_addr {
        let routes = node.config().routes.iter().count();
        tracing::info!(%addr, routes, "serving HTTP routes");
        eprintln!("  serving {routes} HTTP route(s) on http://{addr}");
    }
    if let Some(addr) = metrics_addr {
        tracing::info!(%addr, "serving metrics");
        eprintln!("  serving metrics on http://{addr}/metrics");
    }
    if !api.ip().to_canonical().is_loopback() {
        let token_file = home.root().join(TOKEN_FILE);
        tracing::warn!(
            %api,
            token = %token_file.display(),
            "the API listens beyond loopback: its traffic is not encrypted, and only the API token protects it"
        );
        eprintln!("  warning: the API listens beyond loopback, on {api}; its traffic is not");
        eprintln!(
            "  encrypted, and only the API token ({}) protects the node",
            token_file.display()
        );
    }

    // One signal stops both listeners; each then lets its requests in flight finish.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let gateway = http.as_ref().map(|_| {
        Arc::new(gateway::Gateway::new(
            node.clone(),
            node.config().routes.clone(),
        ))
    });
    let routes = http.zip(gateway.clone()).map(|(listener, gateway)| {
        tokio::spawn(server::serve(
            listener,
            gateway::router(gateway),
            until_stopped(),
        ))
    });
    let schedules = schedules::start(&node);
    let subscriptions = subscriptions::start(&node);
    let served = Arc::new(api::Served {
        node,
        file,
        gateway,
    });
    let metrics_server = metrics.map(|listener| {
        tokio::spawn(server::serve(
            listener,
            api::metrics_router(served.clone()),
            until_stopped(),
        ))
    });
    let guard = api::Guard { token, bound: api };
    let api_server = server::serve(listener, api::router(served, guard), until_stopped());
    let signal = async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    };
    tokio::join!(api_server, signal);
    drop(schedules);
    drop(subscriptions);
    for server in routes.into_iter().chain(metrics_server) {
        let _ = server.await;
    }
    saver.abort();
    let _ = saver.await;
    let remembered = MeshState {
        peers: known_peers(&mesh).await,
        ..remembered
    };
    save(&home, &remembered);
    let _ = std::fs::remove_file(&node_file);
    eprintln!("spore node stopped");
    Ok(())
}

/// Starts the node's libp2p side with its identity, and links it to the node. Without
/// `--listen` it listens where it did last time; it joins through the bootstrap peers
/// given and the peers it remembers.
async fn join_mesh(
    home: &Home,
    node: &Arc<Node>,
    args: &RunArgs,
) -> anyhow::Result<(mesh::Mesh, MeshState)> {
    let parse = |addrs: &[String], what: &str| -> anyhow::Result<Vec<mesh::Multiaddr>> {
        addrs
            .iter()
            .map(|a| {
                a.parse()
                    .map_err(|e| anyhow::anyhow!("--{what} `{a}` is not a multiaddr: {e}"))
            })
            .collect()
    };
    let mut state = MeshState::load(home);
    let listen = parse(&args.listen, "listen")?;
    let default_listen = listen.is_empty();
    let listen = if default_listen {
        state.default_listen()
    } else {
        listen
    };
    let mut bootstrap = parse(&args.bootstrap, "bootstrap")?;
    let remembered = state.peers();
    if !remembered.is_empty() {
        tracing::info!(
            addresses = remembered.len(),
            "rejoining the peers of the last run"
        );
    }
    for addr in remembered {
        if !bootstrap.contains(&addr) {
            bootstrap.push(addr);
        }
    }
    let config = mesh::MeshConfig {
        keypair: spore_node::Identity::load_or_create(home)?.into_keypair(),
        listen,
        announce: parse(&args.announce, "announce")?,
        bootstrap,
        mdns: !args.no_mdns,
        abilities: node.served_abilities(),
        membership: membership(home)?,
        nat: mesh::NatConfig {
            serve_relay: args.serve_relay,
            relays: parse(&args.relay, "relay")?,
        },
    };
    let host = Arc::new(spore_node::NodeHost::new(node));
    let tuning = mesh::MeshTuning {
        max_module_bytes: node.max_module_bytes(),
        ..mesh::MeshTuning::default()
    };
    let mesh = mesh::Mesh::start_tuned(config, host, tuning).await?;
    node.attach_mesh(mesh.clone(), tokio::runtime::Handle::current());
    if default_listen {
        state.remember_listen(&mesh.listen_addrs().await);
    }
    state.peers = known_peers(&mesh).await;
    save(home, &state);
    Ok((mesh, state))
}

/// Writes the known peers into the home whenever they changed, every
/// [`SAVE_PEERS_EVERY`], until aborted.
async fn save_peers(home: Home, mesh: mesh::Mesh, mut state: MeshState) {
    let mut every = tokio::time::interval(SAVE_PEERS_EVERY);
    loop {
        every.tick().await;
        let peers = known_peers(&mesh).await;
        if peers != state.peers {
            state.peers = peers;
            save(&home, &state);
        }
    }
}

async fn known_peers(mesh: &mesh::Mesh) -> Vec<String> {
    mesh.known_peers()
        .await
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A home that cannot be written to costs the node its memory of the mesh, not its run.
fn save(home: &Home, state: &MeshState) {
    if let Err(e) = state.save(home) {
        tracing::warn!(
            "cannot write {}: {e}",
            home.root().join(mesh_state::MESH_FILE).display()
        );
    }
}

/// This node's place in a mesh, from its home's trust files (`spec/trust.md`): its
/// certificate and the revocations it keeps; none when it holds no certificate.
fn membership(home: &Home) -> anyhow::Result<Option<mesh::Membership>> {
    let store = spore_node::trust::TrustStore::new(home);
    let Some(certificate) = store.certificate()? else {
        return Ok(None);
    };
    Ok(Some(mesh::Membership {
        certificate,
        revocations: store.revocations()?,
    }))
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

fn info(home: &Home, out: &Output) -> anyhow::Result<()> {
    let info: serde_json::Value = Remote::running(home)?.get("/v1/info", &[])?;
    if !out.json(&info)? {
        outln!("peer id  {}", info["peer_id"].as_str().unwrap_or("-"));
        for addr in info["listen"].as_array().into_iter().flatten() {
            outln!("listen   {}", addr.as_str().unwrap_or_default());
        }
        outln!(
            "api      http://{}",
            info["api"].as_str().unwrap_or_default()
        );
        outln!("home     {}", info["home"].as_str().unwrap_or_default());
        // A node started by an older binary may run on while the CLI is upgraded.
        outln!("version  {}", info["version"].as_str().unwrap_or("-"));
        match info["mesh"].as_object() {
            Some(mesh) => {
                outln!("mesh     {}", mesh["key"].as_str().unwrap_or_default());
                let list = |key: &str| {
                    let items: Vec<&str> = mesh[key]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str())
                        .collect();
                    if items.is_empty() {
                        "-".to_owned()
                    } else {
                        items.join(", ")
                    }
                };
                outln!("roles    {}", list("roles"));
                outln!("serves   {}", list("serves"));
                outln!("members  {} connected", mesh["members_connected"]);
            }
            None => outln!(
                "mesh     none: this node serves no peer (`spore mesh init` makes a mesh, `spore mesh join` joins one)"
            ),
        }
    }
    Ok(())
}
