//! Helpers shared by the tests: starting the test provider, calling it, and watching
//! its process.

use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_abilities::{ProcessProvider, ProcessSettings};
use spore_core::{FunctionRef, Hash};
use spore_runtime::{AbilityContext, AbilityError, ErrorKind};

use crate::provider::Script;

pub fn settings(script: &Path, mode: &str) -> ProcessSettings {
    ProcessSettings {
        ability: "sensor".into(),
        operations: vec!["read".into(), "echo".into()],
        command: vec!["python3".into(), script.display().to_string(), mode.into()],
        timeout: Duration::from_secs(5),
        ..ProcessSettings::default()
    }
}

pub fn start(script: &Script, mode: &str) -> Arc<ProcessProvider> {
    ProcessProvider::start(settings(&script.path, mode))
        .unwrap_or_else(|error| panic!("start `{mode}`: {error}"))
}

pub fn call(
    provider: &ProcessProvider,
    operation: &str,
    request: Value,
    within: Duration,
) -> Result<Value, AbilityError> {
    provider.call_until(Instant::now() + within, operation, request)
}

/// What the runtime hands a provider: the calling function's context, with its deadline.
pub fn context(within: Duration) -> AbilityContext {
    let function = FunctionRef {
        module: Hash::of(b"caller"),
        export: None,
    };
    AbilityContext::new(function, 1, Instant::now() + within, 0)
}

pub fn read(provider: &ProcessProvider) -> Result<Value, AbilityError> {
    call(provider, "read", Value::Null, Duration::from_secs(5))
}

pub fn uint(value: &Value) -> u64 {
    value
        .as_integer()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or_else(|| panic!("expected an unsigned integer, got {value:?}"))
}

pub fn text(value: &str) -> Value {
    Value::Text(value.into())
}

pub fn expect_error(result: Result<Value, AbilityError>, kind: ErrorKind) -> AbilityError {
    match result {
        Ok(value) => panic!("expected a {kind} error, got {value:?}"),
        Err(error) => {
            assert_eq!(error.kind, kind, "unexpected error: {error}");
            error
        }
    }
}

/// Whether a process with this pid exists and is not a zombie.
pub fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesized command name, which may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Whether the pid is gone entirely: neither running nor left as a zombie.
pub fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// Polls `ready` until it holds, for at most `limit`.
pub fn wait_for(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}
