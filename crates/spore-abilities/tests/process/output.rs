//! What a provider says that it should not: answers to ids it was never sent or has
//! answered already, and control characters or overlong text, as the log and callers
//! see them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ciborium::Value;
use spore_abilities::ProcessProvider;
use spore_abilities::process::ProcessError;
use spore_runtime::ErrorKind;

use crate::common::*;
use crate::provider::*;

/// One event logged anywhere in this test binary, its fields as text.
#[derive(Debug, Clone)]
struct Logged {
    level: tracing::Level,
    fields: BTreeMap<&'static str, String>,
}

impl Logged {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

impl tracing::field::Visit for Logged {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.fields.insert(field.name(), value.to_owned());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.fields.insert(field.name(), format!("{value:?}"));
    }
}

struct Capture(Arc<Mutex<Vec<Logged>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut logged = Logged {
            level: *event.metadata().level(),
            fields: BTreeMap::new(),
        };
        event.record(&mut logged);
        self.0.lock().unwrap().push(logged);
    }
}

/// Everything logged so far. Providers log from threads of their own, so the capture
/// is the global subscriber, shared by all tests: each looks for its own process's pid.
fn logged() -> Vec<Logged> {
    static LOG: OnceLock<Arc<Mutex<Vec<Logged>>>> = OnceLock::new();
    let log = LOG.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let log = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Capture(Arc::clone(&log)));
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        log
    });
    log.lock().unwrap().clone()
}

/// The warnings logged about the provider process `pid` of ability `sensor`.
fn warnings_about(pid: u32) -> Vec<Logged> {
    logged()
        .into_iter()
        .filter(|event| {
            event.level == tracing::Level::WARN
                && event.field("ability") == Some("sensor")
                && event.field("pid") == Some(pid.to_string().as_str())
        })
        .collect()
}

#[test]
fn answers_with_unknown_or_duplicate_ids_are_dropped_with_a_warning() {
    logged();
    let script = script();
    let provider = start(&script, "good");
    let pid = provider.pid().expect("running");

    // `stray` first answers an id nobody asked for; the call still gets its answer.
    let stray_call =
        uint(&call(&provider, "stray", Value::Null, Duration::from_secs(5)).expect("stray"));
    let stray_id = (stray_call + 1_000_000).to_string();
    // `twice` answers its call, then answers it again.
    let twice_call =
        uint(&call(&provider, "twice", Value::Null, Duration::from_secs(5)).expect("twice"));
    let twice_id = twice_call.to_string();

    let warned_of = |id: &str| {
        warnings_about(pid)
            .into_iter()
            .find(|event| event.field("id") == Some(id))
    };
    assert!(
        wait_for(Duration::from_secs(2), || warned_of(&stray_id).is_some()
            && warned_of(&twice_id).is_some()),
        "no warning for id {stray_id} and id {twice_id}: {:?}",
        warnings_about(pid)
    );
    let stray = warned_of(&stray_id).unwrap();
    assert!(
        stray.field("message").unwrap().contains("never asked"),
        "{stray:?}"
    );
    let twice = warned_of(&twice_id).unwrap();
    assert!(
        twice.field("message").unwrap().contains("answered already"),
        "{twice:?}"
    );
    // The process keeps serving.
    assert_eq!(uint(&read(&provider).expect("read")), 42);
}

#[test]
fn what_a_provider_says_arrives_escaped_and_cut() {
    logged();
    let script = script();
    let provider = start(&script, "good");
    let pid = provider.pid().expect("running");

    // In an error answer: a forged log line, a terminal title and a colour change.
    let error = expect_error(
        call(&provider, "shout", Value::Null, Duration::from_secs(5)),
        ErrorKind::Failed,
    );
    assert_eq!(
        error.message,
        r"one\nFORGED line\u{1b}]0;pwned\u{7}\u{1b}[31mred"
    );
    // On its standard error, forwarded to the log.
    let forwarded = r"stderr says \u{1b}]0;pwned\u{7} hi\rFORGED";
    assert!(
        wait_for(Duration::from_secs(2), || warnings_about(pid)
            .iter()
            .any(|event| event.field("message") == Some(forwarded))),
        "{:?}",
        warnings_about(pid)
    );

    // A long message is cut to the limit for foreign text, saying how much was cut.
    let error = expect_error(
        call(&provider, "long", Value::Null, Duration::from_secs(5)),
        ErrorKind::Failed,
    );
    assert!(
        error.message.len() <= spore_core::text::MAX_MESSAGE_BYTES,
        "{} bytes",
        error.message.len()
    );
    assert!(error.message.starts_with("xxxx"), "{}", error.message);
    assert!(error.message.ends_with(" bytes cut)"), "{}", error.message);

    // In its hello.
    match ProcessProvider::start(settings(&script.path, "control-hello")) {
        Err(error @ ProcessError::Mismatch { .. }) => {
            let message = error.to_string();
            assert!(message.contains(r"thermo\nmeter\u{1b}[0m"), "{message}");
            assert!(!message.contains(char::is_control), "{message:?}");
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a mismatched hello was accepted"),
    }
}
