//! The local HTTP API of a real `spore node run` (docs/api.md), spoken to over raw TCP so
//! that a test controls every byte: connections that never finish their request, bodies
//! over the limits, malformed requests, and a client that hangs up mid-call.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{RunningNode, Spore};

/// docs/api.md, "Connections and limits".
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: usize = 256;
const MAX_JSON_BODY: u64 = 8 << 20;
const MAX_MODULE_BODY: u64 = 128 << 20;

/// A `spore node run` process whose API the tests speak to by hand.
pub struct ApiNode(RunningNode);

impl std::ops::Deref for ApiNode {
    type Target = RunningNode;

    fn deref(&self) -> &RunningNode {
        &self.0
    }
}

impl ApiNode {
    pub fn start() -> ApiNode {
        ApiNode(RunningNode::start(&[]))
    }

    /// Starts a node on `spore`'s home that joins the mesh through `bootstrap`.
    pub fn start_with(spore: Spore, bootstrap: &[String]) -> ApiNode {
        let bootstrap: Vec<&str> = bootstrap.iter().map(String::as_str).collect();
        ApiNode(RunningNode::start_at(spore, &bootstrap))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The sockets the node's process holds open (however many descriptors each).
    fn open_sockets(&self) -> usize {
        let sockets: std::collections::HashSet<_> =
            std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
                .unwrap()
                .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
                .filter(|target| target.to_string_lossy().starts_with("socket:"))
                .collect();
        sockets.len()
    }

    /// The CPU time the node's process has used, all threads together.
    fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // The fields after the command name (which may hold spaces) in parentheses;
        // utime and stime are the 14th and 15th fields of the line, in clock ticks
        // (USER_HZ, 100 on Linux).
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }

    /// The CPU time the node uses over the next `window`.
    fn cpu_used_over(&self, window: Duration) -> Duration {
        let before = self.cpu_time();
        std::thread::sleep(window);
        self.cpu_time() - before
    }

    fn connect(&self) -> TcpStream {
        TcpStream::connect(&self.api).unwrap()
    }

    /// Sends `request` on a new connection and reads the answer to the end.
    fn exchange(&self, request: &[u8]) -> Answer {
        let mut stream = self.connect();
        stream.write_all(request).unwrap();
        Answer::read(&mut stream, Duration::from_secs(10))
    }
}

/// An HTTP answer as it came over the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    /// Reads an answer until the server closes the connection (a reset after the answer
    /// counts as closing: the server may close with a request body still unread).
    fn read(stream: &mut TcpStream, within: Duration) -> Answer {
        stream.set_read_timeout(Some(within)).unwrap();
        let mut bytes = Vec::new();
        let mut buffer = [0; 65536];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset && !bytes.is_empty() => break,
                Err(e) => panic!(
                    "no complete answer within {within:?} ({e}); got {:?}",
                    String::from_utf8_lossy(&bytes)
                ),
            }
        }
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {text}"));
        Answer {
            status,
            head: head.to_ascii_lowercase(),
            body: body.to_owned(),
        }
    }

    /// Asserts that the answer is the API's error record with `status` and `kind`, and
    /// returns its message.
    #[track_caller]
    fn error(&self, status: u16, kind: &str) -> String {
        assert_eq!(self.status, status, "{self:#?}");
        assert!(
            self.head.contains("content-type: application/json"),
            "{self:#?}"
        );
        let body: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"));
        assert_eq!(body["error"]["kind"], kind, "{self:#?}");
        let message = body["error"]["message"].as_str().expect("a message");
        assert!(!message.is_empty(), "{self:#?}");
        message.to_owned()
    }
}

/// A request with a JSON body and a declared length.
fn post_json(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: spore\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Waits until the server closes `stream` (EOF, possibly after an answer, or a reset),
/// at most until `deadline`; returns whether it did.
fn closed_by(mut stream: &TcpStream, deadline: Instant) -> bool {
    let mut buffer = [0; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(e) => panic!("reading: {e}"),
        }
    }
}

/// Opens `count` connections that each send half a request line and nothing more.
fn half_sent_requests(node: &ApiNode, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|_| {
            let mut stream = node.connect();
            stream.write_all(b"GET /v1/modu").unwrap();
            stream
        })
        .collect()
}

#[test]
fn half_sent_requests_are_closed_after_the_head_timeout_and_the_cli_is_served_meanwhile() {
    let node = ApiNode::start();
    let arith = node.spore.publish("arith", None);
    let opened = Instant::now();
    let stalled = half_sent_requests(&node, 200);

    // The stalled connections take no turn from the CLI.
    for _ in 0..3 {
        let listed = node.spore.run(&["ls"]);
        assert!(listed.ok().contains(&arith[..12]), "{listed:#?}");
    }

    let deadline = opened + REQUEST_HEAD_TIMEOUT + Duration::from_secs(3);
    let still_open = stalled
        .iter()
        .filter(|stream| !closed_by(stream, deadline))
        .count();
    assert_eq!(
        still_open,
        0,
        "connections still open {:?} after they stalled",
        opened.elapsed()
    );
    assert!(node.spore.run(&["ls"]).ok().contains(&arith[..12]));
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_head_timeout() {
    let node = ApiNode::start();
    let mut stream = node.connect();
    stream
        .write_all(b"GET /v1/info HTTP/1.1\r\nhost: spore\r\n\r\n")
        .unwrap();
    // One answer, then the connection stays open for the next request, but not forever.
    let answered = Instant::now();
    let mut buffer = [0; 4096];
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let n = stream.read(&mut buffer).unwrap();
    assert!(
        String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buffer[..n])
    );
    assert!(
        !closed_by(&stream, answered + Duration::from_secs(1)),
        "a keep-alive connection may take its next request at once"
    );
    assert!(
        closed_by(
            &stream,
            answered + REQUEST_HEAD_TIMEOUT + Duration::from_secs(3)
        ),
        "an idle connection is still open after {:?}",
        answered.elapsed()
    );
}

#[test]
fn connections_past_the_cap_wait_in_the_kernel_not_in_the_node() {
    let node = ApiNode::start();
    let before = node.open_sockets();
    let waiting = MAX_CONNECTIONS + 150;
    let _stalled = half_sent_requests(&node, waiting);
    // The most the node holds while it accepts what it is willing to.
    let held = (0..10)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(200));
            node.open_sockets().saturating_sub(before)
        })
        .max()
        .unwrap();
    assert!(
        held <= MAX_CONNECTIONS + 8,
        "the node holds {held} more sockets with {waiting} connections waiting"
    );
    assert!(
        held >= MAX_CONNECTIONS / 2,
        "it took only {held} connections"
    );
    // The timeout frees the slots; the waiting connections then get theirs and time out
    // in turn; the node is back to serving the CLI.
    let started = Instant::now();
    loop {
        let run = node.spore.run(&["--json", "ls"]);
        if run.code == 0 {
            break;
        }
        assert!(
            started.elapsed() < REQUEST_HEAD_TIMEOUT * 3,
            "the node never served the CLI again: {run:#?}"
        );
    }
}

#[test]
fn a_declared_length_over_the_limit_is_refused_before_the_body_is_sent() {
    let node = ApiNode::start();
    for (path, content_type, limit) in [
        ("/v1/invoke", "application/json", MAX_JSON_BODY),
        ("/v1/names/set", "application/json", MAX_JSON_BODY),
        ("/v1/publish", "application/wasm", MAX_MODULE_BODY),
    ] {
        // Only the head is sent: the answer must come without waiting for the body.
        let answer = node.exchange(
            format!(
                "POST {path} HTTP/1.1\r\nhost: spore\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
                limit + 1
            )
            .as_bytes(),
        );
        let message = answer.error(413, "too_large");
        assert!(message.contains(&limit.to_string()), "{path}: {message}");
    }
    // At the limit a body is read (and here refused for what it is, not its size).
    let mut stream = node.connect();
    stream
        .write_all(
            format!(
                "POST /v1/invoke HTTP/1.1\r\nhost: spore\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {MAX_JSON_BODY}\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    stream
        .write_all(&vec![b' '; MAX_JSON_BODY as usize])
        .unwrap();
    Answer::read(&mut stream, Duration::from_secs(10)).error(400, "bad_request");
}

#[test]
fn a_chunked_body_stops_being_read_at_the_limit() {
    let node = ApiNode::start();
    let mut stream = node.connect();
    stream
        .write_all(b"POST /v1/invoke HTTP/1.1\r\nhost: spore\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
        .unwrap();
    let mut reader = stream.try_clone().unwrap();
    let answer = std::thread::spawn(move || Answer::read(&mut reader, Duration::from_secs(30)));

    // An endless argument, sent until the node stops reading it.
    let attempt = 8 * MAX_JSON_BODY;
    let chunk = [b'7'; 65536];
    let mut sent = 0;
    let mut write = |bytes: &[u8]| stream.write_all(bytes).is_ok();
    let start = br#"{"reference":"x","args":[1"#;
    if write(format!("{:x}\r\n", start.len()).as_bytes()) && write(start) && write(b"\r\n") {
        while sent < attempt && write(b"10000\r\n") && write(&chunk) && write(b"\r\n") {
            sent += chunk.len() as u64;
        }
    }
    // What the kernel's socket buffers hold on loopback comes on top of what was read.
    assert!(
        sent < MAX_JSON_BODY + (32 << 20),
        "{sent} bytes were taken for a limit of {MAX_JSON_BODY}"
    );
    answer.join().unwrap().error(413, "too_large");
}

#[test]
fn every_error_is_the_documented_json_with_the_status_of_its_kind() {
    let node = ApiNode::start();
    let get = |path: &str| {
        node.exchange(
            format!("GET {path} HTTP/1.1\r\nhost: spore\r\nconnection: close\r\n\r\n").as_bytes(),
        )
    };

    let message = get("/v1/nothing-here").error(404, "not_found");
    assert!(message.contains("/v1/nothing-here"), "{message}");
    get("/").error(404, "not_found");

    let wrong_method = node.exchange(
        b"POST /v1/info HTTP/1.1\r\nhost: spore\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
    );
    let message = wrong_method.error(400, "bad_request");
    assert!(
        message.contains("/v1/info") && message.contains("POST"),
        "{message}"
    );
    assert!(
        wrong_method.head.contains("allow: get"),
        "{wrong_method:#?}"
    );

    let call = r#"{"reference":"abcdef"}"#;
    let untyped = node.exchange(
        format!(
            "POST /v1/invoke HTTP/1.1\r\nhost: spore\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{call}",
            call.len()
        )
        .as_bytes(),
    );
    let message = untyped.error(400, "bad_request");
    assert!(message.contains("application/json"), "{message}");
    let mistyped = node.exchange(
        format!(
            "POST /v1/invoke HTTP/1.1\r\nhost: spore\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{call}",
            call.len()
        )
        .as_bytes(),
    );
    mistyped.error(400, "bad_request");

    let message = node
        .exchange(&post_json("/v1/invoke", r#"{"reference": "#))
        .error(400, "bad_request");
    assert!(message.contains("JSON"), "{message}");
    let message = node
        .exchange(&post_json(
            "/v1/invoke",
            r#"{"reference":"abcdef","colour":"red"}"#,
        ))
        .error(400, "bad_request");
    assert!(message.contains("colour"), "{message}");
    node.exchange(&post_json("/v1/names/set", r#"{"name":"x"}"#))
        .error(400, "bad_request");
    get("/v1/names/history?name=%ZZ").error(400, "bad_request");

    let oversized = node.exchange(
        format!(
            "POST /v1/invoke HTTP/1.1\r\nhost: spore\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            MAX_JSON_BODY * 4
        )
        .as_bytes(),
    );
    oversized.error(413, "too_large");

    // Errors of the node keep their kind, as before.
    node.exchange(&post_json("/v1/invoke", r#"{"reference":"abcdef"}"#))
        .error(404, "not_found");
    // And the API still answers what it should.
    let info = get("/v1/info");
    assert_eq!(info.status, 200, "{info:#?}");
    let info: serde_json::Value = serde_json::from_str(&info.body).unwrap();
    assert_eq!(info["api"], node.api.as_str());
}

#[test]
fn a_call_stops_when_the_cli_waiting_for_it_is_killed() {
    let node = ApiNode::start();
    let faults = node.spore.publish("faults", None);
    let idle = node.cpu_used_over(Duration::from_millis(500));

    let mut client = Command::new(env!("CARGO_BIN_EXE_spore"))
        .arg("--home")
        .arg(node.spore.home())
        .args(["invoke", &format!("{faults}:spin"), "--timeout", "30s"])
        .env_remove("SPORE_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The node spins a core for the call.
    let started = Instant::now();
    while node.cpu_used_over(Duration::from_millis(500)) < Duration::from_millis(200) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the call never started to spin"
        );
    }

    client.kill().unwrap();
    client.wait().unwrap();
    let killed = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let used = node.cpu_used_over(Duration::from_secs(1));
    assert!(
        used < Duration::from_millis(150) + idle * 2,
        "the node used {used:?} of CPU in the second after its client was killed for a 30 s call"
    );
    let echoed = node.spore.invoke(&format!("{faults}:echo"), &["[1]"]);
    assert_eq!(echoed, serde_json::json!([1]));
    assert!(killed.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_call_stops_when_its_client_hangs_up_with_a_request_still_queued() {
    let node = ApiNode::start();
    let faults = node.spore.publish("faults", None);
    let idle = node.cpu_used_over(Duration::from_millis(500));

    // A client that queued its next request behind the call (HTTP pipelining), then hung
    // up: the server has unread bytes and no reason to read while the call runs.
    let mut stream = node.connect();
    let mut requests = post_json(
        "/v1/invoke",
        &format!(r#"{{"reference":"{faults}:spin","timeout_ms":30000}}"#),
    );
    requests.extend_from_slice(b"GET /v1/info HTTP/1.1\r\nhost: spore\r\n\r\n");
    stream.write_all(&requests).unwrap();
    let started = Instant::now();
    while node.cpu_used_over(Duration::from_millis(500)) < Duration::from_millis(200) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the call never started to spin"
        );
    }
    drop(stream);
    std::thread::sleep(Duration::from_secs(1));
    let used = node.cpu_used_over(Duration::from_secs(1));
    assert!(
        used < Duration::from_millis(150) + idle * 2,
        "the node used {used:?} of CPU in the second after its client hung up on a 30 s call"
    );
}
