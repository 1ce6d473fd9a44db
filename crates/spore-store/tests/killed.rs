//! A process killed (SIGKILL) while writing leaves a codebase that opens, verifies
//! clean, and holds every write it acknowledged. The writer is this test binary run
//! again as a child; the parent kills it at a moment of its choosing.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use spore_core::Hash;
use spore_store::Codebase;

const WRITER: &str = "SPORE_TEST_KILLED_WRITER";
const TEST: &str = "a_writer_killed_at_any_moment_loses_no_acknowledged_write";

/// The child: writes `kv` records (acknowledged on stdout once `put` returns) and memo
/// entries, until it is killed.
fn write_until_killed(dir: &str) {
    let codebase = Codebase::open(std::path::Path::new(dir)).unwrap();
    let space = codebase.kv_space("crash").unwrap();
    let start: u64 = std::env::var("SPORE_TEST_FROM").unwrap().parse().unwrap();
    for n in start.. {
        space.put(&format!("k{n}"), &n.to_le_bytes()).unwrap();
        println!("ack {n}");
        codebase
            .memo_put(&Hash::of(&n.to_le_bytes()), &Hash::of(b"m"), b"memo")
            .unwrap();
    }
}

#[test]
fn a_writer_killed_at_any_moment_loses_no_acknowledged_write() {
    if let Ok(dir) = std::env::var(WRITER) {
        write_until_killed(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged = 0u64;
    for round in 0..8u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(WRITER, dir.path())
            .env("SPORE_TEST_FROM", acknowledged.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap());
        // Kill after a varying number of acknowledgements, so that the kill lands at
        // different points of a commit.
        let kill_after = Duration::from_millis(30 + 37 * round);
        let started = Instant::now();
        let mut last = None;
        for line in lines.lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("ack ") {
                last = Some(n.parse::<u64>().unwrap());
            }
            if last.is_some() && started.elapsed() >= kill_after {
                child.kill().unwrap();
                break;
            }
        }
        child.wait().unwrap();
        let last = last.expect("the writer acknowledged writes before it was killed");
        let codebase = Codebase::open(dir.path()).unwrap();
        let space = codebase.kv_space("crash").unwrap();
        for n in 0..=last {
            assert_eq!(
                space.get(&format!("k{n}")).unwrap(),
                Some(n.to_le_bytes().to_vec()),
                "round {round}: acknowledged write k{n} (of 0..={last})"
            );
        }
        let report = codebase.verify().unwrap();
        assert!(report.damaged.is_empty(), "round {round}: {report:?}");
        acknowledged = last + 1;
    }
}
