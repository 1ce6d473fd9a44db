//! The small built-in providers: `log`, `clock`, `random` and `config`.

use std::collections::BTreeMap;

use ciborium::Value;
use spore_core::text::{MAX_MESSAGE_BYTES, printable};
use spore_runtime::{
    AbilityContext, AbilityError, LOG_BYTES_PER_CALL, LogAllowance, Provider, text_field,
};

/// `log`: writes through the node's tracing subscriber. A guest's message is its own
/// text, so it is escaped and cut (`spore_core::text::printable`) before it reaches a
/// log line or a terminal.
pub struct LogProvider;

impl Provider for LogProvider {
    fn call(
        &self,
        cx: &AbilityContext,
        operation: &str,
        request: Value,
    ) -> Result<Value, AbilityError> {
        let message = request
            .as_text()
            .ok_or_else(|| AbilityError::bad_request("a log message is a text string"))?;
        let message = printable(message, MAX_MESSAGE_BYTES);
        let function = cx.function.to_string();
        let invocation = cx.invocation;
        // A call's lines are capped in all (`LOG_BYTES_PER_CALL`); the call goes on, and the
        // log says once that the rest was dropped.
        match cx.log_allowance(message.len()) {
            LogAllowance::Write => {}
            LogAllowance::Drop => return Ok(Value::Null),
            LogAllowance::Exhausted => {
                tracing::warn!(
                    target: "spore::guest",
                    %function,
                    invocation,
                    "this call wrote {LOG_BYTES_PER_CALL} bytes of log; its further lines are dropped"
                );
                return Ok(Value::Null);
            }
        }
        match operation {
            "debug" => tracing::debug!(target: "spore::guest", %function, invocation, "{message}"),
            "info" => tracing::info!(target: "spore::guest", %function, invocation, "{message}"),
            "warn" => tracing::warn!(target: "spore::guest", %function, invocation, "{message}"),
            _ => tracing::error!(target: "spore::guest", %function, invocation, "{message}"),
        }
        Ok(Value::Null)
    }

    fn describe(&self) -> String {
        "node log (tracing, target spore::guest)".into()
    }
}

/// `clock`: wall-clock time.
pub struct ClockProvider;

impl Provider for ClockProvider {
    fn call(
        &self,
        _cx: &AbilityContext,
        _operation: &str,
        _request: Value,
    ) -> Result<Value, AbilityError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Ok(Value::Integer(now.into()))
    }

    fn describe(&self) -> String {
        "system wall clock (milliseconds since the Unix epoch)".into()
    }
}

/// `random`: bytes from the operating system's generator.
pub struct RandomProvider;

/// Bigger requests are almost certainly mistakes; a guest can loop if it needs more.
const MAX_RANDOM_BYTES: u64 = 65536;

impl Provider for RandomProvider {
    fn call(
        &self,
        _cx: &AbilityContext,
        _operation: &str,
        request: Value,
    ) -> Result<Value, AbilityError> {
        let n = request
            .as_integer()
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| *n <= MAX_RANDOM_BYTES)
            .ok_or_else(|| {
                AbilityError::bad_request(format!(
                    "random.bytes takes a count from 0 to {MAX_RANDOM_BYTES}"
                ))
            })?;
        let mut bytes = vec![0u8; n as usize];
        getrandom::fill(&mut bytes).map_err(|e| {
            AbilityError::new(
                spore_runtime::ErrorKind::Failed,
                format!("the OS generator failed: {e}"),
            )
        })?;
        Ok(Value::Bytes(bytes))
    }

    fn describe(&self) -> String {
        "operating system random generator".into()
    }
}

/// `config`: values from the node's configuration.
pub struct ConfigProvider {
    values: BTreeMap<String, Value>,
}

impl ConfigProvider {
    pub fn new(values: BTreeMap<String, Value>) -> ConfigProvider {
        ConfigProvider { values }
    }
}

impl Provider for ConfigProvider {
    fn call(
        &self,
        _cx: &AbilityContext,
        _operation: &str,
        request: Value,
    ) -> Result<Value, AbilityError> {
        let key = text_field(&request, "key")?;
        Ok(self.values.get(key).cloned().unwrap_or(Value::Null))
    }

    fn describe(&self) -> String {
        let keys: Vec<&str> = self.values.keys().map(String::as_str).collect();
        format!("node configuration values [{}]", keys.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use spore_core::{FunctionRef, Hash};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// The messages of the events logged on this thread.
    struct Messages(Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Messages {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Message<'a>(&'a mut Vec<String>);
            impl tracing::field::Visit for Message<'_> {
                fn record_debug(
                    &mut self,
                    field: &tracing::field::Field,
                    value: &dyn std::fmt::Debug,
                ) {
                    if field.name() == "message" {
                        self.0.push(format!("{value:?}"));
                    }
                }
            }
            event.record(&mut Message(&mut self.0.lock().unwrap()));
        }
    }

    #[test]
    fn a_guest_cannot_forge_log_lines_or_flood_one() {
        let messages = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Messages(Arc::clone(&messages)));
        let cx = guest_call();
        tracing::subscriber::with_default(subscriber, || {
            let forged = "done\nINFO spore: all is well\x1b]0;owned\x07";
            LogProvider
                .call(&cx, "info", Value::Text(forged.into()))
                .unwrap();
            LogProvider
                .call(&cx, "warn", Value::Text("y".repeat(100_000)))
                .unwrap();
        });
        let messages = messages.lock().unwrap();
        assert_eq!(
            messages[0],
            r"done\nINFO spore: all is well\u{1b}]0;owned\u{7}"
        );
        assert!(
            messages[1].len() <= MAX_MESSAGE_BYTES,
            "{}",
            messages[1].len()
        );
        assert!(messages[1].ends_with(" bytes cut)"), "{}", messages[1]);
    }

    /// The context of one call of a guest function.
    fn guest_call() -> AbilityContext {
        AbilityContext::new(
            FunctionRef {
                module: Hash::of(b"guest"),
                export: None,
            },
            1,
            Instant::now() + Duration::from_secs(1),
            0,
        )
    }

    /// One call once wrote 24 MB and 20,000 lines into the node's log.
    #[test]
    fn one_call_logs_at_most_its_budget_and_the_log_says_so_once() {
        let messages = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Messages(Arc::clone(&messages)));
        let cx = guest_call();
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..10_000 {
                LogProvider
                    .call(&cx, "info", Value::Text("x".repeat(1000)))
                    .unwrap();
            }
        });
        let messages = messages.lock().unwrap();
        let written: usize = messages.iter().map(String::len).sum();
        assert!(
            written <= LOG_BYTES_PER_CALL + 200,
            "{written} bytes in {} lines",
            messages.len()
        );
        let notices = messages.iter().filter(|m| m.contains("dropped")).count();
        assert_eq!(notices, 1, "{:?}", messages.last());
        // Another call has a budget of its own.
        let other = AbilityContext::new(cx.function.clone(), 2, cx.deadline, 0);
        assert_eq!(other.log_allowance(1000), LogAllowance::Write);
    }

    /// The calls one peer forwarded share a budget besides their own (a node's
    /// `per_peer_log_bytes`): many small calls cannot fill the log either.
    #[test]
    fn calls_sharing_a_budget_log_at_most_it_together() {
        let shared = Arc::new(spore_runtime::LogBudget::new(1500));
        let call = |invocation| {
            let mut cx =
                AbilityContext::new(guest_call().function, invocation, guest_call().deadline, 0);
            cx.log_budget = Some(shared.clone());
            cx
        };
        let (first, second) = (call(1), call(2));
        assert_eq!(first.log_allowance(1000), LogAllowance::Write);
        // The second call's own budget is whole, the shared one is not.
        assert_eq!(second.log_allowance(1000), LogAllowance::Exhausted);
        assert_eq!(second.log_allowance(10), LogAllowance::Drop);
        assert_eq!(call(3).log_allowance(10), LogAllowance::Drop);
        shared.refill(1500);
        assert_eq!(call(4).log_allowance(1000), LogAllowance::Write);
    }
}
