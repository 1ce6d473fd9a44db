//! `first_invoke_markdown`: the first `render` of the Markdown module on a fresh node
//! whose mesh is connected to one that holds it (fetch, verify, store, compile, run),
//! against a warm invoke on the node that holds it loaded; creating the fresh node is
//! setup, excluded from the time.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use ciborium::Value;
use criterion::{BatchSize, Criterion, SamplingMode};
use spore_core::{Args, CallRequest, Path};
use spore_mesh::Keypair;
use spore_node::Node;

use super::{MeshNode, runtime, wait_connected};

pub(super) fn first_invoke_markdown(c: &mut Criterion) {
    let rt = runtime();
    let holder = MeshNode::open(&rt, None, Keypair::generate_ed25519(), Vec::new());
    let markdown = holder
        .node
        .publish(&spore_test_programs::bytes("markdown"), None)
        .unwrap()
        .manifest
        .module;
    let text = format!("{markdown}:render");
    let holder_addrs = rt.block_on(holder.mesh.listen_addrs());
    let holder_peer = holder.mesh.peer_id();
    let args = vec![Value::Text(
        "# Title\n\nSome *markdown* with a [link](https://example.org).".into(),
    )];

    // What a caller of the node does: resolve the reference once, then call; placement
    // fetches the module when it is not here. The memo is off so that every call runs.
    let args = Args::encode(&args).unwrap();
    let run = |node: &Node| -> (Value, Path) {
        let function = node.function_ref(&text).unwrap();
        let request = CallRequest {
            memo: false,
            deadline: std::time::Instant::now() + Duration::from_secs(30),
            ..node.request(function, args.clone())
        };
        let called = node.call(request);
        (called.result.unwrap().value, called.path)
    };
    // Every fresh node has the same identity. Each one announces the module it fetched,
    // so with new identities the holder would hand every later node a growing list of
    // dead providers to dial; this way the only stale record names the asker itself.
    let fresh_identity = Keypair::generate_ed25519();
    // A first call leaves Cranelift compiling in the background (tiered compilation),
    // for 0.6 s of a core per node. Unwaited, the compiles of every measured fresh node
    // would run on through this group's other benchmark and the groups after it. So each
    // node is kept until its compiles end, which is waited for outside the timings.
    let retired: RefCell<Vec<Arc<Node>>> = RefCell::new(Vec::new());
    let settle = || {
        for node in retired.borrow_mut().drain(..) {
            while node.runtime().compiles_in_flight() > 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    let fresh = || {
        settle();
        let fresh = MeshNode::open(&rt, None, fresh_identity.clone(), holder_addrs.clone());
        rt.block_on(wait_connected(&fresh.mesh, holder_peer));
        fresh
    };

    let (warm, warm_path) = run(&holder.node);
    let (again, again_path) = run(&holder.node);
    assert_eq!(again, warm);
    assert!(
        again_path.len() == 1 && again_path.steps()[0].step.contains("Memory load"),
        "the holder runs its loaded module: {again_path:?}"
    );
    let Value::Text(html) = &warm else {
        panic!("render returns text: {warm:?} {warm_path:?}")
    };
    assert!(html.contains("<h1>"), "{html}");
    {
        let probe = fresh();
        assert!(
            probe.node.manifest(&markdown).is_err(),
            "the fresh node lacks the module"
        );
        let (value, path) = run(&probe.node);
        let path = path.steps();
        assert_eq!(value, warm);
        assert!(
            path.len() == 2
                && path[0].step.starts_with("fetched")
                && path[0].step.contains(&holder_peer.to_string())
                && path[1].step.contains("Compiled load"),
            "a fresh node fetches, compiles and runs: {path:?}"
        );
        // Where a first call's time goes, as its path reports it.
        eprintln!(
            "first_invoke_markdown: a fresh node's first call: fetch {} us, compile and run {} us ({})",
            path[0].micros, path[1].micros, path[1].step
        );
        retired.borrow_mut().push(probe.node.clone());
    }
    // The holder's own calls run on Cranelift's code, as a warm node's do.
    retired.borrow_mut().push(holder.node.clone());
    settle();

    let mut group = c.benchmark_group("first_invoke_markdown");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    group.bench_function("fresh_node_fetch_compile_run", |bencher| {
        bencher.iter_batched(
            fresh,
            |fresh| {
                let (value, path) = run(&fresh.node);
                assert!(path.steps()[0].step.starts_with("fetched"), "{path:?}");
                retired.borrow_mut().push(fresh.node.clone());
                // Returned, so that shutting the node down is not timed.
                (fresh, value)
            },
            BatchSize::PerIteration,
        )
    });
    settle();
    group.bench_function("warm_node", |bencher| bencher.iter(|| run(&holder.node)));
    group.finish();

    drop(holder);
    rt.shutdown_timeout(Duration::from_secs(5));
}
