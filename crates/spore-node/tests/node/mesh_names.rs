//! Mesh names between real nodes on loopback (`spec/trust.md`, "Mesh names"): signed
//! publications spread by gossip and the DHT, believed only from the keys a node's
//! `[trust.names]` names, with their rollbacks; and bindings limited to the code of
//! chosen publishers.

use std::time::{Duration, Instant};

use ciborium::Value;
use spore_core::trust::{ChainRun, Publication, SecretKey, Signed};
use spore_core::{ErrorKind, FunctionRef, Hash, Name};
use spore_node::TrustStore;

use crate::common::*;

fn billing() -> SecretKey {
    SecretKey::from_seed([0xb1; 32])
}

fn rogue() -> SecretKey {
    SecretKey::from_seed([0xb2; 32])
}

/// A configuration believing `billing.*` from the billing key only.
fn trusting_billing(base: &str) -> String {
    format!(
        "{base}\n[trust.names]\n\"billing.*\" = [\"{}\"]\n",
        billing().public()
    )
}

fn with_keys(node: &TestNode) {
    let store = TrustStore::new(node.node.home());
    store.add_key("billing", &billing()).unwrap();
    store.add_key("rogue", &rogue()).unwrap();
}

fn name(text: &str) -> Name {
    text.parse().unwrap()
}

/// Waits (at most 10 s) until `node` resolves `text` to `expected`.
fn resolves_to(node: &TestNode, text: &str, expected: &FunctionRef) {
    let started = Instant::now();
    loop {
        match node.node.function_ref(text) {
            Ok(found) if found == *expected => return,
            other if started.elapsed() > Duration::from_secs(10) => {
                panic!("`{text}` resolves to {other:?}, not {expected}, after 10 s")
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[test]
fn a_mesh_name_published_on_one_node_resolves_on_another_from_a_trusted_key_and_so_does_its_rollback()
 {
    let rt = runtime();
    let publisher = TestNode::open(&defaults_and("")).join(&rt, &[]);
    with_keys(&publisher);
    let reader = TestNode::open(&trusting_billing(&defaults_and(""))).join(&rt, &[&publisher]);
    connect(&rt, &reader, &publisher);
    let arith = publisher.publish("arith");
    let add = FunctionRef::new(arith, "add".parse().unwrap());
    let mul = FunctionRef::new(arith, "mul".parse().unwrap());

    // A key the reader does not trust publishes first: never believed, nor kept.
    publisher
        .node
        .publish_name(&name("billing.refund"), Some(&add.to_string()), "rogue")
        .unwrap();
    let charge = name("billing.charge");
    let first = publisher
        .node
        .publish_name(&charge, Some(&add.to_string()), "billing")
        .unwrap();
    assert_eq!((first.seq, first.publisher), (1, billing().public()));

    resolves_to(&reader, "billing.charge", &add);
    let called = reader.call(reader.request(arith, "add", &[2.into(), 3.into()]));
    assert_eq!(called.result.unwrap().value, Value::Integer(5.into()));
    let error = reader.node.function_ref("billing.refund").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");

    // A new version, then the rollback: a new record pointing at the first again.
    publisher
        .node
        .publish_name(&charge, Some(&mul.to_string()), "billing")
        .unwrap();
    resolves_to(&reader, "billing.charge", &mul);
    let rollback = publisher
        .node
        .publish_name(&charge, Some(&add.to_string()), "billing")
        .unwrap();
    assert_eq!(rollback.seq, 3);
    resolves_to(&reader, "billing.charge", &add);
    let believed = reader.node.mesh_names();
    assert_eq!(believed.len(), 1, "{believed:?}");
    assert_eq!(
        (
            believed[0].seq,
            believed[0].publisher,
            believed[0].target.clone()
        ),
        (3, billing().public(), Some(add.clone()))
    );

    let history = reader.node.name_history(&charge).unwrap();
    let targets: Vec<_> = history.iter().map(|e| e.target().cloned()).collect();
    assert_eq!(targets, [Some(add.clone()), Some(mul), Some(add.clone())]);

    // A node that joins later finds the name in the DHT; gossip has long passed.
    let late = TestNode::open(&trusting_billing(&defaults_and(""))).join(&rt, &[&publisher]);
    connect(&rt, &late, &publisher);
    resolves_to(&late, "billing.charge", &add);

    // A name of the reader's own home comes first.
    let local_arith = reader.publish("arith");
    reader
        .node
        .set_name(&charge, &format!("{local_arith}:sub"))
        .unwrap();
    assert_eq!(
        reader.node.function_ref("billing.charge").unwrap().export,
        Some("sub".parse().unwrap())
    );
}

/// The chain of `name` by `key`, pointing at `targets` in turn.
fn chain(key: &SecretKey, name: &str, targets: &[Hash]) -> Vec<Signed<Publication>> {
    let mut records: Vec<Signed<Publication>> = Vec::new();
    for (seq, target) in (1..).zip(targets) {
        let body = Publication {
            publisher: key.public(),
            name: name.into(),
            target: Some(target.to_hex()),
            seq,
            at_ms: 1_700_000_000_000 + seq,
            previous: records.last().map(Signed::hash),
        };
        records.push(Signed::sign(body, key).unwrap());
    }
    records
}

fn run(records: &[Signed<Publication>]) -> ChainRun {
    ChainRun::new(records.to_vec()).unwrap()
}

#[test]
fn replayed_conflicting_skipping_and_tampered_publications_are_refused_saying_which() {
    let node = TestNode::open(&trusting_billing(&defaults_and("")));
    let [v1, v2, v3] = [b"v1", b"v2", b"v3"].map(|v| Hash::of(v));
    let held = chain(&billing(), "billing.charge", &[v1, v2, v3]);
    assert_eq!(node.node.receive_chain(&run(&held[..2])).unwrap(), 2);
    assert_eq!(node.node.receive_chain(&run(&held[..2])).unwrap(), 0);

    let refusal = |records: &[Signed<Publication>]| {
        let error = node.node.receive_chain(&run(records)).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::NotAllowed, "{error}");
        error.to_string()
    };
    let replayed = refusal(&held[..1]);
    assert!(replayed.contains("is a replay"), "{replayed}");
    let other = chain(&billing(), "billing.charge", &[v1, v3]);
    let conflicting = refusal(&other[1..]);
    assert!(
        conflicting.contains("two different publications"),
        "{conflicting}"
    );
    let skipping = chain(&billing(), "billing.charge", &[v1, v2, v3, v1]);
    let broken = refusal(&skipping[3..]);
    assert!(broken.contains("does not follow"), "{broken}");

    let mut tampered = run(&held).to_bytes();
    // In the last record's signature, the end of the message.
    let at = tampered.len() - 10;
    tampered[at] ^= 0x01;
    let error = ChainRun::from_bytes(&tampered).unwrap_err();
    assert_eq!(error.code(), "bad_signature", "{error}");
    let forged = {
        // Signed by the rogue key, naming the billing key as its publisher.
        let mut body = held[2].body().clone();
        body.publisher = rogue().public();
        let signed = Signed::sign(body, &rogue()).unwrap();
        let mut bytes = signed.as_bytes().to_vec();
        let (from, to) = (rogue().public(), billing().public());
        let at = bytes
            .windows(32)
            .position(|w| w == from.as_bytes())
            .unwrap();
        bytes[at..at + 32].copy_from_slice(to.as_bytes());
        bytes
    };
    assert_eq!(
        Signed::<Publication>::from_bytes(&forged)
            .unwrap_err()
            .code(),
        "bad_signature"
    );

    // What was taken is kept in the home: believed again after a restart.
    assert_eq!(node.node.receive_chain(&run(&held)).unwrap(), 1);
    let node = node.reopen(&trusting_billing(&defaults_and("")));
    let believed = node.node.mesh_names();
    assert_eq!(believed.len(), 1);
    assert_eq!(believed[0].seq, 3);
    assert_eq!(believed[0].target.as_ref().unwrap().module, v3);
}

#[test]
fn a_peers_call_may_use_a_binding_limited_to_publishers_only_with_code_they_signed() {
    let rt = runtime();
    let cloud_config = kv_for(r#""*""#).replacen(
        "[abilities.kv]\n",
        &format!(
            "[abilities.kv]\npublishers = [\"{}\"]\n",
            billing().public()
        ),
        1,
    );
    let cloud = TestNode::open(&cloud_config).join(&rt, &[]);
    let edge = TestNode::open(&without_kv()).join(&rt, &[&cloud]);
    with_keys(&edge);
    connect(&rt, &edge, &cloud);
    // The member's own module, unsigned: the cloud's kv is not for it.
    let visits = edge.publish("visits");
    let hit = || {
        edge.call(edge.request(visits, "hit", &[Value::Text("home".into())]))
            .result
    };
    let error = hit().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotAllowed, "{error}");
    assert!(
        error.to_string().contains("signed by") && error.to_string().contains("publishers"),
        "{error}"
    );

    // Signed by a key other than the one the binding names: still refused.
    edge.node
        .publish_name(&name("visits.hit"), Some(&format!("{visits}:hit")), "rogue")
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let error = hit().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotAllowed, "{error}");

    // Signed by the billing key: the cloud learns it (gossip, DHT) and serves it.
    edge.node
        .publish_name(
            &name("visits.hit"),
            Some(&format!("{visits}:hit")),
            "billing",
        )
        .unwrap();
    let started = Instant::now();
    loop {
        match hit() {
            Ok(outcome) => {
                assert_eq!(outcome.value, Value::Integer(1.into()));
                break;
            }
            Err(error) if started.elapsed() > Duration::from_secs(10) => {
                panic!("still refused after 10 s: {error}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
