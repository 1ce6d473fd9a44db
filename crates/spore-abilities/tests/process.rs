//! External provider processes against real child processes: small Python 3 providers
//! written into a temporary directory, whose behaviour is chosen by their argument.
//!
//! Calls go through `ProcessProvider::call_until`, which is `Provider::call` without
//! an `AbilityContext` (the runtime is the only place that makes one).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_abilities::process::ProcessError;
use spore_abilities::{ProcessProvider, ProcessSettings};
use spore_core::{FunctionRef, Hash};
use spore_runtime::{AbilityContext, AbilityError, ErrorKind, Provider};

/// The test provider. Modes (first argument):
/// - `good`: serves `sensor` and answers every request on a thread of its own, so
///   answers come back in whatever order they finish. Operations: `read` (42), `echo`,
///   `sleep` ({n, ms}: answers n after ms), `pid`, `crash` (exits 3), `hang` (never
///   answers), `fail` (a `not_found` error), `weird` (an error of an unknown kind),
///   `garbage` (writes bytes that are no frame), `twice` (answers twice with its id),
///   `stray` (first answers an id it was never sent), `shout` (writes control
///   characters to stderr and in an error message), `long` (a 100 000-byte error
///   message). Answers of `twice` and `stray` are the request's id.
/// - `stubborn`: like `good`, but keeps running when its stdin closes.
/// - `deaf`: says hello, then never reads its stdin (until it is killed).
/// - `wrong-ability`, `missing-op`, `wrong-protocol`: a hello that does not match;
///   `control-hello`: one naming an ability with control characters in it.
/// - `silent`: never says hello (until it is killed).
/// - `slow`: like `good`, after 1.5 s without a word.
/// - `die-early`: writes to stderr and exits 1 before any hello.
/// - `garbage-hello`: writes bytes that are no frame instead of a hello.
const PROVIDER: &str = r#"
import os, struct, sys, threading, time

def head(major, n):
    if n < 24: return bytes([major << 5 | n])
    if n < 0x100: return bytes([major << 5 | 24, n])
    if n < 0x10000: return bytes([major << 5 | 25]) + struct.pack(">H", n)
    if n < 0x100000000: return bytes([major << 5 | 26]) + struct.pack(">I", n)
    return bytes([major << 5 | 27]) + struct.pack(">Q", n)

def enc(v):
    if v is None: return b"\xf6"
    if v is True: return b"\xf5"
    if v is False: return b"\xf4"
    if isinstance(v, int): return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, float): return b"\xfb" + struct.pack(">d", v)
    if isinstance(v, bytes): return head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return head(3, len(b)) + b
    if isinstance(v, list): return head(4, len(v)) + b"".join(enc(x) for x in v)
    if isinstance(v, tuple): return head(5, len(v)) + b"".join(enc(k) + enc(x) for k, x in v)
    if isinstance(v, dict): return enc(tuple(v.items()))
    raise TypeError(v)

def dec(b, i):
    major, info = b[i] >> 5, b[i] & 31
    i += 1
    if major == 7:
        if info == 20: return False, i
        if info == 21: return True, i
        if info == 22: return None, i
        if info == 25: return struct.unpack(">e", b[i:i + 2])[0], i + 2
        if info == 26: return struct.unpack(">f", b[i:i + 4])[0], i + 4
        if info == 27: return struct.unpack(">d", b[i:i + 8])[0], i + 8
        raise ValueError("simple value %d" % info)
    if info < 24: n = info
    else:
        size = {24: 1, 25: 2, 26: 4, 27: 8}[info]
        n, i = int.from_bytes(b[i:i + size], "big"), i + size
    if major == 0: return n, i
    if major == 1: return -1 - n, i
    if major == 2: return b[i:i + n], i + n
    if major == 3: return b[i:i + n].decode(), i + n
    if major == 4:
        items = []
        for _ in range(n):
            x, i = dec(b, i)
            items.append(x)
        return items, i
    if major == 5:
        # Kept as pairs, so that maps survive an echo whatever their keys.
        pairs = []
        for _ in range(n):
            k, i = dec(b, i)
            x, i = dec(b, i)
            pairs.append((k, x))
        return tuple(pairs), i
    if major == 6: return dec(b, i)
    raise ValueError("major type %d" % major)

def get(pairs, key):
    return next(x for k, x in pairs if k == key)

out = sys.stdout.buffer
out_lock = threading.Lock()

def send(v):
    frame = enc(v)
    with out_lock:
        out.write(struct.pack(">I", len(frame)) + frame)
        out.flush()

def read_exactly(n):
    data = b""
    while len(data) < n:
        chunk = sys.stdin.buffer.read(n - len(data))
        if not chunk: return None
        data += chunk
    return data

def serve(req):
    rid, op, arg = get(req, "id"), get(req, "operation"), get(req, "request")
    if op == "read": send({"id": rid, "ok": 42})
    elif op == "echo": send({"id": rid, "ok": arg})
    elif op == "sleep":
        time.sleep(get(arg, "ms") / 1000.0)
        send({"id": rid, "ok": get(arg, "n")})
    elif op == "pid": send({"id": rid, "ok": os.getpid()})
    elif op == "crash":
        sys.stderr.write("crashing on request %d\n" % rid)
        sys.stderr.flush()
        os._exit(3)
    elif op == "hang": pass
    elif op == "fail": send({"id": rid, "error": {"kind": "not_found", "message": "no such sensor"}})
    elif op == "weird": send({"id": rid, "error": {"kind": "sensor_on_fire", "message": "it is on fire"}})
    elif op == "garbage":
        with out_lock:
            out.write(b"\xff\xff\xff\xff this is no frame")
            out.flush()
    elif op == "twice":
        send({"id": rid, "ok": rid})
        send({"id": rid, "ok": rid})
    elif op == "stray":
        send({"id": rid + 1000000, "ok": 0})
        send({"id": rid, "ok": rid})
    elif op == "shout":
        sys.stderr.write("stderr says \x1b]0;pwned\x07 hi\rFORGED\n")
        sys.stderr.flush()
        send({"id": rid, "error": {"kind": "failed", "message": "one\nFORGED line\x1b]0;pwned\x07\x1b[31mred"}})
    elif op == "long":
        send({"id": rid, "error": {"kind": "failed", "message": "x" * 100000}})
    else: send({"id": rid, "error": {"kind": "bad_request", "message": "unknown operation " + op}})

OPERATIONS = ["read", "echo", "sleep", "pid", "crash", "hang", "fail", "weird", "garbage", "twice", "stray", "shout", "long"]
mode = sys.argv[1]
if mode == "die-early":
    sys.stderr.write("boom: no sensor attached\n")
    sys.exit(1)
if mode == "garbage-hello":
    out.write(b"\x00\x00\x00\x03\xff\xff\xff")
    out.flush()
    time.sleep(10)
    sys.exit(0)
hello = {"protocol": 1, "ability": "sensor", "operations": OPERATIONS}
if mode == "wrong-ability": hello["ability"] = "thermometer"
if mode == "missing-op": hello["operations"] = ["read"]
if mode == "wrong-protocol": hello["protocol"] = 2
if mode == "control-hello": hello["ability"] = "thermo\nmeter\x1b[0m"
if mode == "silent":
    while True: time.sleep(1)
if mode == "slow": time.sleep(1.5)
send({"hello": hello})
if mode == "deaf":
    while True: time.sleep(1)

while True:
    prefix = read_exactly(4)
    if prefix is None: break
    body = read_exactly(struct.unpack(">I", prefix)[0])
    if body is None: break
    req, _ = dec(body, 0)
    threading.Thread(target=serve, args=(req,), daemon=True).start()

if mode == "stubborn":
    while True: time.sleep(1)
"#;

struct Script {
    // Kept so the directory outlives the providers started from it.
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn script() -> Script {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sensor.py");
    std::fs::write(&path, PROVIDER).expect("write the provider script");
    Script { _dir: dir, path }
}

fn settings(script: &Path, mode: &str) -> ProcessSettings {
    ProcessSettings {
        ability: "sensor".into(),
        operations: vec!["read".into(), "echo".into()],
        command: vec!["python3".into(), script.display().to_string(), mode.into()],
        timeout: Duration::from_secs(5),
        ..ProcessSettings::default()
    }
}

fn start(script: &Script, mode: &str) -> Arc<ProcessProvider> {
    ProcessProvider::start(settings(&script.path, mode))
        .unwrap_or_else(|error| panic!("start `{mode}`: {error}"))
}

fn call(
    provider: &ProcessProvider,
    operation: &str,
    request: Value,
    within: Duration,
) -> Result<Value, AbilityError> {
    provider.call_until(Instant::now() + within, operation, request)
}

/// What the runtime hands a provider: the calling function's context, with its deadline.
fn context(within: Duration) -> AbilityContext {
    let function = FunctionRef {
        module: Hash::of(b"caller"),
        export: None,
    };
    AbilityContext::new(function, 1, Instant::now() + within, 0)
}

fn read(provider: &ProcessProvider) -> Result<Value, AbilityError> {
    call(provider, "read", Value::Null, Duration::from_secs(5))
}

fn uint(value: &Value) -> u64 {
    value
        .as_integer()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or_else(|| panic!("expected an unsigned integer, got {value:?}"))
}

fn text(value: &str) -> Value {
    Value::Text(value.into())
}

fn expect_error(result: Result<Value, AbilityError>, kind: ErrorKind) -> AbilityError {
    match result {
        Ok(value) => panic!("expected a {kind} error, got {value:?}"),
        Err(error) => {
            assert_eq!(error.kind, kind, "unexpected error: {error}");
            error
        }
    }
}

/// Whether a process with this pid exists and is not a zombie.
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesized command name, which may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Whether the pid is gone entirely: neither running nor left as a zombie.
fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// Polls `ready` until it holds, for at most `limit`.
fn wait_for(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
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

#[test]
fn shutdown_leaves_no_process_and_fails_later_calls() {
    let script = script();
    let provider = start(&script, "good");
    let pid = provider.pid().expect("running");
    assert!(running(pid));

    let in_flight = {
        let provider = Arc::clone(&provider);
        thread::spawn(move || call(&provider, "hang", Value::Null, Duration::from_secs(8)))
    };
    thread::sleep(Duration::from_millis(200));
    provider.shutdown();
    assert!(gone(pid), "process {pid} is still there after shutdown");
    expect_error(
        in_flight.join().expect("caller panicked"),
        ErrorKind::Unavailable,
    );
    let error = expect_error(read(&provider), ErrorKind::Unavailable);
    assert!(error.message.contains("shut down"), "{error}");
    // Idempotent.
    provider.shutdown();
}

#[test]
fn dropping_the_provider_ends_the_process() {
    let script = script();
    let provider = start(&script, "good");
    let pid = provider.pid().expect("running");
    drop(provider);
    assert!(gone(pid), "process {pid} is still there after drop");
}

#[test]
fn a_process_that_ignores_shutdown_is_killed() {
    let script = script();
    let provider = start(&script, "stubborn");
    let pid = provider.pid().expect("running");
    let started = Instant::now();
    provider.shutdown();
    let took = started.elapsed();
    assert!(gone(pid), "process {pid} is still there after shutdown");
    assert!(
        took >= Duration::from_millis(1500),
        "it was not given a grace period: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}

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

#[test]
fn a_process_that_never_says_hello_times_out_at_the_callers_deadline() {
    let script = script();
    let provider = ProcessProvider::on_first_use(settings(&script.path, "silent"));
    let started = Instant::now();
    let error = expect_error(
        provider.call(&context(Duration::from_secs(1)), "read", Value::Null),
        ErrorKind::Timeout,
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(950),
        "gave up early: {took:?}"
    );
    assert!(took < Duration::from_millis(1600), "gave up late: {took:?}");
    assert!(
        error
            .message
            .contains(&format!("python3 {} silent", script.path.display())),
        "names the process: {error}"
    );
    assert!(error.message.contains("`sensor`"), "{error}");
    assert!(error.message.contains("hello"), "{error}");
    // It goes on starting for later calls.
    assert!(
        provider.describe().ends_with("(starting)"),
        "{}",
        provider.describe()
    );
    // And a shutdown does not wait for its hello either.
    let started = Instant::now();
    provider.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_process_started_on_first_use_goes_on_starting_after_a_caller_gives_up() {
    let script = script();
    let provider = ProcessProvider::on_first_use(settings(&script.path, "slow"));
    assert_eq!(provider.pid(), None, "nothing runs before the first call");
    assert!(
        provider.describe().ends_with("(started on first use)"),
        "{}",
        provider.describe()
    );
    thread::sleep(Duration::from_millis(200));
    assert_eq!(provider.pid(), None);

    // Its hello comes after 1.5 s: a caller with half a second gives up...
    expect_error(
        provider.call(&context(Duration::from_millis(500)), "read", Value::Null),
        ErrorKind::Timeout,
    );
    // ...and one that can wait gets its answer from that same start: no restart.
    let answer = provider
        .call(&context(Duration::from_secs(5)), "read", Value::Null)
        .expect("read once started");
    assert_eq!(uint(&answer), 42);
    assert!(provider.pid().is_some());
    assert_eq!(provider.restarts(), 0);

    // A start that fails is reported to the caller at once and retried like a crash.
    let provider = ProcessProvider::on_first_use(settings(&script.path, "die-early"));
    let error = expect_error(
        provider.call(&context(Duration::from_secs(5)), "read", Value::Null),
        ErrorKind::Unavailable,
    );
    assert!(
        error.message.contains("boom: no sensor attached"),
        "{error}"
    );
}
