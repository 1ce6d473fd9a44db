//! JetStream delivery throughput (issue 11, item 7; figures in docs/performance.md):
//! messages taken from a durable pull consumer of a real `nats-server -js`, handled one
//! at a time and acknowledged, side by side in one run:
//!
//! - `async-nats, double ack`: a plain async-nats consumer with the consumer settings of
//!   spore's `nats` provider (durable, explicit acknowledgement, pulls of 200 through
//!   `messages()`); for each message it reads the metadata, decodes the payload (canonical
//!   CBOR) and acknowledges, waiting for the server to confirm (`double_ack`): what
//!   spore's provider does for a delivery, without calling a function;
//! - `async-nats, ack`: the same with the acknowledgement not awaited (`ack`), the usual
//!   consumer's loop and an upper bound;
//! - `spore`: a real `spore node run` with `[abilities.topic] provider = "nats"` and a
//!   `[[subscriptions]]` entry calling `topics.accept` (it takes the delivery and does
//!   nothing) with each message.
//!
//! Each run starts on a fresh stream (`SPORE`, as spore makes it) holding `MESSAGES`
//! messages on the topic's subject, published beforehand, and a fresh consumer. The rate
//! is read from outside, the same way for every target: the consumer's info is polled
//! every 5 ms, and the messages acknowledged (its ack floor) between the first poll that
//! sees one acknowledged and the one that sees all, divided by the time between those
//! polls, is the run's rate; so the node's start, the connection and the first call's
//! compilation are left out. Over the same window the CPU time of the consuming process
//! (the node, or this bench's own process for the baselines, poller included) and of
//! `nats-server` is read from `/proc`, per message. The targets are alternated over 3
//! rounds (the median kept). The NATS server, the consumer or node and the poller share
//! the machine's cores: compare ratios. The bench says so and stops when `nats-server` is missing (`apt-get
//! install nats-server`).
//!
//!     cargo bench --bench jetstream

#[path = "support/nats.rs"]
mod nats;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use nats::NatsServer;

const ROUNDS: usize = 3;
/// Messages per run: a few seconds of spore's deliveries.
const MESSAGES: u64 = 50_000;
const WARM_UP: u64 = 1_000;
const STREAM: &str = "SPORE";
const TOPIC: &str = "bench.deliveries";
const GROUP: &str = "bench";
const POLL: Duration = Duration::from_millis(5);
/// A run that acknowledges nothing for this long has stalled.
const STALLED: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    DoubleAck,
    Ack,
    Spore,
}

impl Target {
    const ALL: [Target; 3] = [Target::DoubleAck, Target::Ack, Target::Spore];

    fn name(self) -> &'static str {
        match self {
            Target::DoubleAck => "async-nats, double ack",
            Target::Ack => "async-nats, ack",
            Target::Spore => "spore (topics.accept)",
        }
    }
}

fn main() {
    let Some(nats) = NatsServer::start(true) else {
        return;
    };
    let home = SporeHome::new(&nats.url());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let context =
        runtime.block_on(async { jetstream::new(async_nats::connect(nats.url()).await.unwrap()) });
    let measure = |target: Target, messages: u64| -> Run {
        runtime.block_on(run(&context, &home, nats.pid(), target, messages))
    };

    // Warm up: the module compiled and cached, the server's store in use.
    for target in Target::ALL {
        measure(target, WARM_UP);
    }
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); Target::ALL.len()];
    for round in 0..ROUNDS {
        for i in 0..Target::ALL.len() {
            // Rotate the order each round, so no target always runs first.
            let i = (i + round) % Target::ALL.len();
            runs[i].push(measure(Target::ALL[i], MESSAGES));
        }
    }

    println!("\nJetStream delivery: {MESSAGES} messages per run, msgs/s, {ROUNDS} rounds");
    print!("{:<24}", "target");
    for round in 1..=ROUNDS {
        print!(" {:>9}", format!("round {round}"));
    }
    println!(" {:>9} {:>8}", "median", "us/msg");
    let mut medians = Vec::new();
    for (target, runs) in Target::ALL.iter().zip(&runs) {
        print!("{:<24}", target.name());
        for run in runs {
            print!(" {:>9.0}", run.rate);
        }
        let median = median_by_rate(runs);
        println!(" {:>9.0} {:>8.1}", median.rate, 1e6 / median.rate);
        medians.push(median);
    }
    println!("\nCPU time per message in the median round, us (/proc, 10 ms ticks)");
    println!("{:<24} {:>9} {:>11}", "target", "consumer", "nats-server");
    for (target, median) in Target::ALL.iter().zip(&medians) {
        println!(
            "{:<24} {:>9.1} {:>11.1}",
            target.name(),
            median.consumer_cpu_us,
            median.server_cpu_us
        );
    }
    let medians: Vec<f64> = medians.iter().map(|m| m.rate).collect();
    println!(
        "spore / async-nats, double ack: {:.2} of the messages per second",
        medians[2] / medians[0]
    );
    println!(
        "spore / async-nats, ack: {:.2} of the messages per second",
        medians[2] / medians[1]
    );
}

/// One run's figures.
#[derive(Clone, Debug)]
struct Run {
    /// Messages acknowledged per second.
    rate: f64,
    /// CPU time per message of the consuming process, in µs.
    consumer_cpu_us: f64,
    /// CPU time per message of `nats-server`, in µs.
    server_cpu_us: f64,
}

fn median_by_rate(runs: &[Run]) -> Run {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    sorted[sorted.len() / 2].clone()
}

/// One run of `target` over `messages` messages on a fresh stream.
async fn run(
    context: &jetstream::Context,
    home: &SporeHome,
    server: u32,
    target: Target,
    messages: u64,
) -> Run {
    let stream = fresh_stream(context, messages).await;
    let (run, consumer, node) = match target {
        Target::DoubleAck | Target::Ack => {
            let confirm = target == Target::DoubleAck;
            let consumer = tokio::spawn(plain_consumer(stream.clone(), confirm, messages));
            let pids = [std::process::id(), server];
            (watch(&stream, messages, pids).await, Some(consumer), None)
        }
        Target::Spore => {
            let node = home.run_node();
            let run = watch(&stream, messages, [node.child.id(), server]).await;
            (run, None, Some(node))
        }
    };
    let run = match run {
        Ok(rate) => rate,
        Err(why) => match node {
            Some(node) => panic!("{}: {why}; the node's log:\n{}", target.name(), node.log()),
            None => panic!("{}: {why}", target.name()),
        },
    };
    if let Some(consumer) = consumer {
        consumer.await.unwrap();
    }
    drop(node);
    run
}

/// The stream spore's provider makes, emptied and refilled with `messages` messages on
/// the topic's subject (canonical CBOR, as spore publishes them).
async fn fresh_stream(context: &jetstream::Context, messages: u64) -> stream::Stream {
    let _ = context.delete_stream(STREAM).await;
    let stream = context
        .create_stream(stream::Config {
            name: STREAM.to_owned(),
            subjects: vec!["spore.topic.>".to_owned(), "spore.dead.>".to_owned()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .unwrap();
    let subject = format!("spore.topic.{TOPIC}");
    let mut acks = Vec::new();
    for n in 0..messages {
        let message = ciborium::Value::Map(vec![
            ("n".into(), n.into()),
            ("order".into(), format!("order-{n:08}").into()),
            ("amount".into(), (n % 1000).into()),
        ]);
        let payload = spore_core::value::encode_canonical(&message).unwrap();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Content-Type", "application/cbor");
        acks.push(
            context
                .publish_with_headers(subject.clone(), headers, payload.into())
                .await
                .unwrap(),
        );
        // Keep a bounded number of publishes unconfirmed.
        if acks.len() == 1000 {
            for ack in acks.drain(..) {
                ack.await.unwrap();
            }
        }
    }
    for ack in acks {
        ack.await.unwrap();
    }
    let stored = stream.get_info().await.unwrap().state.messages;
    assert_eq!(stored, messages, "the stream holds every message");
    stream
}

/// The consumer settings of spore's `nats` provider (crates/spore-abilities/src/topic/nats.rs).
fn consumer_config() -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(GROUP.to_owned()),
        filter_subject: format!("spore.topic.{TOPIC}"),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(30),
        max_deliver: -1,
        ..Default::default()
    }
}

/// The baseline: `messages` messages read, decoded and acknowledged one at a time.
async fn plain_consumer(stream: stream::Stream, confirm: bool, messages: u64) {
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(GROUP, consumer_config())
        .await
        .unwrap();
    let mut deliveries = consumer.messages().await.unwrap();
    for _ in 0..messages {
        let message = deliveries.next().await.unwrap().unwrap();
        let (delivered, sequence) = {
            let info = message.info().unwrap();
            (info.delivered, info.stream_sequence)
        };
        let value = spore_core::value::decode(&message.payload).unwrap();
        std::hint::black_box((delivered, sequence, value));
        if confirm {
            message.double_ack().await.unwrap();
        } else {
            message.ack().await.unwrap();
        }
    }
}

/// Polls the consumer until all `messages` are acknowledged; the rate between the first
/// poll that saw one acknowledged and the last, and the CPU time the processes
/// `[consumer, server]` spent meanwhile, per message.
async fn watch(stream: &stream::Stream, messages: u64, pids: [u32; 2]) -> Result<Run, String> {
    let mut first: Option<(Instant, u64, [f64; 2])> = None;
    let mut progress = (Instant::now(), 0);
    loop {
        let acked = match stream.consumer_info(GROUP).await {
            Ok(info) => info.ack_floor.stream_sequence,
            // Not made yet.
            Err(_) => 0,
        };
        let now = Instant::now();
        if acked > progress.1 {
            progress = (now, acked);
        } else if now - progress.0 > STALLED {
            return Err(format!(
                "{acked} of {messages} messages acknowledged, none for {STALLED:?}"
            ));
        }
        if acked >= messages {
            let Some((since, from, cpu)) = first else {
                return Err("every message was acknowledged before the first poll".into());
            };
            let counted = (messages - from) as f64;
            let per_message = |i: usize| (cpu_seconds(pids[i]) - cpu[i]) * 1e6 / counted;
            return Ok(Run {
                rate: counted / (now - since).as_secs_f64(),
                consumer_cpu_us: per_message(0),
                server_cpu_us: per_message(1),
            });
        }
        if acked > 0 && first.is_none() {
            first = Some((now, acked, pids.map(cpu_seconds)));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The CPU time (user and system) process `pid` has used so far, in seconds; NaN where
/// `/proc` cannot tell.
fn cpu_seconds(pid: u32) -> f64 {
    // Clock ticks of `/proc/PID/stat`: 100 a second on Linux (`getconf CLK_TCK`).
    const TICKS: f64 = 100.0;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // The fields after the command's `(name)`: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let field = |i: usize| -> f64 {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (field(14) + field(15)) / TICKS
}

/// `nats-server` on the PATH, or where Debian's package puts it.
/// A spore home with `topics` published and a subscription of `topics.accept` to the
/// topic on the NATS server; each spore run starts a node on it.
struct SporeHome {
    home: tempfile::TempDir,
}

impl SporeHome {
    fn new(url: &str) -> SporeHome {
        let home = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let output = Command::new(env!("CARGO_BIN_EXE_spore"))
                .arg("--home")
                .arg(home.path())
                .args(args)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "spore {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        run(&["abilities"]);
        let module = spore_test_programs::path("topics").expect("topics is built");
        run(&["publish", module, "--name", "topics"]);
        let config = home.path().join("config.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "\n[abilities.topic]\nprovider = \"nats\"\nurl = \"{url}\"\n\n\
             [[subscriptions]]\ntopic = \"{TOPIC}\"\nfunction = \"topics.accept\"\ngroup = \"{GROUP}\"\n"
        ));
        std::fs::write(&config, text).unwrap();
        SporeHome { home }
    }

    /// `spore node run` on this home; stopped when dropped.
    fn run_node(&self) -> SporeNode {
        let log = self.home.path().join("node.log");
        let child = Command::new(env!("CARGO_BIN_EXE_spore"))
            .arg("--home")
            .arg(self.home.path())
            .args([
                "node",
                "run",
                "--no-mdns",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        SporeNode { child, log }
    }
}

struct SporeNode {
    child: Child,
    log: std::path::PathBuf,
}

impl SporeNode {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SporeNode {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
