//! One running provider process and the threads that talk to it.
//!
//! A [`Connection`] owns the child process. Its writer thread owns stdin and writes the
//! frames callers queue; its reader thread owns stdout, judges the hello, then routes
//! each answer by id to the caller waiting for it; a third thread forwards stderr to the
//! log. Callers wait on a channel of their own, with their deadline.
//!
//! When the process ends or breaks the protocol, the reader fails every call in flight
//! with `unavailable` and tells the supervisor (`Shared::mark_down`).

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_core::text::{MAX_MESSAGE_BYTES, printable};
use spore_runtime::{AbilityError, ErrorKind};

use super::calls::{Calls, Routed, WarningBudget};
use super::protocol::{self, Hello, Reply};
use super::supervisor::Shared;
use super::{ProcessError, lock, unavailable};

/// How long a starting process has to send its hello.
pub(super) const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a process that closed its stdout has to exit before it is killed; long
/// enough to collect the exit status of one that is exiting anyway.
pub(super) const EXIT_GRACE: Duration = Duration::from_millis(200);
/// How long to wait for a thread of a finished process; a grandchild that inherited a
/// pipe can keep one running, and shutdown must not hang on it.
pub(super) const JOIN_GRACE: Duration = Duration::from_secs(1);
/// Lines of stderr kept to explain a process that dies before its hello.
const STDERR_TAIL_LINES: usize = 5;
/// Requests queued for a process's stdin beyond what the pipe holds. A process that
/// falls this far behind (or stopped reading) fails further calls at once, naming the
/// problem, rather than letting requests pile up in memory until their deadlines.
const OUTBOX_FRAMES: usize = 256;
/// Longest stderr line read at once; the rest of a longer line comes as further lines.
/// Each is cut to `MAX_MESSAGE_BYTES` when logged.
const MAX_STDERR_LINE: u64 = 64 * 1024;

/// One running process and the threads that talk to it.
pub(super) struct Connection {
    pub ability: String,
    pub pid: u32,
    pub started: Instant,
    child: Mutex<Child>,
    /// Frames for the writer thread. Taking the sender closes the process's stdin.
    outbox: Mutex<Option<mpsc::SyncSender<Vec<u8>>>>,
    /// The calls sent and not yet answered; `None` once the process ended.
    calls: Mutex<Option<Calls>>,
    /// Why the process ended, for calls that raced with its end.
    obituary: Mutex<Option<String>>,
    /// Set when the node ends the process on purpose, so that its exit is no crash.
    closing: AtomicBool,
    /// Its last lines of stderr, printable, to explain a process that dies early.
    stderr_tail: Mutex<VecDeque<String>>,
    threads: Mutex<Vec<(&'static str, JoinHandle<()>)>>,
}

/// How a process ended.
pub(super) enum Exit {
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

impl Connection {
    /// Spawns the process and waits for an acceptable hello, for at most
    /// [`HELLO_TIMEOUT`] or until the provider stops.
    pub fn start(shared: &Arc<Shared>) -> Result<Arc<Connection>, ProcessError> {
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
            calls: Mutex::new(Some(Calls::default())),
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
    pub fn call(&self, id: u64, operation: &str, request: Value, timeout: Duration) -> Reply {
        let deadline_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let frame = protocol::request_frame(id, operation, request, deadline_ms)?;

        let (reply_tx, reply_rx) = mpsc::channel();
        match lock(&self.calls).as_mut() {
            Some(calls) => calls.send(id, reply_tx),
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
            if let Some(calls) = lock(&self.calls).as_mut() {
                calls.unsent(id);
            }
            return Err(refusal);
        }

        match reply_rx.recv_timeout(timeout) {
            Ok(reply) => reply,
            Err(RecvTimeoutError::Timeout) => {
                let gave_up = lock(&self.calls)
                    .as_mut()
                    .is_some_and(|calls| calls.give_up(id));
                // The answer may have been routed between the timeout and now.
                if !gave_up && let Ok(reply) = reply_rx.try_recv() {
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
        let verdict = match protocol::read_frame(&mut stdout) {
            Ok(Some(frame)) => protocol::check_hello(&shared.settings, &frame),
            Ok(None) => Hello::Exited,
            Err(error) => Hello::Protocol(error.to_string()),
        };
        let accepted = matches!(verdict, Hello::Accepted);
        // If nobody listens any more, the start gave up and is ending the process.
        if hello.send(verdict).is_err() || !accepted {
            return;
        }
        let mut warnings = WarningBudget::new(Instant::now());
        let problem = loop {
            match protocol::read_frame(&mut stdout) {
                Ok(Some(frame)) => {
                    if let Err(problem) = self.route(frame, &mut warnings) {
                        break Some(problem);
                    }
                }
                Ok(None) => break None,
                Err(error) => break Some(error.to_string()),
            }
        };
        let suppressed = warnings.unreported();
        if suppressed > 0 {
            tracing::warn!(ability = %self.ability, pid = self.pid, "{suppressed} more answers nobody asked for were dropped without a warning each");
        }
        self.ended(shared, problem);
    }

    /// Hands an answer to the caller waiting for it. An answer that breaks the protocol
    /// is the `Err`; one for no call in flight is dropped, with a warning unless its
    /// caller merely gave up.
    fn route(&self, frame: Value, warnings: &mut WarningBudget) -> Result<(), String> {
        let protocol::Answer { id, reply } = protocol::answer(frame, &self.ability)?;
        let routed = match lock(&self.calls).as_mut() {
            Some(calls) => calls.answer(id),
            // The process is being ended; its calls have been failed already.
            None => return Ok(()),
        };
        let stray = match routed {
            Routed::To(caller) => {
                // The caller may have timed out just now; nothing to do then.
                let _ = caller.send(reply);
                return Ok(());
            }
            Routed::Abandoned => {
                tracing::debug!(ability = %self.ability, pid = self.pid, id, "dropped a late answer: its caller gave up");
                return Ok(());
            }
            Routed::NeverAsked => "which was never asked of this process",
            Routed::AnsweredAlready => "which was answered already",
        };
        if let Some(unreported) = warnings.spend(Instant::now()) {
            let unreported = match unreported {
                0 => String::new(),
                n => format!(" ({n} more like it before this were not logged)"),
            };
            tracing::warn!(ability = %self.ability, pid = self.pid, id, "the provider process sent an answer to call {id}, {stray}; dropped it{unreported}");
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
        self.fail_calls(&message);
    }

    /// Fails every call in flight with `unavailable`; later calls find the process gone.
    fn fail_calls(&self, message: &str) {
        let calls = lock(&self.calls).take().unwrap_or_default();
        for (_, caller) in calls.waiting {
            let _ = caller.send(Err(unavailable(message.to_owned())));
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
                    let logged = printable(text, MAX_MESSAGE_BYTES);
                    tracing::warn!(ability = %self.ability, pid = self.pid, "{logged}");
                    // Each line of the tail gets its share of the limit for foreign
                    // text, so that the tail quoted in an error stays within it.
                    let quoted = printable(text, MAX_MESSAGE_BYTES / STDERR_TAIL_LINES);
                    let mut tail = lock(&self.stderr_tail);
                    if tail.len() == STDERR_TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(quoted.into_owned());
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
    pub fn close(&self, grace: Duration) -> Exit {
        self.closing.store(true, Ordering::SeqCst);
        lock(&self.outbox).take();
        let exit = self.reap(grace);
        self.join_threads();
        // The reader fails pending calls when it sees the end; if it could not be
        // joined, do it here so that no caller waits for its deadline.
        self.fail_calls(&format!(
            "the provider process for `{}` was shut down",
            self.ability
        ));
        exit
    }

    /// Ends a process that never became live.
    fn abandon(&self, grace: Duration) -> Exit {
        self.close(grace)
    }

    pub fn join_threads(&self) {
        let threads = std::mem::take(&mut *lock(&self.threads));
        for (role, handle) in threads {
            join_within(handle, JOIN_GRACE, role);
        }
    }
}

/// Joins a thread if it finishes within `grace`; otherwise leaves it running rather
/// than hang the caller.
pub(super) fn join_within(handle: JoinHandle<()>, grace: Duration, role: &str) {
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
