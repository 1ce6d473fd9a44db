//! `placed_call_slow_link`: a call that needs `kv`, made on an edge node that binds no
//! kv, placed on a cloud node that serves it, across a relay holding every byte 50 ms
//! each way (a round trip of 100 ms). Side by side:
//!
//! - `cold_lookup`: an edge whose placement cache is off (`[placement] cache_ttl =
//!   "0s"`): every call looks its peers up in the DHT first, as every call did before
//!   the cache;
//! - `warm_cache`: an edge with the default TTL, its cache warm: the call goes straight
//!   to the remembered peer (target: one round trip plus the call's own time);
//! - `one_round_trip`: `Mesh::invoke` of the same request from the warm edge to the
//!   cloud, the floor a placed call can reach.
//!
//! The function is `visits:hit`, which counts in the cloud's kv (so it is never
//! memoized); the cloud holds it compiled before anything is timed.

use std::time::Duration;

use criterion::{Criterion, SamplingMode};
use spore_core::{CallRequest, Path};
use spore_mesh::{Keypair, Multiaddr};

use super::slow_link::{slow_link, tcp_socket_addr};
use super::{MeshNode, runtime, wait_connected};

/// Each way: a round trip of 100 ms, as issue 13's target has it.
const ONE_WAY: Duration = Duration::from_millis(50);

pub fn placed_call_slow_link(c: &mut Criterion) {
    let rt = runtime();
    let config = spore_node::config::default_config();
    let cloud_config =
        config.replacen("[abilities.kv]\n", "[abilities.kv]\ncallers = [\"*\"]\n", 1);
    let cloud = MeshNode::open(
        &rt,
        Some(&cloud_config),
        Keypair::generate_ed25519(),
        Vec::new(),
    );
    let cloud_peer = cloud.mesh.peer_id();
    let direct = rt.block_on(cloud.mesh.listen_addrs());
    let relay = rt.block_on(slow_link(tcp_socket_addr(&direct), ONE_WAY));
    let slow: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}/p2p/{cloud_peer}", relay.port())
        .parse()
        .unwrap();

    let edge_config = config.replace(
        "[abilities.kv]\nprovider = \"kv\"\nnamespace = \"default\"\nmax_value_bytes = \"1MiB\"\n",
        "",
    );
    let ttl_line = edge_config
        .lines()
        .find(|line| line.starts_with("cache_ttl = "))
        .expect("the defaults set placement.cache_ttl");
    let no_cache = edge_config.replace(ttl_line, "cache_ttl = \"0s\"");
    let edge = |config: &str| {
        let edge = MeshNode::open(
            &rt,
            Some(config),
            Keypair::generate_ed25519(),
            vec![slow.clone()],
        );
        rt.block_on(wait_connected(&edge.mesh, cloud_peer));
        edge
    };
    let (cold, warm) = (edge(&no_cache), edge(&edge_config));

    let visits = spore_test_programs::bytes("visits");
    let args = spore_core::Args::encode(&[ciborium::Value::Text("bench".into())]).unwrap();
    // Each edge publishes the module, as its user would; the cloud fetches it from one.
    let hit = |node: &MeshNode| {
        let module = node.node.publish(&visits, None).unwrap().manifest.module;
        node.node.function_ref(&format!("{module}:hit")).unwrap()
    };
    let (cold_hit, warm_hit) = (hit(&cold), hit(&warm));
    let request = |node: &MeshNode| {
        let function = if std::ptr::eq(node, &cold) {
            &cold_hit
        } else {
            &warm_hit
        };
        CallRequest {
            deadline: std::time::Instant::now() + Duration::from_secs(30),
            ..node.node.request(function.clone(), args.clone())
        }
    };
    let call = |node: &MeshNode| -> Path {
        let called = node.node.call(request(node));
        called.result.expect("the placed call answers");
        called.path
    };
    // The cloud fetches and compiles the module at the first call; the warm edge's
    // first call fills its cache.
    for node in [&cold, &warm] {
        call(node);
    }
    let lookup_step = |path: &Path| {
        let steps = path.steps();
        let step = steps
            .iter()
            .find(|s| s.step.starts_with("needs kv"))
            .unwrap_or_else(|| panic!("no lookup: {path:?}"));
        (step.step.clone(), step.micros)
    };
    for (node, case) in [(&cold, "cold_lookup"), (&warm, "warm_cache")] {
        let path = call(node);
        let (step, micros) = lookup_step(&path);
        assert_eq!(
            step.contains("(cached"),
            case == "warm_cache",
            "{case}: {path:?}"
        );
        assert!(
            path.steps().iter().any(
                |s| s.step.starts_with("forwarded") && s.step.contains(&cloud_peer.to_string())
            ),
            "{case}: {path:?}"
        );
        eprintln!("placed_call_slow_link/{case}: finding the peers took {micros} us ({step})");
    }

    let mut group = c.benchmark_group("placed_call_slow_link");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    group.bench_function("cold_lookup", |bencher| bencher.iter(|| call(&cold)));
    group.bench_function("warm_cache", |bencher| bencher.iter(|| call(&warm)));
    group.bench_function("one_round_trip", |bencher| {
        bencher.iter(|| {
            let forwarded = CallRequest {
                hops: 1,
                ..request(&warm)
            };
            let response = rt.block_on(warm.mesh.invoke(cloud_peer, &forwarded));
            assert!(response.unwrap().result.is_ok());
        })
    });
    group.finish();

    drop((cold, warm, cloud));
    rt.shutdown_timeout(Duration::from_secs(5));
}
