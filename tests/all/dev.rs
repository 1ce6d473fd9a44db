//! `spore dev`: a real dev process on a crate from `spore new`, edited while it runs,
//! with a node running on the home that must serve each new version at once.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::new::new_crate;
use crate::support::RunningNode;

/// A build, a native test build and a publish, on a loaded machine.
const ROUND: Duration = Duration::from_secs(300);

/// The `spore dev` process; killed when dropped, so a failing test leaves none behind.
struct Dev {
    child: Child,
    hashes: mpsc::Receiver<String>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dev {
    /// Waits for the next module hash the process prints on stdout.
    fn next_hash(&self, log: &Path) -> String {
        self.hashes.recv_timeout(ROUND).unwrap_or_else(|_| {
            panic!(
                "spore dev printed no hash in {ROUND:?}; its stderr:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        })
    }
}

fn is_hash(line: &str) -> bool {
    line.len() == 64 && line.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Waits until `log` contains `text`.
fn wait_for_log(log: &Path, text: &str) {
    let started = Instant::now();
    loop {
        let logged = std::fs::read_to_string(log).unwrap_or_default();
        if logged.contains(text) {
            return;
        }
        assert!(
            started.elapsed() < ROUND,
            "no {text:?} in spore dev's stderr:\n{logged}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{from:?} is not in {}", file.display());
    std::fs::write(file, text.replace(from, to)).unwrap();
}

#[test]
fn spore_dev_republishes_on_each_save_and_the_running_node_serves_it_at_once() {
    let node = RunningNode::start(&[]);
    let spore = &node.spore;
    let parent = tempfile::tempdir().unwrap();
    let dir = new_crate(spore, parent.path(), "greeter");
    let log = parent.path().join("dev.log");

    let mut child = spore
        .command()
        .arg("dev")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let (sender, hashes) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if is_hash(line.trim()) && sender.send(line.trim().to_owned()).is_err() {
                return;
            }
        }
    });
    let dev = Dev { child, hashes };

    let first = dev.next_hash(&log);
    assert_eq!(
        spore.invoke("greeter.greet", &[r#""ada""#]),
        serde_json::json!("Hello, ada!")
    );

    // A change its own native test rejects: reported, and the name stays.
    let lib = dir.join("src/lib.rs");
    edit(
        &lib,
        "format!(\"Hello, {who}!\")",
        "format!(\"Howdy, {who}!\")",
    );
    wait_for_log(&log, "native tests of");
    assert_eq!(
        spore.invoke("greeter.greet", &[r#""ada""#]),
        serde_json::json!("Hello, ada!")
    );

    // The test brought along: published, and the name moved to the new hash.
    edit(&lib, "\"Hello, spore!\"", "\"Howdy, spore!\"");
    let second = loop {
        let hash = dev.next_hash(&log);
        if hash != first {
            break hash;
        }
    };
    assert_eq!(
        spore.invoke("greeter.greet", &[r#""ada""#]),
        serde_json::json!("Howdy, ada!")
    );
    let info = spore.run(&["--json", "inspect", "greeter.greet"]).json();
    assert_eq!(info["manifest"]["module"], second.as_str());
    drop(dev);
}
