//! Calls to a running provider: answers, errors, concurrency, deadlines and a provider
//! that stops reading.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_abilities::ProcessProvider;
use spore_runtime::{ErrorKind, Provider};

use crate::common::*;
use crate::provider::*;

#[test]
fn round_trip() {
    let script = script();
    let provider = start(&script, "good");
    assert_eq!(uint(&read(&provider).expect("read")), 42);

    let value = Value::Map(vec![
        (text("name"), text("probe")),
        (text("raw"), Value::Bytes(vec![0, 1, 255])),
        (
            text("list"),
            Value::Array(vec![
                Value::Integer((-7).into()),
                Value::Bool(true),
                Value::Null,
            ]),
        ),
    ]);
    let echoed = call(&provider, "echo", value.clone(), Duration::from_secs(5)).expect("echo");
    assert_eq!(echoed, value);

    let error = expect_error(
        call(&provider, "fail", Value::Null, Duration::from_secs(5)),
        ErrorKind::NotFound,
    );
    assert_eq!(error.message, "no such sensor");
    // A kind this node does not know becomes `failed`, keeping the message.
    let error = expect_error(
        call(&provider, "weird", Value::Null, Duration::from_secs(5)),
        ErrorKind::Failed,
    );
    assert_eq!(error.message, "it is on fire");

    let pid = provider.pid().expect("a running process");
    let description = provider.describe();
    assert!(
        description.starts_with(&format!(
            "process `python3 {} good` (pid {pid}, up ",
            script.path.display()
        )),
        "describe: {description}"
    );
    assert!(
        description.ends_with(", 0 restarts)"),
        "describe: {description}"
    );
}

#[test]
fn concurrent_calls_from_many_threads_get_their_own_answers() {
    let script = script();
    let provider = start(&script, "good");
    let workers: Vec<_> = (0..8u64)
        .map(|worker| {
            let provider = Arc::clone(&provider);
            thread::spawn(move || {
                for i in 0..50u64 {
                    let n = worker * 1000 + i;
                    // Varying delays make the provider answer out of order.
                    let request = Value::Map(vec![
                        (text("n"), Value::Integer(n.into())),
                        (text("ms"), Value::Integer(((n * 7) % 5).into())),
                    ]);
                    let answer = call(&provider, "sleep", request, Duration::from_secs(8))
                        .unwrap_or_else(|error| panic!("call {n}: {error}"));
                    assert_eq!(uint(&answer), n, "call {n} got another call's answer");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a worker panicked");
    }
}

#[test]
fn an_unanswered_call_times_out_and_the_provider_keeps_serving() {
    let script = script();
    let provider = start(&script, "good");

    let started = Instant::now();
    expect_error(
        call(&provider, "hang", Value::Null, Duration::from_millis(400)),
        ErrorKind::Timeout,
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(350),
        "gave up early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1500),
        "gave up late: {elapsed:?}"
    );
    assert_eq!(uint(&read(&provider).expect("read after a timeout")), 42);

    // The binding's timeout caps a caller willing to wait longer.
    let mut capped = settings(&script.path, "good");
    capped.timeout = Duration::from_millis(300);
    let provider = ProcessProvider::start(capped).expect("start");
    let started = Instant::now();
    expect_error(
        call(&provider, "hang", Value::Null, Duration::from_secs(10)),
        ErrorKind::Timeout,
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the binding timeout did not apply"
    );
    // A late answer to a timed-out call is dropped, not given to the next caller.
    let late = Value::Map(vec![
        (text("n"), Value::Integer(1.into())),
        (text("ms"), Value::Integer(500.into())),
    ]);
    expect_error(
        call(&provider, "sleep", late, Duration::from_secs(10)),
        ErrorKind::Timeout,
    );
    thread::sleep(Duration::from_millis(300));
    assert_eq!(uint(&read(&provider).expect("read")), 42);
}

#[test]
fn a_process_that_stops_reading_fails_calls_at_once_instead_of_queueing_them() {
    let script = script();
    let provider = start(&script, "deaf");
    // A 64 KiB request fills the pipe; each call then gives up after a millisecond,
    // leaving its request queued behind it.
    let big = Value::Bytes(vec![0; 64 << 10]);
    let refusal = (0..2000)
        .find_map(
            |_| match call(&provider, "echo", big.clone(), Duration::from_millis(1)) {
                Err(error) if error.kind == ErrorKind::Unavailable => Some(error),
                Err(error) => {
                    assert_eq!(error.kind, ErrorKind::Timeout, "{error}");
                    None
                }
                Ok(value) => panic!("a deaf provider answered {value:?}"),
            },
        )
        .expect("the queue of requests is bounded");
    assert!(
        refusal.message.contains("is not reading its requests"),
        "{refusal}"
    );
    // From then on a call fails at once, long before its deadline.
    let started = Instant::now();
    expect_error(
        call(&provider, "echo", big, Duration::from_secs(10)),
        ErrorKind::Unavailable,
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}
