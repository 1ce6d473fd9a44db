//! The provider callers see, [`ProcessProvider`], and the supervisor thread that keeps
//! its process running.
//!
//! The provider is in one [`Phase`] at a time. A call finds the process live and is
//! sent, or finds it down and fails at once with `unavailable` (the supervisor is
//! restarting it), or finds its first start under way and waits for the hello, but no
//! longer than its own deadline.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_runtime::{AbilityContext, AbilityError, ErrorKind, Provider};

use super::connection::{Connection, HELLO_TIMEOUT, JOIN_GRACE, join_within};
use super::protocol::Reply;
use super::{ProcessError, ProcessSettings, command_line, lock, unavailable};

/// How long a process has to exit on its own once its stdin is closed at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A process that ran this long before dying restarts after the first backoff again.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// An ability served by a supervised external process.
pub struct ProcessProvider {
    shared: Arc<Shared>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

impl ProcessProvider {
    /// Starts the process and waits for its hello. If that fails, nothing is left
    /// running and the error says why.
    pub fn start(settings: ProcessSettings) -> Result<Arc<ProcessProvider>, ProcessError> {
        let shared = Shared::new(settings, Phase::Starting);
        let connection = Connection::start(&shared)?;
        lock(&shared.state).phase = Phase::Live(connection);
        ProcessProvider::with_supervisor(shared)
    }

    /// Like [`start`](Self::start), but a failed first start does not give up: the
    /// error is returned for the node to report, alongside a provider whose supervisor
    /// keeps retrying with backoff. Its calls fail with `unavailable` until a start
    /// succeeds.
    pub fn start_or_retry(
        settings: ProcessSettings,
    ) -> (Arc<ProcessProvider>, Option<ProcessError>) {
        let shared = Shared::new(settings, Phase::Starting);
        let (phase, first_error) = match Connection::start(&shared) {
            Ok(connection) => (Phase::Live(connection), None),
            Err(error) => (
                Phase::Down {
                    reason: error.to_string(),
                },
                Some(error),
            ),
        };
        lock(&shared.state).phase = phase;
        match ProcessProvider::with_supervisor(Arc::clone(&shared)) {
            Ok(provider) => (provider, first_error),
            // Without a supervisor thread nothing would ever restart the process; a
            // provider that is shut down at least fails its calls plainly.
            Err(error) => {
                let provider = ProcessProvider::unsupervised(shared);
                provider.shutdown();
                (provider, Some(first_error.unwrap_or(error)))
            }
        }
    }

    /// A provider whose process starts with its first call, so that a node which never
    /// calls it (`spore publish`, `spore ls`) never spawns it. Calls that come while it
    /// starts wait for its hello until their deadlines; one whose deadline comes first
    /// fails with `timeout`, and the process goes on starting for later calls. From
    /// then on it is supervised like any other: a failed start or a crash is retried
    /// with backoff.
    pub fn on_first_use(settings: ProcessSettings) -> Arc<ProcessProvider> {
        ProcessProvider::unsupervised(Shared::new(settings, Phase::Idle))
    }

    fn unsupervised(shared: Arc<Shared>) -> Arc<ProcessProvider> {
        Arc::new(ProcessProvider {
            shared,
            supervisor: Mutex::new(None),
        })
    }

    fn with_supervisor(shared: Arc<Shared>) -> Result<Arc<ProcessProvider>, ProcessError> {
        let provider = ProcessProvider::unsupervised(shared);
        // On an error, dropping `provider` shuts the process down.
        provider.spawn_supervisor()?;
        Ok(provider)
    }

    fn spawn_supervisor(&self) -> Result<(), ProcessError> {
        let shared = Arc::clone(&self.shared);
        let handle = thread::Builder::new()
            .name(format!("{}-supervisor", shared.settings.ability))
            .spawn(move || shared.supervise())
            .map_err(|source| ProcessError::Thread {
                ability: self.shared.settings.ability.clone(),
                source,
            })?;
        *lock(&self.supervisor) = Some(handle);
        Ok(())
    }

    /// What [`Provider::call`] does, for callers with a deadline but no
    /// `AbilityContext` (tools and tests).
    pub fn call_until(&self, deadline: Instant, operation: &str, request: Value) -> Reply {
        let shared = &self.shared;
        let ability = shared.settings.ability.as_str();
        let called = Instant::now();
        // The binding's timeout caps a caller willing to wait longer.
        let until = called
            .checked_add(shared.settings.timeout)
            .map_or(deadline, |cap| cap.min(deadline));
        if until <= called {
            return Err(AbilityError::new(
                ErrorKind::Timeout,
                format!("the deadline passed before `{ability}.{operation}` could be sent"),
            ));
        }
        let connection = self.connection_by(called, until)?;
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        connection.call(
            id,
            operation,
            request,
            until.saturating_duration_since(Instant::now()),
        )
    }

    /// The live process, waiting until `until` if its first start is under way.
    fn connection_by(
        &self,
        called: Instant,
        until: Instant,
    ) -> Result<Arc<Connection>, AbilityError> {
        let shared = &self.shared;
        let ability = shared.settings.ability.as_str();
        let mut state = lock(&shared.state);
        loop {
            match &state.phase {
                Phase::Live(connection) => return Ok(Arc::clone(connection)),
                Phase::Down { reason } => {
                    return Err(unavailable(format!(
                        "the provider process for `{ability}` is down ({reason}); restarting"
                    )));
                }
                Phase::Stopped => {
                    return Err(unavailable(format!(
                        "the provider process for `{ability}` has been shut down"
                    )));
                }
                Phase::Idle => {
                    // The supervisor makes the first start, so that it goes on when this
                    // caller stops waiting.
                    state.phase = Phase::Starting;
                    if let Err(error) = self.spawn_supervisor() {
                        state.phase = Phase::Idle;
                        return Err(unavailable(error.to_string()));
                    }
                }
                Phase::Starting => {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(AbilityError::new(
                            ErrorKind::Timeout,
                            format!(
                                "the provider process `{}` for ability `{ability}` sent no hello \
                                 within the {} ms this call could wait; it is still starting",
                                shared.command_line,
                                until.duration_since(called).as_millis()
                            ),
                        ));
                    }
                    state = shared
                        .changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    /// The pid of the running process, or `None` while it is not running.
    pub fn pid(&self) -> Option<u32> {
        match &lock(&self.shared.state).phase {
            Phase::Live(connection) => Some(connection.pid),
            _ => None,
        }
    }

    /// How many times the process has been restarted since the provider started.
    pub fn restarts(&self) -> u64 {
        lock(&self.shared.state).restarts
    }

    /// Stops the process: closes its stdin, gives it a moment to exit, then kills it.
    /// Calls in flight and later calls fail with `unavailable`. Idempotent; also done
    /// on drop.
    pub fn shutdown(&self) {
        let shared = &self.shared;
        let live = {
            let mut state = lock(&shared.state);
            shared.stopping.store(true, Ordering::SeqCst);
            let previous = std::mem::replace(&mut state.phase, Phase::Stopped);
            shared.changed.notify_all();
            match previous {
                Phase::Live(connection) => Some(connection),
                _ => None,
            }
        };
        if let Some(connection) = live {
            connection.close(SHUTDOWN_GRACE);
        }
        // A supervisor that was starting a process closes it itself on seeing the stop.
        if let Some(supervisor) = lock(&self.supervisor).take() {
            join_within(supervisor, JOIN_GRACE + HELLO_TIMEOUT, "supervisor");
        }
        let dead = std::mem::take(&mut lock(&shared.state).dead);
        for connection in dead {
            connection.join_threads();
        }
    }
}

impl Drop for ProcessProvider {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Provider for ProcessProvider {
    fn call(
        &self,
        cx: &AbilityContext,
        operation: &str,
        request: Value,
    ) -> Result<Value, AbilityError> {
        let ability = self.shared.settings.ability.as_str();
        let _span = tracing::debug_span!("ability", ability, operation, invocation = cx.invocation)
            .entered();
        self.call_until(cx.deadline, operation, request)
    }

    fn restarts(&self) -> u64 {
        ProcessProvider::restarts(self)
    }

    fn describe(&self) -> String {
        let shared = &self.shared;
        let state = lock(&shared.state);
        let restarts = match state.restarts {
            1 => "1 restart".to_owned(),
            n => format!("{n} restarts"),
        };
        let status = match &state.phase {
            Phase::Idle => "started on first use".to_owned(),
            Phase::Starting => "starting".to_owned(),
            Phase::Live(connection) => format!(
                "pid {}, up {}, {restarts}",
                connection.pid,
                Uptime(connection.started.elapsed())
            ),
            Phase::Down { reason } => format!("down: {reason}, {restarts}"),
            Phase::Stopped => "shut down".to_owned(),
        };
        format!("process `{}` ({status})", shared.command_line)
    }
}

/// What the provider, its supervisor and its connections share.
pub(super) struct Shared {
    pub settings: ProcessSettings,
    /// The command as people would type it, for messages.
    pub command_line: String,
    next_id: AtomicU64,
    /// Set with `Phase::Stopped`, for waits that do not hold the lock.
    pub stopping: AtomicBool,
    state: Mutex<State>,
    /// Signalled whenever the phase changes.
    changed: Condvar,
}

struct State {
    phase: Phase,
    /// Processes that died, whose threads the supervisor still has to join.
    dead: Vec<Arc<Connection>>,
    /// How long the last process to die had run, to decide whether to reset backoff.
    last_uptime: Duration,
    restarts: u64,
}

enum Phase {
    /// Nothing started yet: the first call starts the process.
    Idle,
    /// The first start is under way: calls wait for it, until their deadlines.
    Starting,
    /// The process is running and has said hello.
    Live(Arc<Connection>),
    /// The process is down and the supervisor is restarting it: calls fail at once,
    /// with this reason.
    Down { reason: String },
    /// Shut down for good.
    Stopped,
}

impl Shared {
    fn new(settings: ProcessSettings, phase: Phase) -> Arc<Shared> {
        Arc::new(Shared {
            command_line: command_line(&settings.command),
            settings,
            next_id: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            state: Mutex::new(State {
                phase,
                dead: Vec::new(),
                last_uptime: Duration::ZERO,
                restarts: 0,
            }),
            changed: Condvar::new(),
        })
    }

    /// The supervisor thread: makes the first start if it is its to make, then,
    /// whenever the process is down, waits out the backoff and starts it again, until
    /// the provider stops.
    fn supervise(self: Arc<Shared>) {
        let ability = self.settings.ability.as_str();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let (dead, last_uptime, first) = {
                let mut state = lock(&self.state);
                while matches!(state.phase, Phase::Live(_) | Phase::Idle) {
                    state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                if matches!(state.phase, Phase::Stopped) {
                    return;
                }
                (
                    std::mem::take(&mut state.dead),
                    state.last_uptime,
                    matches!(state.phase, Phase::Starting),
                )
            };
            for connection in dead {
                connection.join_threads();
            }
            let mut waited = Duration::ZERO;
            if !first {
                if last_uptime >= HEALTHY_AFTER {
                    backoff = FIRST_BACKOFF;
                }
                if self.sleep_unless_stopped(backoff) {
                    return;
                }
                waited = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }

            match Connection::start(&self) {
                Ok(connection) => {
                    let mut state = lock(&self.state);
                    if matches!(state.phase, Phase::Stopped) {
                        drop(state);
                        connection.close(SHUTDOWN_GRACE);
                        return;
                    }
                    if first {
                        tracing::info!(
                            ability,
                            pid = connection.pid,
                            "started the provider process"
                        );
                    } else {
                        state.restarts += 1;
                        tracing::info!(
                            ability,
                            pid = connection.pid,
                            restarts = state.restarts,
                            "restarted the provider process after {waited:?}"
                        );
                    }
                    state.phase = Phase::Live(connection);
                    self.changed.notify_all();
                }
                Err(ProcessError::ShutDown { .. }) => return,
                Err(error) => {
                    tracing::warn!(ability, "{error}; retrying in {backoff:?}");
                    let mut state = lock(&self.state);
                    if !matches!(state.phase, Phase::Stopped) {
                        state.phase = Phase::Down {
                            reason: error.to_string(),
                        };
                    }
                    state.last_uptime = Duration::ZERO;
                    self.changed.notify_all();
                }
            }
        }
    }

    /// Returns true if the provider stopped during the sleep.
    fn sleep_unless_stopped(&self, duration: Duration) -> bool {
        let until = Instant::now() + duration;
        let mut state = lock(&self.state);
        loop {
            if matches!(state.phase, Phase::Stopped) {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Called by a connection's reader when its process has ended.
    pub fn mark_down(&self, connection: &Arc<Connection>, reason: String) {
        let mut state = lock(&self.state);
        // A connection that is not live is being closed or abandoned by its owner.
        if let Phase::Live(live) = &state.phase
            && Arc::ptr_eq(live, connection)
        {
            state.phase = Phase::Down { reason };
            state.last_uptime = connection.started.elapsed();
            state.dead.push(Arc::clone(connection));
            self.changed.notify_all();
        }
    }
}

/// An uptime at the precision people care about: `45s`, `3m`, `2h 5m`, `3d 4h`.
struct Uptime(Duration);

impl fmt::Display for Uptime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.as_secs();
        match seconds {
            0..60 => write!(f, "{seconds}s"),
            60..3600 => write!(f, "{}m", seconds / 60),
            3600..86400 => write!(f, "{}h {}m", seconds / 3600, seconds % 3600 / 60),
            _ => write!(f, "{}d {}h", seconds / 86400, seconds % 86400 / 3600),
        }
    }
}
