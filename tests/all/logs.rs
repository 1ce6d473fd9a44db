//! The node's log: guest `log` lines at info by default, with the function and the
//! call; `spore logs` prints the last lines and `-f` follows; no colour off a terminal.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{RunningNode, Spore};

#[test]
fn a_guests_log_lines_reach_spore_logs_with_their_function_and_call() {
    let node = RunningNode::start_with(Spore::new(), &[]);
    let web = node.spore.publish("webfront", Some("web"));
    node.spore
        .invoke("web.echo", &[r#"{"method": "GET", "path": "/first"}"#]);

    let shown = node.spore.run(&["logs", "-n", "1000"]).ok().to_owned();
    let line = shown
        .lines()
        .find(|l| l.contains("echo GET /first"))
        .unwrap_or_else(|| panic!("no guest line in the log:\n{shown}"));
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains(&format!("function={web}:echo")), "{line}");
    assert!(line.contains("invocation="), "{line}");
    assert!(!line.contains('\u{1b}'), "no colour in a file: {line:?}");
    let last = node.spore.run(&["logs", "-n", "1"]).ok().to_owned();
    assert_eq!(last.lines().count(), 1, "{last}");

    // `-f` prints the lines written after it started.
    let mut follower = Command::new(env!("CARGO_BIN_EXE_spore"))
        .arg("--home")
        .arg(node.spore.home())
        .args(["logs", "-f", "-n", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    node.spore
        .invoke("web.echo", &[r#"{"method": "GET", "path": "/second"}"#]);
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    let started = Instant::now();
    let followed = loop {
        let line = lines.next().expect("the follower ended").unwrap();
        if line.contains("echo GET /second") {
            break line;
        }
        assert!(
            !line.contains("echo GET /first"),
            "-n 0 printed an old line: {line}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    };
    assert!(
        followed.contains(&format!("function={web}:echo")),
        "{followed}"
    );
    let _ = follower.kill();
    let _ = follower.wait();
}
