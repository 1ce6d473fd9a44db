//! External provider processes (`spec/abilities.md`, "Provider process protocol"): any
//! ability served by a program that speaks length-prefixed CBOR frames on its standard
//! input and output, kept running by a supervisor.
//!
//! Each running process is a [`Connection`] with three threads: a writer that owns the
//! process's stdin (callers hand it encoded frames, so a provider that stops reading
//! can never block a caller past its deadline), a reader that owns stdout and routes
//! each answer by id to the caller waiting for it, and one that forwards stderr to the
//! log. Callers wait on a channel of their own with their deadline.
//!
//! When a process dies or breaks the protocol, its reader fails every call in flight
//! with `unavailable` and marks the process down; the supervisor thread then restarts
//! it with exponential backoff. Calls meanwhile fail at once rather than wait.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_runtime::{AbilityContext, AbilityError, ErrorKind, Provider, field};

/// The protocol version this node speaks.
pub const PROTOCOL: u64 = 1;
/// The largest frame either side may send, in bytes, not counting the length prefix.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// How long a starting process has to send its hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a process has to exit on its own once its stdin is closed at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long a process that closed its stdout has to exit before it is killed; long
/// enough to collect the exit status of one that is exiting anyway.
const EXIT_GRACE: Duration = Duration::from_millis(200);
/// How long to wait for a thread of a finished process; a grandchild that inherited a
/// pipe can keep one running, and shutdown must not hang on it.
const JOIN_GRACE: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A process that ran this long before dying restarts after the first backoff again.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// Lines of stderr kept to explain a process that dies before its hello.
const STDERR_TAIL_LINES: usize = 5;
/// Requests queued for a process's stdin beyond what the pipe holds. A process that
/// falls this far behind (or stopped reading) fails further calls at once, naming the
/// problem, rather than letting requests pile up in memory until their deadlines.
const OUTBOX_FRAMES: usize = 256;
/// Longest stderr line forwarded; the rest of a longer line comes as further lines.
const MAX_STDERR_LINE: u64 = 64 * 1024;

/// How a binding to an external provider process is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSettings {
    /// The ability served, which the process must name in its hello.
    pub ability: String,
    /// The operations the configuration declares; the process must serve all of them.
    pub operations: Vec<String>,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// The working directory of the process (default: the node's).
    pub cwd: Option<PathBuf>,
    /// Environment variables set for the process, on top of the node's own.
    pub env: Vec<(String, String)>,
    /// The longest a call may wait for its answer; a caller's earlier deadline wins.
    pub timeout: Duration,
}

impl Default for ProcessSettings {
    fn default() -> ProcessSettings {
        ProcessSettings {
            ability: String::new(),
            operations: Vec::new(),
            command: Vec::new(),
            cwd: None,
            env: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why a provider process could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    #[error("the provider command for ability `{ability}` is empty")]
    EmptyCommand { ability: String },
    #[error("cannot start `{command}` as the provider process for ability `{ability}`: {source}")]
    Spawn {
        ability: String,
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot start a thread for the provider process of ability `{ability}`: {source}")]
    Thread {
        ability: String,
        #[source]
        source: io::Error,
    },
    #[error("the provider process `{command}` for ability `{ability}` {exit} before sending its hello{}", last_words(.stderr))]
    ExitedBeforeHello {
        ability: String,
        command: String,
        /// How it ended, e.g. "exited (exit status: 1)".
        exit: String,
        /// Its last lines of standard error.
        stderr: Vec<String>,
    },
    #[error("the provider process `{command}` for ability `{ability}` sent no hello within {}s", .timeout.as_secs())]
    HelloTimeout {
        ability: String,
        command: String,
        timeout: Duration,
    },
    #[error(
        "the provider process `{command}` for ability `{ability}` broke the protocol: {problem}"
    )]
    Protocol {
        ability: String,
        command: String,
        problem: String,
    },
    #[error(
        "the provider process `{command}` does not serve ability `{ability}` as configured: {problem}"
    )]
    Mismatch {
        ability: String,
        command: String,
        problem: String,
    },
    #[error("the provider process for ability `{ability}` was shut down while starting")]
    ShutDown { ability: String },
}

fn last_words(stderr: &[String]) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; its standard error ended with:\n{}", stderr.join("\n"))
    }
}

/// An ability served by a supervised external process.
pub struct ProcessProvider {
    shared: Arc<Shared>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

impl ProcessProvider {
    /// Starts the process and waits for its hello. If that fails, nothing is left
    /// running and the error says why.
    pub fn start(settings: ProcessSettings) -> Result<Arc<ProcessProvider>, ProcessError> {
        let shared = Shared::new(settings);
        let connection = Connection::start(&shared)?;
        lock(&shared.state).live = Some(connection);
        ProcessProvider::with_supervisor(shared)
    }

    /// Like [`start`](Self::start), but a failed first start does not give up: the
    /// error is returned for the node to report, alongside a provider whose supervisor
    /// keeps retrying with backoff. Its calls fail with `unavailable` until a start
    /// succeeds.
    pub fn start_or_retry(
        settings: ProcessSettings,
    ) -> (Arc<ProcessProvider>, Option<ProcessError>) {
        let shared = Shared::new(settings);
        let first_error = match Connection::start(&shared) {
            Ok(connection) => {
                lock(&shared.state).live = Some(connection);
                None
            }
            Err(error) => {
                lock(&shared.state).down_reason = error.to_string();
                Some(error)
            }
        };
        match ProcessProvider::with_supervisor(Arc::clone(&shared)) {
            Ok(provider) => (provider, first_error),
            // Without a supervisor thread nothing would ever restart the process; a
            // provider that is shut down at least fails its calls plainly.
            Err(error) => {
                let provider = Arc::new(ProcessProvider {
                    shared,
                    supervisor: Mutex::new(None),
                });
                provider.shutdown();
                (provider, Some(first_error.unwrap_or(error)))
            }
        }
    }

    fn with_supervisor(shared: Arc<Shared>) -> Result<Arc<ProcessProvider>, ProcessError> {
        let supervisor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("{}-supervisor", shared.settings.ability))
                .spawn(move || shared.supervise())
        };
        let provider = Arc::new(ProcessProvider {
            shared: Arc::clone(&shared),
            supervisor: Mutex::new(None),
        });
        match supervisor {
            Ok(handle) => {
                *lock(&provider.supervisor) = Some(handle);
                Ok(provider)
            }
            Err(source) => {
                // Dropping `provider` shuts the process down.
                Err(ProcessError::Thread {
                    ability: shared.settings.ability.clone(),
                    source,
                })
            }
        }
    }

    /// What [`Provider::call`] does, for callers with a deadline but no
    /// `AbilityContext` (tools and tests).
    pub fn call_until(
        &self,
        deadline: Instant,
        operation: &str,
        request: Value,
    ) -> Result<Value, AbilityError> {
        let shared = &self.shared;
        let ability = shared.settings.ability.as_str();
        let timeout = shared
            .settings
            .timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        if timeout.is_zero() {
            return Err(AbilityError::new(
                ErrorKind::Timeout,
                format!("the deadline passed before `{ability}.{operation}` could be sent"),
            ));
        }
        let connection = {
            let state = lock(&shared.state);
            if state.stopped {
                return Err(unavailable(format!(
                    "the provider process for `{ability}` has been shut down"
                )));
            }
            match &state.live {
                Some(connection) => Arc::clone(connection),
                None => {
                    return Err(unavailable(format!(
                        "the provider process for `{ability}` is down ({}); restarting",
                        state.down_reason
                    )));
                }
            }
        };
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        connection.call(id, operation, request, timeout)
    }

    /// The pid of the running process, or `None` while it is down.
    pub fn pid(&self) -> Option<u32> {
        lock(&self.shared.state)
            .live
            .as_ref()
            .map(|connection| connection.pid)
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
        {
            let mut state = lock(&shared.state);
            state.stopped = true;
            shared.stopping.store(true, Ordering::SeqCst);
            shared.changed.notify_all();
        }
        if let Some(supervisor) = lock(&self.supervisor).take() {
            join_within(supervisor, JOIN_GRACE + HELLO_TIMEOUT, "supervisor");
        }
        // Taken only now: the supervisor may have installed a process while stopping.
        let (live, dead) = {
            let mut state = lock(&shared.state);
            (state.live.take(), std::mem::take(&mut state.dead))
        };
        if let Some(connection) = live {
            connection.close(SHUTDOWN_GRACE);
        }
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

    fn describe(&self) -> String {
        let shared = &self.shared;
        let state = lock(&shared.state);
        let restarts = match state.restarts {
            1 => "1 restart".to_owned(),
            n => format!("{n} restarts"),
        };
        let status = if state.stopped {
            "shut down".to_owned()
        } else {
            match &state.live {
                Some(connection) => format!(
                    "pid {}, up {}, {restarts}",
                    connection.pid,
                    Uptime(connection.started.elapsed())
                ),
                None => format!("down: {}, {restarts}", state.down_reason),
            }
        };
        format!("process `{}` ({status})", shared.command_line)
    }
}

/// What the provider, its supervisor and its connections share.
struct Shared {
    settings: ProcessSettings,
    /// The command as people would type it, for messages.
    command_line: String,
    next_id: AtomicU64,
    /// Mirrors `State::stopped` for waits that do not hold the lock.
    stopping: AtomicBool,
    state: Mutex<State>,
    /// Signalled when the process goes down and when the provider stops.
    changed: Condvar,
}

struct State {
    /// The running process; `None` while it is down.
    live: Option<Arc<Connection>>,
    /// Processes that died, whose threads the supervisor still has to join.
    dead: Vec<Arc<Connection>>,
    /// Why the process is down, for the errors of calls meanwhile.
    down_reason: String,
    /// How long the last process to die had run, to decide whether to reset backoff.
    last_uptime: Duration,
    restarts: u64,
    stopped: bool,
}

impl Shared {
    fn new(settings: ProcessSettings) -> Arc<Shared> {
        Arc::new(Shared {
            command_line: command_line(&settings.command),
            settings,
            next_id: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            state: Mutex::new(State {
                live: None,
                dead: Vec::new(),
                down_reason: "not started yet".to_owned(),
                last_uptime: Duration::ZERO,
                restarts: 0,
                stopped: false,
            }),
            changed: Condvar::new(),
        })
    }

    /// The supervisor thread: whenever the process is down, waits out the backoff and
    /// starts it again, until the provider stops.
    fn supervise(self: Arc<Shared>) {
        let ability = self.settings.ability.as_str();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let (dead, last_uptime) = {
                let mut state = lock(&self.state);
                while state.live.is_some() && !state.stopped {
                    state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                if state.stopped {
                    return;
                }
                (std::mem::take(&mut state.dead), state.last_uptime)
            };
            for connection in dead {
                connection.join_threads();
            }
            if last_uptime >= HEALTHY_AFTER {
                backoff = FIRST_BACKOFF;
            }
            if self.sleep_unless_stopped(backoff) {
                return;
            }
            let waited = backoff;
            backoff = (backoff * 2).min(MAX_BACKOFF);

            match Connection::start(&self) {
                Ok(connection) => {
                    let mut state = lock(&self.state);
                    if state.stopped {
                        drop(state);
                        connection.close(SHUTDOWN_GRACE);
                        return;
                    }
                    state.restarts += 1;
                    tracing::info!(
                        ability,
                        pid = connection.pid,
                        restarts = state.restarts,
                        "restarted the provider process after {waited:?}"
                    );
                    state.live = Some(connection);
                }
                Err(ProcessError::ShutDown { .. }) => return,
                Err(error) => {
                    tracing::warn!(ability, "{error}; retrying in {backoff:?}");
                    let mut state = lock(&self.state);
                    state.down_reason = error.to_string();
                    state.last_uptime = Duration::ZERO;
                }
            }
        }
    }

    /// Returns true if the provider stopped during the sleep.
    fn sleep_unless_stopped(&self, duration: Duration) -> bool {
        let until = Instant::now() + duration;
        let mut state = lock(&self.state);
        loop {
            if state.stopped {
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
    fn mark_down(&self, connection: &Arc<Connection>, reason: String) {
        let mut state = lock(&self.state);
        // A connection that is not live is being closed or abandoned by its owner.
        if state
            .live
            .as_ref()
            .is_some_and(|live| Arc::ptr_eq(live, connection))
        {
            state.live = None;
            state.down_reason = reason;
            state.last_uptime = connection.started.elapsed();
            state.dead.push(Arc::clone(connection));
            self.changed.notify_all();
        }
    }
}

type Reply = Result<Value, AbilityError>;

/// One running process and the threads that talk to it.
struct Connection {
    ability: String,
    pid: u32,
    started: Instant,
    child: Mutex<Child>,
    /// Frames for the writer thread. Taking the sender closes the process's stdin.
    outbox: Mutex<Option<mpsc::SyncSender<Vec<u8>>>>,
    /// The callers waiting for an answer, by request id; `None` once the process ended.
    pending: Mutex<Option<HashMap<u64, mpsc::Sender<Reply>>>>,
    /// Why the process ended, for calls that raced with its end.
    obituary: Mutex<Option<String>>,
    /// Set when the node ends the process on purpose, so that its exit is no crash.
    closing: AtomicBool,
    stderr_tail: Mutex<VecDeque<String>>,
    threads: Mutex<Vec<(&'static str, JoinHandle<()>)>>,
}

/// How a process ended.
enum Exit {
    Exited(ExitStatus),
    Killed,
    Unknown(io::Error),
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Exited(status) => write!(f, "exited ({status})"),
            Exit::Killed => write!(f, "was killed"),
            Exit::Unknown(error) => write!(f, "ended (status unknown: {error})"),
        }
    }
}

/// What the reader concluded from the first frame.
enum Hello {
    Accepted,
    /// The process closed its stdout first.
    Exited,
    Protocol(String),
    Mismatch(String),
}

impl Connection {
    /// Spawns the process and waits for an acceptable hello.
    fn start(shared: &Arc<Shared>) -> Result<Arc<Connection>, ProcessError> {
        let settings = &shared.settings;
        let ability = settings.ability.clone();
        let (program, args) =
            settings
                .command
                .split_first()
                .ok_or_else(|| ProcessError::EmptyCommand {
                    ability: ability.clone(),
                })?;
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(settings.env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cwd) = &settings.cwd {
            command.current_dir(cwd);
        }
        let spawn_error = |source| ProcessError::Spawn {
            ability: ability.clone(),
            command: shared.command_line.clone(),
            source,
        };
        let mut child = command.spawn().map_err(spawn_error)?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(spawn_error(io::Error::other(
                "the standard streams were not piped",
            )));
        };

        let (outbox, frames) = mpsc::sync_channel(OUTBOX_FRAMES);
        let connection = Arc::new(Connection {
            ability: ability.clone(),
            pid: child.id(),
            started: Instant::now(),
            child: Mutex::new(child),
            outbox: Mutex::new(Some(outbox)),
            pending: Mutex::new(Some(HashMap::new())),
            obituary: Mutex::new(None),
            closing: AtomicBool::new(false),
            stderr_tail: Mutex::new(VecDeque::new()),
            threads: Mutex::new(Vec::new()),
        });
        let (hello_tx, hello_rx) = mpsc::channel();
        let spawned = connection
            .spawn_thread("stderr", {
                let connection = Arc::clone(&connection);
                move || connection.forward_stderr(stderr)
            })
            .and_then(|()| {
                connection.spawn_thread("writer", {
                    let connection = Arc::clone(&connection);
                    move || connection.write_frames(stdin, frames)
                })
            })
            .and_then(|()| {
                connection.spawn_thread("reader", {
                    let connection = Arc::clone(&connection);
                    let shared = Arc::clone(shared);
                    move || connection.read_frames(&shared, stdout, hello_tx)
                })
            });
        if let Err(source) = spawned {
            connection.abandon(Duration::ZERO);
            return Err(ProcessError::Thread { ability, source });
        }

        let deadline = Instant::now() + HELLO_TIMEOUT;
        let hello = loop {
            // Waits in slices so that a shutdown is not held up by a silent process.
            match hello_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(hello) => break Some(hello),
                Err(RecvTimeoutError::Disconnected) => break Some(Hello::Exited),
                Err(RecvTimeoutError::Timeout) if shared.stopping.load(Ordering::SeqCst) => {
                    break None;
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                    connection.abandon(Duration::ZERO);
                    return Err(ProcessError::HelloTimeout {
                        ability,
                        command: shared.command_line.clone(),
                        timeout: HELLO_TIMEOUT,
                    });
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        };
        let command = shared.command_line.clone();
        let error = match hello {
            Some(Hello::Accepted) => return Ok(connection),
            None => {
                connection.abandon(Duration::ZERO);
                ProcessError::ShutDown { ability }
            }
            Some(Hello::Exited) => {
                let exit = connection.abandon(EXIT_GRACE);
                let stderr = lock(&connection.stderr_tail).iter().cloned().collect();
                ProcessError::ExitedBeforeHello {
                    ability,
                    command,
                    exit: exit.to_string(),
                    stderr,
                }
            }
            Some(Hello::Protocol(problem)) => {
                connection.abandon(Duration::ZERO);
                ProcessError::Protocol {
                    ability,
                    command,
                    problem,
                }
            }
            Some(Hello::Mismatch(problem)) => {
                connection.abandon(Duration::ZERO);
                ProcessError::Mismatch {
                    ability,
                    command,
                    problem,
                }
            }
        };
        Err(error)
    }

    fn spawn_thread(
        &self,
        role: &'static str,
        body: impl FnOnce() + Send + 'static,
    ) -> io::Result<()> {
        let handle = thread::Builder::new()
            .name(format!("{}-{role}", self.ability))
            .spawn(body)?;
        lock(&self.threads).push((role, handle));
        Ok(())
    }

    /// Sends one request and waits for its answer until `timeout`.
    fn call(&self, id: u64, operation: &str, request: Value, timeout: Duration) -> Reply {
        let deadline_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let frame = encode_frame(&Value::Map(vec![
            (Value::Text("id".into()), Value::Integer(id.into())),
            (
                Value::Text("operation".into()),
                Value::Text(operation.into()),
            ),
            (Value::Text("request".into()), request),
            (
                Value::Text("deadline_ms".into()),
                Value::Integer(deadline_ms.into()),
            ),
        ]))
        .map_err(|problem| AbilityError::new(ErrorKind::TooLarge, problem))?;

        let (reply_tx, reply_rx) = mpsc::channel();
        match lock(&self.pending).as_mut() {
            Some(pending) => pending.insert(id, reply_tx),
            None => return Err(self.gone()),
        };
        let sent = lock(&self.outbox)
            .as_ref()
            .map(|outbox| outbox.try_send(frame));
        let refusal = match sent {
            Some(Ok(())) => None,
            Some(Err(mpsc::TrySendError::Full(_))) => Some(unavailable(format!(
                "the provider process for `{}` (pid {}) is not reading its requests: \
                 {OUTBOX_FRAMES} are queued behind a full pipe",
                self.ability, self.pid
            ))),
            Some(Err(mpsc::TrySendError::Disconnected(_))) | None => Some(self.gone()),
        };
        if let Some(refusal) = refusal {
            self.forget(id);
            return Err(refusal);
        }

        match reply_rx.recv_timeout(timeout) {
            Ok(reply) => reply,
            Err(RecvTimeoutError::Timeout) => {
                // The answer may have been routed between the timeout and now.
                if !self.forget(id)
                    && let Ok(reply) = reply_rx.try_recv()
                {
                    return reply;
                }
                Err(AbilityError::new(
                    ErrorKind::Timeout,
                    format!(
                        "the provider process for `{}` did not answer `{operation}` within {} ms",
                        self.ability,
                        timeout.as_millis()
                    ),
                ))
            }
            Err(RecvTimeoutError::Disconnected) => Err(self.gone()),
        }
    }

    /// Removes a pending call; false if it was no longer pending.
    fn forget(&self, id: u64) -> bool {
        lock(&self.pending)
            .as_mut()
            .and_then(|pending| pending.remove(&id))
            .is_some()
    }

    fn gone(&self) -> AbilityError {
        let obituary = lock(&self.obituary).clone();
        unavailable(
            obituary.unwrap_or_else(|| {
                format!("the provider process for `{}` has ended", self.ability)
            }),
        )
    }

    fn write_frames(&self, mut stdin: ChildStdin, frames: mpsc::Receiver<Vec<u8>>) {
        for frame in frames {
            if let Err(error) = stdin.write_all(&frame).and_then(|()| stdin.flush()) {
                // A process that no longer reads its input cannot answer: end it, so
                // the reader fails the calls in flight instead of letting them time out.
                if !self.closing.load(Ordering::SeqCst) {
                    tracing::warn!(ability = %self.ability, pid = self.pid, "cannot write to the provider process: {error}; killing it");
                    let _ = lock(&self.child).kill();
                }
                return;
            }
        }
        // All senders are gone: dropping `stdin` here closes it, as shutdown intends.
    }

    fn read_frames(
        self: &Arc<Self>,
        shared: &Shared,
        stdout: ChildStdout,
        hello: mpsc::Sender<Hello>,
    ) {
        let mut stdout = BufReader::new(stdout);
        let verdict = match read_frame(&mut stdout) {
            Ok(Some(frame)) => check_hello(&shared.settings, &frame),
            Ok(None) => Hello::Exited,
            Err(error) => Hello::Protocol(error.to_string()),
        };
        let accepted = matches!(verdict, Hello::Accepted);
        // If nobody listens any more, the start gave up and is ending the process.
        if hello.send(verdict).is_err() || !accepted {
            return;
        }
        let problem = loop {
            match read_frame(&mut stdout) {
                Ok(Some(frame)) => {
                    if let Err(problem) = self.route(frame) {
                        break Some(problem);
                    }
                }
                Ok(None) => break None,
                Err(error) => break Some(error.to_string()),
            }
        };
        self.ended(shared, problem);
    }

    /// Hands an answer to the caller waiting for it. An answer without a usable id
    /// cannot be routed, which is a broken protocol.
    fn route(&self, frame: Value) -> Result<(), String> {
        let Value::Map(entries) = frame else {
            return Err("it sent a frame that is not a map".to_owned());
        };
        let (mut id, mut ok, mut error) = (None, None, None);
        for (key, value) in entries {
            match key.as_text() {
                Some("id") => id = Some(value),
                Some("ok") => ok = Some(value),
                Some("error") => error = Some(value),
                _ => {}
            }
        }
        let id = id
            .as_ref()
            .and_then(Value::as_integer)
            .and_then(|id| u64::try_from(id).ok())
            .ok_or_else(|| "it sent an answer without an unsigned `id`".to_owned())?;
        let reply = match (ok, error) {
            (Some(ok), None) => Ok(ok),
            (None, Some(error)) => Err(provider_error(&error)),
            _ => Err(AbilityError::new(
                ErrorKind::Failed,
                format!(
                    "the provider process for `{}` answered with neither `ok` nor `error`, or both",
                    self.ability
                ),
            )),
        };
        let waiting = lock(&self.pending)
            .as_mut()
            .and_then(|pending| pending.remove(&id));
        match waiting {
            // The caller may have timed out just now; nothing to do then.
            Some(caller) => drop(caller.send(reply)),
            None => {
                tracing::debug!(ability = %self.ability, id, "dropped an answer nobody waits for any more")
            }
        }
        Ok(())
    }

    /// The reader's last act: the process's stdout ended (`problem` is `None`) or it
    /// broke the protocol. Ends the process, fails the calls in flight, and tells the
    /// supervisor.
    fn ended(self: &Arc<Self>, shared: &Shared, problem: Option<String>) {
        let closing = self.closing.load(Ordering::SeqCst);
        let how = match (&problem, closing) {
            // Shutdown reaps the process itself, after its grace period.
            (_, true) => "was shut down".to_owned(),
            (None, false) => match self.reap(EXIT_GRACE) {
                Exit::Killed => "closed its standard output and was killed".to_owned(),
                exit => exit.to_string(),
            },
            (Some(problem), false) => {
                self.reap(Duration::ZERO);
                format!("broke the protocol ({problem}) and was killed")
            }
        };
        let message = if closing {
            format!("the provider process for `{}` was shut down", self.ability)
        } else {
            tracing::warn!(ability = %self.ability, pid = self.pid, "the provider process {how}; restarting");
            format!(
                "the provider process for `{}` {how}; restarting",
                self.ability
            )
        };
        *lock(&self.obituary) = Some(message.clone());
        lock(&self.outbox).take();
        shared.mark_down(self, how);
        let pending = lock(&self.pending).take().unwrap_or_default();
        for (_, caller) in pending {
            let _ = caller.send(Err(unavailable(message.clone())));
        }
    }

    fn forward_stderr(&self, stderr: ChildStderr) {
        let mut stderr = BufReader::new(stderr);
        let mut line = Vec::new();
        loop {
            line.clear();
            match (&mut stderr)
                .take(MAX_STDERR_LINE)
                .read_until(b'\n', &mut line)
            {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end();
                    tracing::warn!(ability = %self.ability, pid = self.pid, "{text}");
                    let mut tail = lock(&self.stderr_tail);
                    if tail.len() == STDERR_TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(text.to_owned());
                }
            }
        }
    }

    /// Waits up to `grace` for the process to exit by itself, then kills it.
    fn reap(&self, grace: Duration) -> Exit {
        let until = Instant::now() + grace;
        loop {
            {
                let mut child = lock(&self.child);
                match child.try_wait() {
                    Ok(Some(status)) => return Exit::Exited(status),
                    Ok(None) => {}
                    Err(error) => return Exit::Unknown(error),
                }
                if Instant::now() >= until {
                    let _ = child.kill();
                    return match child.wait() {
                        Ok(_) => Exit::Killed,
                        Err(error) => Exit::Unknown(error),
                    };
                }
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Closes stdin, gives the process `grace` to exit, kills it otherwise, and joins
    /// its threads. Calls in flight fail with `unavailable`.
    fn close(&self, grace: Duration) -> Exit {
        self.closing.store(true, Ordering::SeqCst);
        lock(&self.outbox).take();
        let exit = self.reap(grace);
        self.join_threads();
        // The reader fails pending calls when it sees the end; if it could not be
        // joined, do it here so that no caller waits for its deadline.
        let pending = lock(&self.pending).take().unwrap_or_default();
        for (_, caller) in pending {
            let _ = caller.send(Err(unavailable(format!(
                "the provider process for `{}` was shut down",
                self.ability
            ))));
        }
        exit
    }

    /// Ends a process that never became live.
    fn abandon(&self, grace: Duration) -> Exit {
        self.close(grace)
    }

    fn join_threads(&self) {
        let threads = std::mem::take(&mut *lock(&self.threads));
        for (role, handle) in threads {
            join_within(handle, JOIN_GRACE, role);
        }
    }
}

/// Joins a thread if it finishes within `grace`; otherwise leaves it running rather
/// than hang the caller.
fn join_within(handle: JoinHandle<()>, grace: Duration, role: &str) {
    let until = Instant::now() + grace;
    while !handle.is_finished() && Instant::now() < until {
        thread::sleep(Duration::from_millis(5));
    }
    if handle.is_finished() {
        if handle.join().is_err() {
            tracing::error!(role, "a provider process thread panicked");
        }
    } else {
        tracing::warn!(role, "a provider process thread did not finish; leaving it");
    }
}

fn check_hello(settings: &ProcessSettings, frame: &Value) -> Hello {
    let Some(hello) = field(frame, "hello") else {
        return Hello::Protocol(
            "its first frame is not a hello ({hello: {protocol, ability, operations}})".to_owned(),
        );
    };
    match field(hello, "protocol")
        .and_then(Value::as_integer)
        .map(i128::from)
    {
        Some(protocol) if protocol == i128::from(PROTOCOL) => {}
        Some(protocol) => {
            return Hello::Mismatch(format!(
                "it speaks protocol {protocol}; this node speaks protocol {PROTOCOL}"
            ));
        }
        None => return Hello::Protocol("its hello has no integer `protocol`".to_owned()),
    }
    match field(hello, "ability").and_then(Value::as_text) {
        Some(ability) if ability == settings.ability => {}
        Some(ability) => {
            return Hello::Mismatch(format!("it says it provides ability `{ability}`"));
        }
        None => return Hello::Protocol("its hello has no text `ability`".to_owned()),
    }
    let Some(offered) = field(hello, "operations")
        .and_then(Value::as_array)
        .and_then(|operations| {
            operations
                .iter()
                .map(Value::as_text)
                .collect::<Option<Vec<_>>>()
        })
    else {
        return Hello::Protocol("its hello has no `operations` array of text".to_owned());
    };
    let missing: Vec<&str> = settings
        .operations
        .iter()
        .map(String::as_str)
        .filter(|operation| !offered.contains(operation))
        .collect();
    if !missing.is_empty() {
        return Hello::Mismatch(format!(
            "it does not serve {} (it serves {})",
            quoted_list(&missing),
            quoted_list(&offered)
        ));
    }
    Hello::Accepted
}

fn quoted_list(items: &[&str]) -> String {
    if items.is_empty() {
        return "nothing".to_owned();
    }
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Turns a provider's `{kind, message}` into an ability error; kinds this node does
/// not know become `failed`, keeping the message.
fn provider_error(error: &Value) -> AbilityError {
    let kind = field(error, "kind").and_then(Value::as_text);
    let message = field(error, "message")
        .and_then(Value::as_text)
        .unwrap_or_default();
    AbilityError::new(
        kind.map_or(ErrorKind::Failed, ErrorKind::from_name),
        message,
    )
}

fn unavailable(message: String) -> AbilityError {
    AbilityError::new(ErrorKind::Unavailable, message)
}

#[derive(Debug, thiserror::Error)]
enum FrameError {
    #[error("reading its output failed: {0}")]
    Io(#[from] io::Error),
    #[error("its output ended in the middle of a frame")]
    Truncated,
    #[error("it sent a frame of {0} bytes; frames are at most 16 MiB")]
    TooLarge(u64),
    #[error("it sent a frame that is not one CBOR item: {0}")]
    Cbor(String),
}

/// Reads one frame; `None` at a clean end of the stream between frames.
fn read_frame(reader: &mut impl Read) -> Result<Option<Value>, FrameError> {
    let mut prefix = [0u8; 4];
    let mut filled = 0;
    while filled < prefix.len() {
        match reader.read(&mut prefix[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error.into()),
        }
    }
    let length = u64::from(u32::from_be_bytes(prefix));
    if length > MAX_FRAME_BYTES as u64 {
        return Err(FrameError::TooLarge(length));
    }
    // Read through `take` rather than allocating the announced length up front.
    let mut bytes = Vec::new();
    reader.take(length).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != length {
        return Err(FrameError::Truncated);
    }
    let mut rest = bytes.as_slice();
    let value: Value =
        ciborium::from_reader(&mut rest).map_err(|error| FrameError::Cbor(error.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Cbor(format!(
            "{} bytes follow the item",
            rest.len()
        )));
    }
    Ok(Some(value))
}

fn encode_frame(value: &Value) -> Result<Vec<u8>, String> {
    let mut frame = vec![0u8; 4];
    ciborium::into_writer(value, &mut frame)
        .map_err(|error| format!("cannot encode the request: {error}"))?;
    let length = frame.len() - 4;
    if length > MAX_FRAME_BYTES {
        return Err(format!(
            "the request is {length} bytes encoded; provider frames are at most 16 MiB"
        ));
    }
    // Fits: checked against MAX_FRAME_BYTES just above.
    frame[..4].copy_from_slice(&(length as u32).to_be_bytes());
    Ok(frame)
}

fn command_line(command: &[String]) -> String {
    command
        .iter()
        .map(|arg| {
            if arg.is_empty() || arg.contains(char::is_whitespace) {
                format!("{arg:?}")
            } else {
                arg.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
