//! Ending a provider: shutdown, drop, and a process that ignores its shutdown.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_runtime::ErrorKind;

use crate::common::*;
use crate::provider::*;

#[test]
fn shutdown_leaves_no_process_and_fails_later_calls() {
    let script = script();
    let provider = start(&script, "good");
    let pid = provider.pid().expect("running");
    assert!(running(pid));

    let in_flight = {
        let provider = Arc::clone(&provider);
        thread::spawn(move || call(&provider, "hang", Value::Null, Duration::from_secs(8)))
    };
    thread::sleep(Duration::from_millis(200));
    provider.shutdown();
    assert!(gone(pid), "process {pid} is still there after shutdown");
    expect_error(
        in_flight.join().expect("caller panicked"),
        ErrorKind::Unavailable,
    );
    let error = expect_error(read(&provider), ErrorKind::Unavailable);
    assert!(error.message.contains("shut down"), "{error}");
    // Idempotent.
    provider.shutdown();
}

#[test]
fn dropping_the_provider_ends_the_process() {
    let script = script();
    let provider = start(&script, "good");
    let pid = provider.pid().expect("running");
    drop(provider);
    assert!(gone(pid), "process {pid} is still there after drop");
}

#[test]
fn a_process_that_ignores_shutdown_is_killed() {
    let script = script();
    let provider = start(&script, "stubborn");
    let pid = provider.pid().expect("running");
    let started = Instant::now();
    provider.shutdown();
    let took = started.elapsed();
    assert!(gone(pid), "process {pid} is still there after shutdown");
    assert!(
        took >= Duration::from_millis(1500),
        "it was not given a grace period: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}
