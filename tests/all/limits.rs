//! Every per-call limit stops the call with its own error, and the next call works.

use std::time::{Duration, Instant};

use crate::support::{Spore, exit};

fn faults() -> (Spore, String) {
    let spore = Spore::new();
    let hash = spore.publish("faults", None);
    (spore, hash)
}

#[test]
fn an_infinite_loop_is_stopped_by_the_deadline() {
    let (spore, hash) = faults();
    let started = Instant::now();
    let run = spore.run(&["invoke", &format!("{hash}:spin"), "--timeout", "300ms"]);
    let stderr = run.fails_with(exit::TRAP);
    assert!(
        stderr.contains(":spin ran past its deadline and was stopped"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    spore.still_serves(&hash);
}

#[test]
fn the_default_deadline_is_ten_seconds() {
    let (spore, hash) = faults();
    let started = Instant::now();
    let json = spore.run(&["--json", "invoke", &format!("{hash}:spin")]);
    let elapsed = started.elapsed();
    let error: serde_json::Value = serde_json::from_str(json.fails_with(exit::TRAP)).unwrap();
    assert_eq!(error["error"]["kind"], "timeout", "{error}");
    assert!(
        elapsed >= Duration::from_secs(10) && elapsed < Duration::from_secs(20),
        "the default deadline ended the call after {elapsed:?}"
    );
}

#[test]
fn a_memory_bomb_is_stopped_by_the_cap() {
    let (spore, hash) = faults();
    let stderr = spore
        .run(&["invoke", &format!("{hash}:hog"), "200"])
        .fails_with(exit::TRAP)
        .to_owned();
    assert!(
        stderr.contains("over its limit of 67108864 bytes"),
        "{stderr}"
    );
    // The cap is per call: a larger one lets the same call through, up to the most the
    // node gives any call.
    spore.write_config(&spore_node::config::default_config().replacen(
        "max_memory = \"256MiB\"",
        "max_memory = \"1GiB\"",
        1,
    ));
    assert_eq!(
        spore.invoke(&format!("{hash}:hog"), &["200", "--memory", "512MiB"]),
        200 << 20
    );
    let stderr = spore
        .run(&["invoke", &format!("{hash}:hog"), "8", "--memory", "4MiB"])
        .fails_with(exit::TRAP)
        .to_owned();
    assert!(stderr.contains("limit of 4194304 bytes"), "{stderr}");
    spore.still_serves(&hash);
}

#[test]
fn runaway_recursion_overflows_the_stack_cleanly() {
    let (spore, hash) = faults();
    let stderr = spore
        .run(&["invoke", &format!("{hash}:recurse"), "100000000"])
        .fails_with(exit::TRAP)
        .to_owned();
    assert!(stderr.contains("overflowed its stack"), "{stderr}");
    assert_eq!(spore.invoke(&format!("{hash}:recurse"), &["100"]), 100);
    spore.still_serves(&hash);
}

#[test]
fn a_panic_is_a_trap_that_carries_its_message() {
    let (spore, hash) = faults();
    let stderr = spore
        .run(&[
            "invoke",
            &format!("{hash}:boom"),
            r#""the reactor is on fire""#,
        ])
        .fails_with(exit::TRAP)
        .to_owned();
    assert!(stderr.contains(":boom trapped"), "{stderr}");
    assert!(stderr.contains("the reactor is on fire"), "{stderr}");
    spore.still_serves(&hash);
}

#[test]
fn a_returned_error_is_not_a_trap() {
    let (spore, hash) = faults();
    let stderr = spore
        .run(&["invoke", &format!("{hash}:fail"), r#""nope""#])
        .fails_with(exit::GUEST_ERROR)
        .to_owned();
    assert!(stderr.contains("returned an error: \"nope\""), "{stderr}");
    spore.still_serves(&hash);
}
