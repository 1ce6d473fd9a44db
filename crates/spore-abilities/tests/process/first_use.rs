//! Providers started on first use: a hello that never comes or comes late.

use std::thread;
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_abilities::ProcessProvider;
use spore_runtime::{ErrorKind, Provider};

use crate::common::*;
use crate::provider::*;

#[test]
fn a_process_that_never_says_hello_times_out_at_the_callers_deadline() {
    let script = script();
    let provider = ProcessProvider::on_first_use(settings(&script.path, "silent"));
    let started = Instant::now();
    let error = expect_error(
        provider.call(&context(Duration::from_secs(1)), "read", Value::Null),
        ErrorKind::Timeout,
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(950),
        "gave up early: {took:?}"
    );
    assert!(took < Duration::from_millis(1600), "gave up late: {took:?}");
    assert!(
        error
            .message
            .contains(&format!("python3 {} silent", script.path.display())),
        "names the process: {error}"
    );
    assert!(error.message.contains("`sensor`"), "{error}");
    assert!(error.message.contains("hello"), "{error}");
    // It goes on starting for later calls.
    assert!(
        provider.describe().ends_with("(starting)"),
        "{}",
        provider.describe()
    );
    // And a shutdown does not wait for its hello either.
    let started = Instant::now();
    provider.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_process_started_on_first_use_goes_on_starting_after_a_caller_gives_up() {
    let script = script();
    let provider = ProcessProvider::on_first_use(settings(&script.path, "slow"));
    assert_eq!(provider.pid(), None, "nothing runs before the first call");
    assert!(
        provider.describe().ends_with("(started on first use)"),
        "{}",
        provider.describe()
    );
    thread::sleep(Duration::from_millis(200));
    assert_eq!(provider.pid(), None);

    // Its hello comes after 1.5 s: a caller with half a second gives up...
    expect_error(
        provider.call(&context(Duration::from_millis(500)), "read", Value::Null),
        ErrorKind::Timeout,
    );
    // ...and one that can wait gets its answer from that same start: no restart.
    let answer = provider
        .call(&context(Duration::from_secs(5)), "read", Value::Null)
        .expect("read once started");
    assert_eq!(uint(&answer), 42);
    assert!(provider.pid().is_some());
    assert_eq!(provider.restarts(), 0);

    // A start that fails is reported to the caller at once and retried like a crash.
    let provider = ProcessProvider::on_first_use(settings(&script.path, "die-early"));
    let error = expect_error(
        provider.call(&context(Duration::from_secs(5)), "read", Value::Null),
        ErrorKind::Unavailable,
    );
    assert!(
        error.message.contains("boom: no sensor attached"),
        "{error}"
    );
}
