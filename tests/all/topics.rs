//! Topics and subscriptions (`spec/abilities.md`, "topic"), on real nodes: gossip across
//! the mesh (at most once), and NATS JetStream through a real `nats-server -js` that the
//! tests start (at least once: failed and unfinished deliveries come again, the last
//! failure is dead-lettered).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::support::{RunningNode, Spore};

/// What `topics.seen` returns on `node`: `[[id, delivery], ...]`.
fn seen(node: &RunningNode) -> Vec<serde_json::Value> {
    node.spore
        .invoke("topics.seen", &[])
        .as_array()
        .unwrap()
        .clone()
}

/// Waits (up to `within`) until `node` has kept a delivery.
fn first_seen(node: &RunningNode, within: Duration) -> serde_json::Value {
    let started = Instant::now();
    loop {
        if let Some(first) = seen(node).into_iter().next() {
            return first[1].clone();
        }
        assert!(
            started.elapsed() < within,
            "nothing delivered within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_message_published_on_gossip_reaches_the_subscribers_on_every_node() {
    let gossip = "[abilities.topic]\nprovider = \"gossip\"\n\n\
                  [[subscriptions]]\ntopic = \"greetings\"\nfunction = \"topics.remember\"\n";
    let cloud = Spore::new();
    cloud.configure(gossip);
    let cloud = RunningNode::start_with(cloud, &[]);
    let edge = Spore::new();
    edge.configure(gossip);
    let edge = RunningNode::start_with(edge, &[&cloud]);
    cloud.spore.publish("topics", Some("topics"));
    edge.spore.publish("topics", Some("topics"));

    // Gossip promises nothing before the peers know of each other's subscriptions:
    // publish until a message arrives.
    let started = Instant::now();
    let kept = loop {
        cloud
            .spore
            .run(&[
                "invoke",
                "topics.announce",
                r#""greetings""#,
                r#"{"hello":"edge"}"#,
            ])
            .ok();
        if let Some(first) = seen(&edge).into_iter().next() {
            break first[1].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no message reached the edge"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(kept["topic"], "greetings");
    assert_eq!(kept["message"], serde_json::json!({"hello": "edge"}));
    assert_eq!(kept["delivery"], 1, "gossip delivers once: {kept}");
    assert_eq!(kept["id"].as_str().unwrap().len(), 32, "16 bytes in hex");
    // The publishing node's own subscription got it too.
    let local = first_seen(&cloud, Duration::from_secs(5));
    assert_eq!(local["message"], serde_json::json!({"hello": "edge"}));
}

#[test]
fn a_subscription_without_a_delivering_topic_binding_is_refused_where_it_stands() {
    let spore = Spore::new();
    spore.configure("[[subscriptions]]\ntopic = \"orders\"\nfunction = \"shop.on_order\"\n");
    let stderr = spore.run(&["abilities"]).fails_with(2).to_owned();
    assert!(stderr.contains("subscriptions[0]"), "{stderr}");
    assert!(
        stderr.contains("provider = \"gossip\" or \"nats\""),
        "{stderr}"
    );

    let spore = Spore::new();
    spore.configure(
        "[abilities.topic]\nprovider = \"gossip\"\n\n\
         [[subscriptions]]\ntopic = \"orders.*\"\nfunction = \"shop.on_order\"\n",
    );
    let stderr = spore.run(&["abilities"]).fails_with(2).to_owned();
    assert!(stderr.contains("subscriptions[0].topic"), "{stderr}");
    assert!(stderr.contains("not a valid topic"), "{stderr}");
}

/// A `nats-server -js` on a free loopback port with its store in a temporary
/// directory, killed when dropped.
struct NatsServer {
    child: Child,
    port: u16,
    _store: tempfile::TempDir,
}

impl NatsServer {
    fn start() -> NatsServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = tempfile::tempdir().unwrap();
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start nats-server ({e}): install it with `apt-get install nats-server` (.ci/run does)")
            });
        let mut server = NatsServer {
            child,
            port,
            _store: store,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("nats-server exited before accepting connections: {status}");
            }
            assert!(started.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The messages stored on `subject` (the dead letters, say), with their headers.
    fn messages_on(&self, subject: &str) -> Vec<async_nats::jetstream::Message> {
        let url = self.url();
        let subject = subject.to_owned();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let context = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
            let stream = context.get_stream("SPORE").await.unwrap();
            let consumer: async_nats::jetstream::consumer::PullConsumer = stream
                .create_consumer(async_nats::jetstream::consumer::pull::Config {
                    filter_subject: subject,
                    ..Default::default()
                })
                .await
                .unwrap();
            let mut batch = consumer
                .fetch()
                .max_messages(100)
                .expires(Duration::from_secs(1))
                .messages()
                .await
                .unwrap();
            let mut messages = Vec::new();
            while let Some(message) = batch.next().await {
                messages.push(message.unwrap());
            }
            messages
        })
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nats_config(nats: &NatsServer, subscriptions: &str) -> String {
    format!(
        "[abilities.topic]\nprovider = \"nats\"\nurl = \"{}\"\nmax_deliver = 3\nack_wait = \"2s\"\n\n{subscriptions}",
        nats.url()
    )
}

#[test]
fn a_nats_delivery_that_fails_twice_comes_again_until_it_succeeds_and_the_last_failure_is_dead_lettered()
 {
    let nats = NatsServer::start();
    let spore = Spore::new();
    spore.configure(&nats_config(
        &nats,
        "[[subscriptions]]\ntopic = \"orders.flaky\"\nfunction = \"topics.flaky\"\n\n\
         [[subscriptions]]\ntopic = \"orders.refused\"\nfunction = \"topics.refuse\"\n",
    ));
    let node = RunningNode::start_with(spore, &[]);
    node.spore.publish("topics", Some("topics"));

    node.spore
        .run(&[
            "invoke",
            "topics.announce",
            r#""orders.flaky""#,
            r#"{"n":1}"#,
        ])
        .ok();
    // The first two attempts fail; the third, 1 + 2 s later, keeps it.
    let kept = first_seen(&node, Duration::from_secs(20));
    assert_eq!(kept["topic"], "orders.flaky");
    assert_eq!(kept["message"], serde_json::json!({"n": 1}));
    assert_eq!(kept["delivery"], 3, "{kept}");

    node.spore
        .run(&[
            "invoke",
            "topics.announce",
            r#""orders.refused""#,
            r#""no""#,
        ])
        .ok();
    // Three attempts (after 1 s, then 2 s), then the dead-letter subject.
    let started = Instant::now();
    let dead = loop {
        let dead = nats.messages_on("spore.dead.orders.refused");
        if !dead.is_empty() {
            break dead;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing dead-lettered"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(dead.len(), 1);
    let letter = &dead[0];
    let headers = letter.headers.as_ref().expect("headers");
    assert_eq!(
        headers.get("Spore-Topic").unwrap().as_str(),
        "orders.refused"
    );
    assert_eq!(headers.get("Spore-Deliveries").unwrap().as_str(), "3");
    let error = headers.get("Spore-Error").unwrap().as_str();
    assert!(error.starts_with("guest_error"), "{error}");
    assert!(error.contains("attempt 3"), "{error}");
    let message: ciborium::Value = ciborium::from_reader(&letter.payload[..]).unwrap();
    assert_eq!(message, ciborium::Value::Text("no".into()));
    // Neither is delivered again: the success was acknowledged once, the dead letter
    // retired (a fourth delivery of the flaky one would be kept as delivery 4).
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(nats.messages_on("spore.dead.orders.refused").len(), 1);
    let kept = seen(&node);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0][1]["delivery"], 3, "{kept:?}");
}

#[test]
fn a_nats_delivery_whose_node_is_killed_mid_call_is_delivered_again_after_a_restart() {
    let nats = NatsServer::start();
    let spore = Spore::new();
    spore.configure(&nats_config(
        &nats,
        "[[subscriptions]]\ntopic = \"jobs\"\nfunction = \"topics.stall_first\"\ntimeout = \"60s\"\n",
    ));
    let node = RunningNode::start_with(spore, &[]);
    node.spore.publish("topics", Some("topics"));
    node.spore
        .run(&["invoke", "topics.announce", r#""jobs""#, r#"{"job":7}"#])
        .ok();

    // Wait for the first attempt to be running, then kill the node under it.
    let started = Instant::now();
    loop {
        let status = node.spore.run(&["--json", "node", "status"]).json();
        if status["calls_in_flight"].as_i64().unwrap() >= 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the delivery never started: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let home = node.kill();
    let node = RunningNode::start_with(home, &[]);
    // Never acknowledged, so the server delivers it again once `ack_wait` (2 s) passed.
    let kept = first_seen(&node, Duration::from_secs(30));
    assert_eq!(kept["message"], serde_json::json!({"job": 7}));
    assert!(kept["delivery"].as_u64().unwrap() >= 2, "{kept}");
}
