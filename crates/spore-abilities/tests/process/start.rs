//! Starting a provider: hellos that do not match, processes that die or cannot be
//! spawned, and a first start that fails and is retried.

use std::time::{Duration, Instant};

use spore_abilities::process::ProcessError;
use spore_abilities::{ProcessProvider, ProcessSettings};
use spore_runtime::ErrorKind;

use crate::common::*;
use crate::provider::*;

#[test]
fn a_mismatched_hello_is_a_start_error() {
    let script = script();
    let cases = [
        ("wrong-ability", "thermometer"),
        ("missing-op", "`echo`"),
        ("wrong-protocol", "protocol 2"),
    ];
    for (mode, named) in cases {
        match ProcessProvider::start(settings(&script.path, mode)) {
            Err(error @ ProcessError::Mismatch { .. }) => {
                let message = error.to_string();
                assert!(
                    message.contains(named),
                    "`{mode}`: {message} does not name {named}"
                );
                assert!(message.contains("sensor"), "`{mode}`: {message}");
            }
            Err(other) => panic!("`{mode}`: unexpected error {other}"),
            Ok(_) => panic!("`{mode}` was accepted"),
        }
    }
}

#[test]
fn a_process_that_dies_or_babbles_before_its_hello_is_a_start_error() {
    let script = script();
    match ProcessProvider::start(settings(&script.path, "die-early")) {
        Err(error @ ProcessError::ExitedBeforeHello { .. }) => {
            let message = error.to_string();
            assert!(message.contains("exit status: 1"), "{message}");
            assert!(
                message.contains("boom: no sensor attached"),
                "quotes its stderr: {message}"
            );
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a process without a hello was accepted"),
    }
    match ProcessProvider::start(settings(&script.path, "garbage-hello")) {
        Err(ProcessError::Protocol { .. }) => {}
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a garbage hello was accepted"),
    }
}

#[test]
fn a_program_that_cannot_be_spawned_is_a_typed_error() {
    let missing = ProcessSettings {
        ability: "sensor".into(),
        command: vec!["/nonexistent/sensor-provider".into(), "--fast".into()],
        ..ProcessSettings::default()
    };
    match ProcessProvider::start(missing) {
        Err(error @ ProcessError::Spawn { .. }) => {
            assert!(
                error
                    .to_string()
                    .contains("/nonexistent/sensor-provider --fast"),
                "{error}"
            );
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a missing program was started"),
    }
    let empty = ProcessSettings {
        ability: "sensor".into(),
        ..ProcessSettings::default()
    };
    assert!(matches!(
        ProcessProvider::start(empty),
        Err(ProcessError::EmptyCommand { .. })
    ));
}

#[test]
fn a_failed_first_start_is_reported_and_retried() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("late.py");
    let (provider, error) = ProcessProvider::start_or_retry(settings(&path, "good"));
    let error = error.expect("the first start fails: the script does not exist yet");
    assert!(
        matches!(error, ProcessError::ExitedBeforeHello { .. }),
        "{error}"
    );

    let started = Instant::now();
    expect_error(read(&provider), ErrorKind::Unavailable);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "a call waited on a down provider"
    );

    std::fs::write(&path, PROVIDER).expect("write the provider script");
    assert!(
        wait_for(Duration::from_secs(6), || read(&provider).is_ok()),
        "the supervisor did not retry"
    );
}
