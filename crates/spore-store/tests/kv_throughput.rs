//! How many acknowledged (fsync'd) `kv` writes a second one home takes, with one writer
//! and with four at once (whose writes share commits). Ignored by default; run with
//! `cargo test --workspace --test kv_throughput -- --ignored --nocapture`. The directory is
//! `SPORE_BENCH_DIR` if set (to measure a particular disk), else a temporary one.

use std::time::{Duration, Instant};

use spore_store::Codebase;

fn run(codebase: &Codebase, threads: usize, for_how_long: Duration) -> (f64, Vec<Duration>) {
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let space = codebase.kv_space("bench").unwrap();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let value = [7u8; 100];
                let mut n = 0u64;
                while started.elapsed() < for_how_long {
                    let put = Instant::now();
                    space.put(&format!("t{t}-{n}"), &value).unwrap();
                    latencies.push(put.elapsed());
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    (rate, all)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

#[test]
#[ignore = "a measurement: run it on purpose"]
fn acknowledged_kv_writes_per_second_with_one_and_four_writers() {
    let base = std::env::var_os("SPORE_BENCH_DIR").map(std::path::PathBuf::from);
    let dir = match &base {
        Some(base) => tempfile::tempdir_in(base).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let codebase = Codebase::open(dir.path()).unwrap();
    for threads in [1, 4] {
        let (rate, latencies) = run(&codebase, threads, Duration::from_secs(5));
        eprintln!(
            "kv put, {threads} writer(s): {rate:.0} acknowledged writes/s; latency p50 {:?}, p99 {:?}, max {:?} ({} writes)",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.last().unwrap(),
            latencies.len()
        );
    }
}
