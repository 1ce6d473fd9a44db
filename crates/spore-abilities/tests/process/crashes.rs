//! A provider that crashes or writes garbage: calls in flight fail and it restarts.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_runtime::{ErrorKind, Provider};

use crate::common::*;
use crate::provider::*;

#[test]
fn a_crash_fails_calls_in_flight_and_the_process_restarts() {
    let script = script();
    let provider = start(&script, "good");
    let first_pid = provider.pid().expect("running");

    let in_flight = {
        let provider = Arc::clone(&provider);
        thread::spawn(move || {
            let result = call(&provider, "hang", Value::Null, Duration::from_secs(8));
            (result, Instant::now())
        })
    };
    // Give the hanging call time to reach the provider before it crashes.
    thread::sleep(Duration::from_millis(300));
    let crashed_at = Instant::now();
    let error = expect_error(
        call(&provider, "crash", Value::Null, Duration::from_secs(5)),
        ErrorKind::Unavailable,
    );
    assert!(
        error.message.contains("sensor"),
        "names the ability: {error}"
    );
    assert!(
        error.message.contains("exit status: 3"),
        "says how it ended: {error}"
    );

    let (result, failed_at) = in_flight.join().expect("the in-flight caller panicked");
    expect_error(result, ErrorKind::Unavailable);
    assert!(
        failed_at.duration_since(crashed_at) < Duration::from_secs(1),
        "the call in flight was not failed promptly"
    );
    assert!(
        wait_for(Duration::from_secs(2), || gone(first_pid)),
        "the crashed process was not reaped"
    );

    // While it restarts, calls fail at once or succeed; none waits for its deadline.
    let started = Instant::now();
    let _ = read(&provider);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a call waited on a restarting provider"
    );

    assert!(
        wait_for(Duration::from_secs(5), || read(&provider).is_ok()),
        "the provider did not come back"
    );
    let second_pid = provider.pid().expect("running again");
    assert_ne!(second_pid, first_pid);
    assert_eq!(provider.restarts(), 1);
    assert!(
        provider.describe().contains("1 restart)"),
        "{}",
        provider.describe()
    );
}

#[test]
fn garbage_output_is_treated_as_a_crash() {
    let script = script();
    let provider = start(&script, "good");
    let first_pid = provider.pid().expect("running");
    let error = expect_error(
        call(&provider, "garbage", Value::Null, Duration::from_secs(5)),
        ErrorKind::Unavailable,
    );
    assert!(
        error.message.contains("protocol"),
        "says what went wrong: {error}"
    );
    assert!(
        wait_for(Duration::from_secs(2), || gone(first_pid)),
        "the broken process was not killed"
    );
    assert!(
        wait_for(Duration::from_secs(5), || read(&provider).is_ok()),
        "the provider did not come back"
    );
}
