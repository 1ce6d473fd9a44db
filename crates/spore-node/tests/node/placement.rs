//! Where a call runs, with what limits, and for how long.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_core::{CallRequest, Cancel, ErrorKind, Hash, MemoUse, Placement};
use spore_mesh::{InvokeNow, InvokeResponse, MeshHost, PeerId};
use spore_node::{Node, NodeError, NodeHost};

use crate::common::*;

fn text(value: &str) -> Value {
    Value::Text(value.into())
}

/// Whether a step of `path` was taken by `node` and says `what`.
fn took(path: &spore_core::Path, node: &TestNode, what: &str) -> bool {
    let me = node.mesh().peer_id().to_string();
    path.steps()
        .iter()
        .any(|step| step.node == me && step.step.contains(what))
}

#[test]
fn a_call_runs_where_the_abilities_its_function_reaches_are_bound() {
    let rt = runtime();
    let cloud = TestNode::open(&kv_for(r#""*""#)).join(&rt, &[]);
    let edge = TestNode::open(&without_kv()).join(&rt, &[&cloud]);
    connect(&rt, &edge, &cloud);
    let visits = cloud.publish("visits");

    // `hit` reaches kv, which only the cloud binds: the edge fetches the module to learn
    // that, then forwards the call.
    let called = edge.call(edge.request(visits, "hit", &[text("home")]));
    assert_eq!(called.result.unwrap().value, Value::Integer(1.into()));
    assert!(took(&called.path, &edge, "forwarded"), "{:?}", called.path);
    assert!(took(&called.path, &cloud, "ran"), "{:?}", called.path);

    // `key` shares the module but reaches nothing: it runs where it is called.
    let called = edge.call(edge.request(visits, "key", &[text("home")]));
    assert_eq!(called.result.unwrap().value, text("visits/home"));
    assert!(took(&called.path, &edge, "ran"), "{:?}", called.path);
    assert!(!took(&called.path, &edge, "forwarded"), "{:?}", called.path);
}

#[test]
fn a_bare_full_hash_is_fetched_from_the_mesh_whatever_its_first_character() {
    let rt = runtime();
    let holder = TestNode::open(&defaults_and("")).join(&rt, &[]);
    let asker = TestNode::open(&defaults_and("")).join(&rt, &[&holder]);
    connect(&rt, &asker, &holder);
    // A module whose hash starts with a letter: such a text is also a valid name.
    let module = [
        "arith", "words", "reshape", "cpu", "faults", "markdown", "visits",
    ]
    .into_iter()
    .map(|name| holder.publish(name))
    .find(|hash| hash.to_hex().starts_with(|c: char| c.is_ascii_alphabetic()))
    .expect("one of seven hashes starts with a-f");
    let function = asker.node.function_ref(&module.to_hex()).unwrap();
    assert_eq!(function.module, module);
    let called = asker.call(
        asker
            .node
            .request(function, spore_core::Args::encode(&[]).unwrap()),
    );
    assert!(took(&called.path, &asker, "fetched"), "{:?}", called.path);
    // Whatever the module's functions make of no arguments, the code arrived and ran.
    if let Err(error) = &called.result {
        assert!(
            matches!(error.kind(), ErrorKind::BadRequest | ErrorKind::GuestError),
            "{error}"
        );
    }
}

#[test]
fn a_call_pinned_to_a_peer_fails_clearly_when_no_node_runs_on_the_home() {
    let alone = TestNode::open(&defaults_and(""));
    let arith = alone.publish("arith");
    let peer = PeerId::random().to_string();
    let request = CallRequest {
        placement: Placement::On(peer.clone()),
        ..alone.request(arith, "add", &[2.into(), 3.into()])
    };
    let error = alone.call(request).result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&peer) && message.contains("spore node run"),
        "{message}"
    );
}

/// A host that serves its node's modules only after `delay`, the first time it is asked.
struct SlowToServe {
    host: NodeHost,
    delay: Duration,
    delayed: AtomicBool,
}

impl MeshHost for SlowToServe {
    fn module_bytes(&self, hash: &Hash) -> Option<Vec<u8>> {
        if !self.delayed.swap(true, Ordering::SeqCst) {
            std::thread::sleep(self.delay);
        }
        self.host.module_bytes(hash)
    }
    fn module_hashes(&self) -> Vec<Hash> {
        self.host.module_hashes()
    }
    fn invoke(&self, request: CallRequest, from: PeerId, cancel: Cancel) -> InvokeResponse {
        self.host.invoke(request, from, cancel)
    }
}

#[test]
fn one_deadline_covers_fetching_the_code_and_running_it() {
    let rt = runtime();
    let holder = TestNode::open(&defaults_and("")).join_with(&rt, &[], |node| {
        Arc::new(SlowToServe {
            host: NodeHost::new(node),
            delay: Duration::from_millis(1500),
            delayed: AtomicBool::new(false),
        })
    });
    let asker = TestNode::open(&defaults_and("")).join(&rt, &[&holder]);
    connect(&rt, &asker, &holder);
    let faults = holder.publish("faults");

    let started = Instant::now();
    let request = CallRequest {
        deadline: started + Duration::from_millis(2500),
        ..asker.request(faults, "spin", &[])
    };
    let called = asker.call(request);
    let elapsed = started.elapsed();
    let error = called.result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert!(took(&called.path, &asker, "fetched"), "{:?}", called.path);
    // The fetch took 1.5 s of the 2.5 s; the run got what was left, not 2.5 s more.
    assert!(
        elapsed < Duration::from_millis(3000),
        "the call took {elapsed:?} for a deadline of 2.5 s"
    );
}

#[test]
fn a_forwarded_call_keeps_its_memory_cap_and_memo_choice_and_says_it_was_pure() {
    let rt = runtime();
    let runner = TestNode::open(&defaults_and("")).join(&rt, &[]);
    let caller = TestNode::open(&defaults_and("")).join(&rt, &[&runner]);
    connect(&rt, &caller, &runner);
    let faults = runner.publish("faults");
    let arith = runner.publish("arith");
    let on_runner = Placement::On(runner.mesh().peer_id().to_string());

    // 32 MiB fits the runner's default cap (64 MiB) but not the one the caller set.
    let request = CallRequest {
        memory_bytes: 16 << 20,
        placement: on_runner.clone(),
        ..caller.request(faults, "hog", &[32.into()])
    };
    let called = caller.call(request);
    assert!(
        took(&called.path, &caller, "forwarded"),
        "{:?}",
        called.path
    );
    let error = called.result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::MemoryLimit, "{error}");

    let add = |memo: bool| {
        let request = CallRequest {
            memo,
            placement: on_runner.clone(),
            ..caller.request(arith, "add", &[2.into(), 3.into()])
        };
        caller.call(request).result.unwrap()
    };
    let stored = add(true);
    assert_eq!(stored.value, Value::Integer(5.into()));
    assert_eq!((stored.memo, stored.effectful), (MemoUse::Stored, false));
    assert!(stored.stats.is_some(), "a run reports its stats");
    let hit = add(true);
    assert_eq!((hit.memo, hit.stats), (MemoUse::Hit, None));
    let bypassed = add(false);
    assert_eq!(bypassed.memo, MemoUse::Skipped);
    assert!(
        bypassed.stats.is_some(),
        "with the memo off, the function runs"
    );
}

#[test]
fn a_node_holds_forwarded_calls_to_its_own_limits_whatever_the_caller_asks() {
    let rt = runtime();
    let strict = spore_node::config::default_config().replace(
        "[limits.forwarded]\ntimeout = \"30s\"\nmemory = \"256MiB\"\nargs = \"4MiB\"",
        "[limits.forwarded]\ntimeout = \"1s\"\nmemory = \"16MiB\"\nargs = \"1KiB\"",
    );
    assert_ne!(
        strict,
        spore_node::config::default_config(),
        "the defaults changed"
    );
    let runner = TestNode::open(&strict).join(&rt, &[]);
    let caller = TestNode::open(&defaults_and("")).join(&rt, &[&runner]);
    connect(&rt, &caller, &runner);
    let faults = runner.publish("faults");
    let pinned = |function: &str, args: &[Value]| CallRequest {
        deadline: Instant::now() + Duration::from_secs(20),
        placement: Placement::On(runner.mesh().peer_id().to_string()),
        ..caller.request(faults, function, args)
    };

    let started = Instant::now();
    let error = caller.call(pinned("spin", &[])).result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let error = caller.call(pinned("hog", &[32.into()])).result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::MemoryLimit, "{error}");
    assert!(
        error.to_string().contains(&(16u64 << 20).to_string()),
        "{error}"
    );

    let error = caller
        .call(pinned("echo", &[text(&"x".repeat(2048))]))
        .result
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TooLarge, "{error}");

    // Within its limits, the runner serves the same caller as ever.
    let echoed = caller
        .call(pinned("echo", &[text("small")]))
        .result
        .unwrap();
    assert_eq!(echoed.value, text("small"));
}

/// A host that reports when each call it served ended.
struct Watching {
    host: NodeHost,
    ended: Mutex<mpsc::Sender<(Instant, InvokeResponse)>>,
}

impl MeshHost for Watching {
    fn module_bytes(&self, hash: &Hash) -> Option<Vec<u8>> {
        self.host.module_bytes(hash)
    }
    fn module_hashes(&self) -> Vec<Hash> {
        self.host.module_hashes()
    }
    fn invoke(&self, request: CallRequest, from: PeerId, cancel: Cancel) -> InvokeResponse {
        let response = self.host.invoke(request, from, cancel);
        let _ = self
            .ended
            .lock()
            .unwrap()
            .send((Instant::now(), response.clone()));
        response
    }
    fn invoke_now(&self, request: CallRequest, _: PeerId) -> InvokeNow {
        InvokeNow::Later(request)
    }
}

#[test]
fn a_forwarded_call_stops_when_its_caller_goes_away() {
    let rt = runtime();
    let (ended, calls_ended) = mpsc::channel();
    let runner = TestNode::open(&defaults_and("")).join_with(&rt, &[], |node| {
        Arc::new(Watching {
            host: NodeHost::new(node),
            ended: Mutex::new(ended),
        })
    });
    let caller = TestNode::open(&defaults_and("")).join(&rt, &[&runner]);
    connect(&rt, &caller, &runner);
    let faults = runner.publish("faults");

    let request = CallRequest {
        deadline: Instant::now() + Duration::from_secs(30),
        placement: Placement::On(runner.mesh().peer_id().to_string()),
        ..caller.request(faults, "spin", &[])
    };
    let node: Arc<Node> = caller.node.clone();
    let waiting = std::thread::spawn(move || node.call(request));
    std::thread::sleep(Duration::from_millis(1000));
    let gone = Instant::now();
    rt.block_on(caller.mesh().shutdown());

    let (at, response) = calls_ended
        .recv_timeout(Duration::from_secs(10))
        .expect("the runner stopped the call, long before its 30 s deadline");
    assert!(
        at - gone < Duration::from_secs(2),
        "stopped {:?} after",
        at - gone
    );
    let failure = response.result.unwrap_err();
    assert_eq!(failure.kind, ErrorKind::Unavailable, "{failure:?}");
    assert!(failure.message.contains("gone"), "{failure:?}");
    let caller_saw = waiting.join().unwrap().result.unwrap_err();
    assert!(matches!(caller_saw, NodeError::Mesh(_)), "{caller_saw}");
}

#[test]
fn a_fan_out_of_nested_calls_gives_a_bounded_path() {
    // `out` calls the function named `leaf` 600 times through `call`.
    let fan = wat(r#"(module
      (import "call" "invoke" (func $invoke (param i32 i32) (result i64)))
      (memory (export "memory") 1)
      (global $next (mut i32) (i32.const 4096))
      (func (export "spore_alloc") (param $len i32) (result i32)
        (local $at i32)
        (local.set $at (global.get $next))
        (global.set $next (i32.add (global.get $next) (local.get $len)))
        (if (i32.gt_u (global.get $next) (i32.const 60000))
          (then (global.set $next (i32.const 4096))))
        (local.get $at))
      ;; {"function": "leaf"}
      (data (i32.const 16) "\a1\68function\64leaf")
      ;; status 0, null
      (data (i32.const 64) "\00\f6")
      (func (export "out") (param i32 i32) (result i64)
        (local $i i32)
        (loop $again
          (drop (call $invoke (i32.const 16) (i32.const 15)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $again (i32.lt_u (local.get $i) (i32.const 600))))
        (i64.or (i64.shl (i64.const 64) (i64.const 32)) (i64.const 2))))"#);
    let node = TestNode::open(&defaults_and(""));
    let arith = node.publish("arith");
    node.node
        .set_name(&"leaf".parse().unwrap(), &format!("{arith}:sum"))
        .unwrap();
    let fan = node.publish_bytes(&fan);
    let called = node.call(node.request(fan, "out", &[]));
    called.result.unwrap();
    assert_eq!(called.path.len(), spore_core::Path::MAX_STEPS);
    assert!(
        called.path.omitted() >= 600 + 1 - 256,
        "{}",
        called.path.omitted()
    );
}

#[test]
fn a_peer_may_use_a_binding_only_when_its_callers_admit_it_even_through_call() {
    let rt = runtime();
    // By default a binding serves no forwarded call.
    let cloud = TestNode::open(&defaults_and("")).join(&rt, &[]);
    let edge = TestNode::open(&without_kv()).join(&rt, &[&cloud]);
    connect(&rt, &edge, &cloud);
    let visits = cloud.publish("visits");
    let caller = cloud.publish("caller");

    let refused = edge.call(edge.request(visits, "hit", &[text("home")]));
    let error = refused.result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotAllowed, "{error}");
    assert!(error.to_string().contains("may use kv"), "{error}");

    // Nor can a forwarded call reach it through `call`: the function it calls runs with
    // the caller's bindings.
    let hit = format!("{visits}:hit");
    let through_call = CallRequest {
        placement: Placement::On(cloud.mesh().peer_id().to_string()),
        ..edge.request(
            caller,
            "call_twice",
            &[text(&hit), Value::Integer(1.into())],
        )
    };
    let error = edge.call(through_call).result.unwrap_err();
    assert!(error.to_string().contains("may use kv"), "{error}");

    // `callers` opens it to the members it admits.
    drop((edge, cloud));
    let cloud = TestNode::open(&kv_for(r#""*""#)).join(&rt, &[]);
    let edge = TestNode::open(&without_kv()).join(&rt, &[&cloud]);
    connect(&rt, &edge, &cloud);
    let visits = cloud.publish("visits");
    let called = edge.call(edge.request(visits, "hit", &[text("home")]));
    assert_eq!(called.result.unwrap().value, Value::Integer(1.into()));
}

#[test]
fn a_peer_over_its_share_of_calls_gets_busy_and_the_node_keeps_serving_others() {
    let rt = runtime();
    let config = defaults_and("").replace("per_peer_calls = 32", "per_peer_calls = 1");
    assert!(
        config.contains("per_peer_calls = 1"),
        "the default config names the key"
    );
    let runner = TestNode::open(&config).join(&rt, &[]);
    let greedy = TestNode::open(&defaults_and("")).join(&rt, &[&runner]);
    let other = TestNode::open(&defaults_and("")).join(&rt, &[&runner]);
    connect(&rt, &greedy, &runner);
    connect(&rt, &other, &runner);
    let faults = runner.publish("faults");
    let arith = runner.publish("arith");
    let on_runner = Placement::On(runner.mesh().peer_id().to_string());
    let add = |node: &TestNode| {
        let request = CallRequest {
            memo: false,
            placement: on_runner.clone(),
            ..node.request(arith, "add", &[2.into(), 3.into()])
        };
        node.call(request).result
    };
    // Warm: the runner has the code compiled, and each caller knows the runner.
    assert!(add(&greedy).is_ok() && add(&other).is_ok());

    let spinning = {
        let request = CallRequest {
            deadline: Instant::now() + Duration::from_secs(3),
            placement: on_runner.clone(),
            ..greedy.request(faults, "spin", &[])
        };
        let node = greedy.node.clone();
        std::thread::spawn(move || node.call(request))
    };
    std::thread::sleep(Duration::from_millis(500));
    let error = add(&greedy).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Busy, "{error}");
    assert!(error.to_string().contains("per_peer_calls"), "{error}");
    assert_eq!(add(&other).unwrap().value, Value::Integer(5.into()));

    let spun = spinning.join().unwrap();
    assert_eq!(spun.result.unwrap_err().kind(), ErrorKind::Timeout);
    // The runner ends the spin at the same deadline, a moment after the caller gave up.
    let again = Instant::now();
    let answered = loop {
        match add(&greedy) {
            Err(error)
                if error.kind() == ErrorKind::Busy && again.elapsed() < Duration::from_secs(2) =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => break other,
        }
    };
    assert_eq!(answered.unwrap().value, Value::Integer(5.into()));
}

#[test]
fn a_node_fetches_no_more_code_for_a_peer_past_its_module_quota() {
    let rt = runtime();
    let config = defaults_and("").replace(
        "per_peer_module_bytes = \"256MiB\"",
        "per_peer_module_bytes = 1",
    );
    assert!(
        config.contains("per_peer_module_bytes = 1"),
        "the default config names the key"
    );
    let runner = TestNode::open(&config).join(&rt, &[]);
    let caller = TestNode::open(&defaults_and("")).join(&rt, &[&runner]);
    connect(&rt, &caller, &runner);
    // The caller holds the code; the runner must fetch it to run the calls.
    let arith = caller.publish("arith");
    let words = caller.publish("words");
    let on_runner = Placement::On(runner.mesh().peer_id().to_string());
    let first = CallRequest {
        placement: on_runner.clone(),
        ..caller.request(arith, "add", &[2.into(), 3.into()])
    };
    assert_eq!(
        caller.call(first).result.unwrap().value,
        Value::Integer(5.into())
    );
    let second = CallRequest {
        placement: on_runner,
        ..caller.request(words, "frequencies", &[text("a b")])
    };
    let error = caller.call(second).result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Quota, "{error}");
    assert!(
        error.to_string().contains("per_peer_module_bytes"),
        "{error}"
    );
}

#[test]
fn a_remembered_peer_that_the_mesh_revoked_is_not_called_again() {
    let rt = runtime();
    let cloud = TestNode::open(&kv_for("\"*\"")).join(&rt, &[]);
    let edge = TestNode::open(&without_kv()).join(&rt, &[&cloud]);
    connect(&rt, &edge, &cloud);
    let visits = edge.publish("visits");
    let hit = || edge.request(visits, "hit", &[text("home")]);
    let first = edge.call(hit());
    assert_eq!(
        first.result.unwrap().value,
        Value::from(1),
        "{:?}",
        first.path
    );
    let warm = edge.call(hit());
    assert_eq!(warm.result.unwrap().value, Value::from(2));
    assert!(
        warm.path
            .steps()
            .iter()
            .any(|s| s.step.contains("(cached, ")),
        "the second call found its peer in the placement cache: {:?}",
        warm.path
    );

    // A member that knows the mesh revoked the cloud meets the edge: its hello carries
    // the revocation, and the edge stops admitting the cloud.
    let cloud_peer = cloud.mesh().peer_id();
    let _witness = TestNode::open(&without_kv()).join_revoking(&rt, &[&edge], &[&cloud], |node| {
        Arc::new(NodeHost::new(node))
    });
    let started = Instant::now();
    while edge.mesh().admitted(&cloud_peer).is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the edge still admits the revoked cloud"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let after = edge.call(hit());
    assert!(after.result.is_err(), "{:?}", after.path);
    let refused_first = format!("not forwarding to {cloud_peer}");
    assert!(
        after
            .path
            .steps()
            .iter()
            .any(|s| s.step.starts_with(&refused_first)),
        "the remembered cloud is judged again and passed over: {:?}",
        after.path
    );
    // Nothing ran there: the cloud's own count of visits is still 2.
    let count = cloud.call(cloud.request(visits, "count", &[text("home")]));
    assert_eq!(count.result.unwrap().value, Value::from(2));
}
