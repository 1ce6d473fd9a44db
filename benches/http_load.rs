//! HTTP routes under load (issue 11, item 7; figures in docs/performance.md), measured
//! with standard load generators against real servers, side by side in one run:
//!
//! - `axum`: the same logic as `webfront.hello` in a native axum handler, on a
//!   multi-threaded tokio runtime like the node's;
//! - `spore route`: `GET /hello/{name}` routed by a real `spore node run --http` to
//!   `webfront.hello`, a pure function, so after the first request the node answers
//!   from its memo (in memory, without leaving the task that took the request);
//! - `route, runs`: the same route on a node with the memo off (`[memo] enabled =
//!   false`): a fresh instance of the compiled module runs for every request, on a
//!   blocking thread;
//! - `gateway alone`: a path no route takes, so the node answers 404 without calling
//!   anything: the listener, the router and the response, the route's overhead.
//!
//! Saturation: `wrk -t2 -c32 -d8s --latency`, the targets alternated over 3 rounds (the
//! median kept). Then `hey` holds the spore route (and axum) at half of the spore
//! route's saturating rate for 8 s and reports p50 and p99. Both come from Debian's
//! packages (`apt-get install wrk hey`); the bench says so and stops when one is missing.
//! The load generator shares the machine's cores with the server: compare ratios.
//!
//!     cargo bench --bench http_load

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;
const SECONDS: u32 = 8;

fn main() {
    for tool in ["wrk", "hey"] {
        if Command::new(tool).output().is_err() {
            eprintln!("http_load: `{tool}` is not installed (apt-get install wrk hey); skipping");
            return;
        }
    }
    let axum = native_server();
    let node = SporeNode::start(true);
    let running = SporeNode::start(false);
    let targets = [
        ("axum", format!("http://{axum}/hello/ada")),
        ("spore route", format!("http://{}/hello/ada", node.http)),
        ("route, runs", format!("http://{}/hello/ada", running.http)),
        ("gateway alone", format!("http://{}/nowhere", node.http)),
    ];
    // Warm up: the module compiled and cached, connections and allocators in use.
    for (_, url) in &targets {
        wrk(url, 2);
    }
    let mut runs: Vec<Vec<Wrk>> = vec![Vec::new(); targets.len()];
    for round in 0..ROUNDS {
        for i in 0..targets.len() {
            // Rotate the order each round, so no target always runs first.
            let i = (i + round) % targets.len();
            runs[i].push(wrk(&targets[i].1, SECONDS));
        }
    }
    println!("\nsaturation: wrk -t2 -c32 -d{SECONDS}s, median of {ROUNDS} rounds");
    println!(
        "{:<14} {:>10} {:>10} {:>10}",
        "target", "req/s", "p50 ms", "p99 ms"
    );
    let mut medians = Vec::new();
    for ((name, _), runs) in targets.iter().zip(&runs) {
        let median = median_by_rate(runs);
        println!(
            "{name:<14} {:>10.0} {:>10.2} {:>10.2}",
            median.rate, median.p50_ms, median.p99_ms
        );
        medians.push(median);
    }
    println!(
        "spore route / axum: {:.2} of the requests per second; route, runs / axum: {:.2}",
        medians[1].rate / medians[0].rate,
        medians[2].rate / medians[0].rate
    );

    let half = medians[1].rate / 2.0;
    println!("\nat half the spore route's saturating rate ({half:.0} req/s): hey -z {SECONDS}s");
    println!(
        "{:<14} {:>10} {:>10} {:>10}",
        "target", "req/s", "p50 ms", "p99 ms"
    );
    for (name, url) in &targets[..3] {
        let held = hey(url, half, SECONDS);
        println!(
            "{name:<14} {:>10.0} {:>10.2} {:>10.2}",
            held.rate, held.p50_ms, held.p99_ms
        );
    }
}

#[derive(Clone, Debug)]
struct Wrk {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn median_by_rate(runs: &[Wrk]) -> Wrk {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    sorted[sorted.len() / 2].clone()
}

fn wrk(url: &str, seconds: u32) -> Wrk {
    let output = Command::new("wrk")
        .args(["-t2", "-c32", &format!("-d{seconds}s"), "--latency", url])
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| -> Option<&str> {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(prefix))
            .map(str::trim)
    };
    Wrk {
        rate: field("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no rate in wrk's output:\n{text}")),
        p50_ms: field("50%").map(millis).unwrap_or(f64::NAN),
        p99_ms: field("99%").map(millis).unwrap_or(f64::NAN),
    }
}

/// wrk's `1.23ms`, `456.00us`, `1.02s` in milliseconds.
fn millis(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        _ => f64::NAN,
    }
}

/// `hey` holding `rate` requests per second over 16 workers for `seconds`.
fn hey(url: &str, rate: f64, seconds: u32) -> Wrk {
    const WORKERS: u32 = 16;
    let per_worker = (rate / f64::from(WORKERS)).max(1.0);
    let output = Command::new("hey")
        .args([
            "-z",
            &format!("{seconds}s"),
            "-c",
            &WORKERS.to_string(),
            "-q",
            &format!("{per_worker:.0}"),
            url,
        ])
        .output()
        .expect("run hey");
    let text = String::from_utf8_lossy(&output.stdout);
    let seconds_field = |prefix: &str| -> f64 {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    Wrk {
        rate: seconds_field("Requests/sec:"),
        p50_ms: seconds_field("50% in") * 1000.0,
        p99_ms: seconds_field("99% in") * 1000.0,
    }
}

/// The native baseline: `GET /hello/{name}` answered "hello, NAME", as webfront.hello.
fn native_server() -> std::net::SocketAddr {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/hello/{name}",
                axum::routing::get(
                    |axum::extract::Path(name): axum::extract::Path<String>| async move {
                        format!("hello, {name}")
                    },
                ),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    addr_rx.recv().unwrap()
}

/// A `spore node run --http` on a fresh home serving `GET /hello/{name}` with
/// `webfront.hello`, its memo on or off; stopped when dropped.
struct SporeNode {
    child: Child,
    http: String,
    _home: tempfile::TempDir,
}

impl SporeNode {
    fn start(memo: bool) -> SporeNode {
        let home = tempfile::tempdir().unwrap();
        let spore = env!("CARGO_BIN_EXE_spore");
        let run = |args: &[&str]| {
            let status = Command::new(spore)
                .arg("--home")
                .arg(home.path())
                .args(args)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "spore {args:?} failed");
        };
        run(&["abilities"]);
        let module = spore_test_programs::path("webfront").expect("webfront is built");
        run(&["publish", module, "--name", "web"]);
        let config = home.path().join("config.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        if !memo {
            let on = text
                .find("[memo]\nenabled = true")
                .expect("the template's memo table");
            text.replace_range(
                on..on + "[memo]\nenabled = true".len(),
                "[memo]\nenabled = false",
            );
        }
        text.push_str(
            "\n[[routes]]\nmethod = \"GET\"\npath = \"/hello/{name}\"\nfunction = \"web.hello\"\n",
        );
        std::fs::write(&config, text).unwrap();
        let child = Command::new(spore)
            .arg("--home")
            .arg(home.path())
            .args([
                "node",
                "run",
                "--no-mdns",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--http",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let node_file = home.path().join("node.json");
        let started = Instant::now();
        let http = loop {
            let file: Option<serde_json::Value> = std::fs::read_to_string(&node_file)
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok());
            if let Some(http) = file.and_then(|f| f["http"].as_str().map(str::to_owned)) {
                break http;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the node did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        SporeNode {
            child,
            http,
            _home: home,
        }
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
