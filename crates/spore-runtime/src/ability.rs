//! The host side of abilities (`spec/abilities.md`): what a provider is, what it is
//! told about the call it serves, and how a node's bindings are looked up.
//!
//! The runtime dispatches imports to providers; it does not know any provider itself.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_core::{CallRequest, Cancel, ErrorKind, FunctionRef, Path, TraceId};

use crate::CallEnv;

/// Performs the operations of one ability for the functions of a node.
///
/// Providers are called from the thread running the guest, which waits: a provider
/// must never wait past `cx.deadline`, and must be safe to call from many threads.
pub trait Provider: Send + Sync + 'static {
    /// Performs `operation` (already checked to be one of the ability's) on `request`.
    fn call(
        &self,
        cx: &AbilityContext,
        operation: &str,
        request: Value,
    ) -> Result<Value, AbilityError>;

    /// One line for `spore abilities`: what this provider is and its main settings.
    fn describe(&self) -> String;

    /// How many times this provider's process has been restarted since it started (for
    /// `/metrics`); providers without a process have none.
    fn restarts(&self) -> u64 {
        0
    }
}

/// What a provider knows about the call it serves. One per call, shared by the call's
/// ability operations (the runtime keeps it in an `Arc`).
#[derive(Debug)]
pub struct AbilityContext {
    /// The function whose import is being served.
    pub function: FunctionRef,
    /// Unique within this process; ties log lines of one call together.
    pub invocation: u64,
    /// When the calling function's deadline passes. Providers give up by then.
    pub deadline: Instant,
    /// How many `call`s deep this invocation is (0 for a call from outside).
    pub depth: u32,
    /// The trace id of the call this invocation belongs to.
    pub trace: TraceId,
    /// Set when whoever waits for the call is gone; calls made on its behalf stop too.
    pub cancel: Cancel,
    /// The bindings the call runs with: a call it makes through `call` runs with these
    /// too, never with more (a call forwarded by a peer may use only some of the node's).
    /// `None` outside a Wasm call.
    pub bindings: Option<Arc<Bindings>>,
    /// Set when the call did something whose result is not a function of its inputs.
    effects: AtomicBool,
    /// The paths of calls made through `call`, for the caller's path.
    nested: Mutex<Path>,
    /// Bytes the call may still write to the node's log.
    log_left: AtomicUsize,
    /// Bytes the calls of whoever this call runs for (a peer) may still write, shared by
    /// all of them: see [`LogBudget`].
    pub log_budget: Option<Arc<LogBudget>>,
}

/// Bytes of log lines a group of calls may still write (the calls one peer forwarded,
/// over a minute: the node refills it), on top of each call's own
/// [`LOG_BYTES_PER_CALL`].
#[derive(Debug)]
pub struct LogBudget(AtomicUsize);

impl LogBudget {
    pub fn new(bytes: usize) -> LogBudget {
        LogBudget(AtomicUsize::new(bytes))
    }

    /// Sets what is left to `bytes`.
    pub fn refill(&self, bytes: usize) {
        self.0.store(bytes, Ordering::Relaxed);
    }
}

/// Takes `bytes` from `left`: all of them, or (the first time it runs short) what is
/// left, saying which.
fn take(left: &AtomicUsize, bytes: usize) -> LogAllowance {
    let taken = left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
        left.checked_sub(bytes)
            .or(if left > 0 { Some(0) } else { None })
    });
    match taken {
        Ok(left) if left >= bytes => LogAllowance::Write,
        Ok(_) => LogAllowance::Exhausted,
        Err(_) => LogAllowance::Drop,
    }
}

/// How much one call may write to the node's log through `log`: enough for any
/// diagnostic, and a guest in a loop cannot fill the disk or drown other calls' lines.
pub const LOG_BYTES_PER_CALL: usize = 64 << 10;

/// What a provider may do with a log line of some size ([`AbilityContext::log_allowance`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogAllowance {
    /// Write it.
    Write,
    /// This line is the first over the call's budget: say once that the rest is dropped.
    Exhausted,
    /// Drop it silently; the budget was reported exhausted already.
    Drop,
}

impl AbilityContext {
    /// A context for serving `function`'s call outside a Wasm call: for providers' own
    /// tests and for hosts that call providers directly.
    pub fn new(
        function: FunctionRef,
        invocation: u64,
        deadline: Instant,
        depth: u32,
    ) -> AbilityContext {
        AbilityContext {
            function,
            invocation,
            deadline,
            depth,
            trace: TraceId::default(),
            cancel: Cancel::never(),
            bindings: None,
            effects: AtomicBool::new(false),
            nested: Mutex::default(),
            log_left: AtomicUsize::new(LOG_BYTES_PER_CALL),
            log_budget: None,
        }
    }

    /// The context of one invocation of `function` for `request` in `env`.
    pub(crate) fn for_call(
        function: FunctionRef,
        invocation: u64,
        request: &CallRequest,
        env: &CallEnv,
    ) -> AbilityContext {
        AbilityContext {
            trace: request.trace,
            cancel: env.cancel.clone(),
            bindings: Some(env.bindings.clone()),
            log_budget: env.log_budget.clone(),
            ..AbilityContext::new(function, invocation, request.deadline, env.depth)
        }
    }

    /// Whether anything marked this call effectful so far.
    pub fn is_effectful(&self) -> bool {
        self.effects.load(Ordering::Relaxed)
    }

    /// The time left before the deadline (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Records that this call's result depends on more than its arguments, so it must
    /// not be memoized. The runtime does this for every ability but `call`; the `call`
    /// provider does it when the called function was itself effectful.
    pub fn mark_effectful(&self) {
        self.effects.store(true, Ordering::Relaxed);
    }

    /// Adds the path of a call made on this call's behalf to its own.
    pub fn record_nested(&self, path: Path) {
        self.nested
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(path);
    }

    pub(crate) fn take_nested(&self) -> Path {
        std::mem::take(&mut *self.nested.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Takes `bytes` of the call's log budget ([`LOG_BYTES_PER_CALL`]).
    pub fn log_allowance(&self, bytes: usize) -> LogAllowance {
        let own = take(&self.log_left, bytes);
        let shared = match &self.log_budget {
            Some(budget) if own == LogAllowance::Write => take(&budget.0, bytes),
            _ => LogAllowance::Write,
        };
        match (own, shared) {
            (LogAllowance::Write, LogAllowance::Write) => LogAllowance::Write,
            (LogAllowance::Drop, _) | (_, LogAllowance::Drop) => LogAllowance::Drop,
            _ => LogAllowance::Exhausted,
        }
    }
}

/// A failed ability operation, as the guest receives it (`spec/abilities.md`): a kind
/// of the one taxonomy (`spec/errors.md`), a message, and for `call` the called
/// function's error value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct AbilityError {
    pub kind: ErrorKind,
    pub message: String,
    /// The error value a called function returned (`call`).
    pub value: Option<Value>,
}

impl AbilityError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> AbilityError {
        AbilityError {
            kind,
            message: message.into(),
            value: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> AbilityError {
        AbilityError::new(ErrorKind::BadRequest, message)
    }

    /// The CBOR map the guest receives.
    pub fn to_value(&self) -> Value {
        let mut entries = vec![
            (
                Value::Text("kind".into()),
                Value::Text(self.kind.as_str().into()),
            ),
            (
                Value::Text("message".into()),
                Value::Text(self.message.clone()),
            ),
        ];
        if let Some(value) = &self.value {
            entries.push((Value::Text("value".into()), value.clone()));
        }
        Value::Map(entries)
    }
}

/// What serves an ability that is not bound, for a function whose code cannot reach it:
/// it is never called, and would refuse if it were.
pub(crate) struct Unbound;

impl Provider for Unbound {
    fn call(&self, cx: &AbilityContext, _: &str, _: Value) -> Result<Value, AbilityError> {
        Err(AbilityError::new(
            ErrorKind::Unbound,
            format!("{} reached an ability that is not bound here", cx.function),
        ))
    }

    fn describe(&self) -> String {
        "not bound".into()
    }
}

/// Which provider serves each ability on a node (or for one handler's functions).
#[derive(Clone, Default)]
pub struct Bindings {
    providers: BTreeMap<String, Arc<dyn Provider>>,
    /// Where these bindings come from, for errors ("/home/x/config.toml").
    origin: String,
    /// Made by [`Bindings::only`]: what calls made on someone else's behalf may use.
    on_behalf: bool,
}

impl Bindings {
    pub fn new(origin: impl Into<String>) -> Bindings {
        Bindings {
            providers: BTreeMap::new(),
            origin: origin.into(),
            on_behalf: false,
        }
    }

    /// Whether these are bindings kept for calls made on someone else's behalf (a peer
    /// of the mesh): made by [`Bindings::only`], and inherited by the calls those make.
    pub fn on_behalf(&self) -> bool {
        self.on_behalf
    }

    pub fn bind(&mut self, ability: impl Into<String>, provider: Arc<dyn Provider>) {
        self.providers.insert(ability.into(), provider);
    }

    pub fn get(&self, ability: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.get(ability)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<dyn Provider>)> {
        self.providers
            .iter()
            .map(|(name, provider)| (name.as_str(), provider))
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// These bindings less the abilities `keep` refuses, described by `origin`: what a
    /// call made on someone else's behalf may use.
    pub fn only(&self, keep: impl Fn(&str) -> bool, origin: impl Into<String>) -> Bindings {
        Bindings {
            providers: self
                .providers
                .iter()
                .filter(|(name, _)| keep(name))
                .map(|(name, provider)| (name.clone(), provider.clone()))
                .collect(),
            origin: origin.into(),
            on_behalf: true,
        }
    }
}

impl fmt::Debug for Bindings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bindings")
            .field("abilities", &self.providers.keys().collect::<Vec<_>>())
            .field("origin", &self.origin)
            .finish()
    }
}

/// Reads a map field of an ability request, for providers.
pub fn field<'a>(request: &'a Value, key: &str) -> Option<&'a Value> {
    request
        .as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

/// Reads a required text field of an ability request.
pub fn text_field<'a>(request: &'a Value, key: &str) -> Result<&'a str, AbilityError> {
    field(request, key)
        .and_then(Value::as_text)
        .ok_or_else(|| AbilityError::bad_request(format!("the request needs a text field `{key}`")))
}
