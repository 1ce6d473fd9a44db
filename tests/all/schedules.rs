//! Schedules (`[[schedules]]`) with a real `spore node run` process: a schedule fires
//! on its interval, and a tick that comes while the previous run goes on is skipped and
//! logged.

use std::time::{Duration, Instant};

use crate::support::{RunningNode, Spore};

#[test]
fn a_schedule_fires_on_time_and_skips_a_tick_while_its_previous_run_goes_on() {
    let spore = Spore::new();
    spore.configure(
        r#"
[[schedules]]
every = "1s"
function = "visits.hit"
args = ["scheduled"]

[[schedules]]
every = "1s"
function = "cpu.sha256"
args = [512]
timeout = "30s"
"#,
    );
    // Published before the node starts, so that the first tick finds them.
    spore.publish("visits", Some("visits"));
    spore.publish("cpu", Some("cpu"));
    let node = RunningNode::launch_logged(spore, &[], &["--listen", "/ip4/127.0.0.1/tcp/0"]);
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(3500));
    let count = node
        .spore
        .invoke("visits.count", &["\"scheduled\"", "--no-memo"]);
    let elapsed = started.elapsed().as_secs();
    let count = count.as_u64().unwrap();
    // Ticks at 1 s, 2 s, 3 s after the start; a loaded machine may have run one fewer
    // by now, and never more than one a second.
    assert!(
        (2..=elapsed).contains(&count),
        "{count} runs in {elapsed} s: {}",
        node.log()
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    while !node.log().contains("skipping a tick of the schedule") {
        assert!(Instant::now() < deadline, "no tick skipped: {}", node.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let skipped = node
        .log()
        .lines()
        .find(|l| l.contains("skipping a tick"))
        .unwrap()
        .to_owned();
    assert!(skipped.contains("cpu.sha256"), "{skipped}");
}
