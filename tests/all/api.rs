//! The local HTTP API of a real `spore node run` (docs/api.md), spoken to over raw TCP so
//! that a test controls every byte: connections that never finish their request, bodies
//! over the limits, malformed requests, and a client that hangs up mid-call.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{RunningNode, Spore, exit};

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

    /// A request with a JSON body and a declared length.
    fn post_json(&self, path: &str, body: &str) -> Vec<u8> {
        format!(
            "POST {path} HTTP/1.1\r\n{}connection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            self.api_headers(),
            body.len()
        )
        .into_bytes()
    }

    /// The port the API listens on.
    fn port(&self) -> u16 {
        self.api.rsplit_once(':').unwrap().1.parse().unwrap()
    }

    /// `GET path` with `headers` (each ending with CRLF), on a connection of its own.
    fn get_with(&self, path: &str, headers: &str) -> Answer {
        self.exchange(
            format!("GET {path} HTTP/1.1\r\n{headers}connection: close\r\n\r\n").as_bytes(),
        )
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
        .write_all(format!("GET /v1/info HTTP/1.1\r\n{}\r\n", node.api_headers()).as_bytes())
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
    let headers = node.api_headers();
    for (path, content_type, limit) in [
        ("/v1/invoke", "application/json", MAX_JSON_BODY),
        ("/v1/names/set", "application/json", MAX_JSON_BODY),
        ("/v1/publish", "application/wasm", MAX_MODULE_BODY),
    ] {
        // Only the head is sent: the answer must come without waiting for the body.
        let answer = node.exchange(
            format!(
                "POST {path} HTTP/1.1\r\n{headers}content-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
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
                "POST /v1/invoke HTTP/1.1\r\n{headers}connection: close\r\ncontent-type: application/json\r\ncontent-length: {MAX_JSON_BODY}\r\n\r\n"
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
        .write_all(format!("POST /v1/invoke HTTP/1.1\r\n{}content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n", node.api_headers()).as_bytes())
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
    let headers = node.api_headers();
    let get = |path: &str| {
        node.exchange(
            format!("GET {path} HTTP/1.1\r\n{headers}connection: close\r\n\r\n").as_bytes(),
        )
    };

    let message = get("/v1/nothing-here").error(404, "not_found");
    assert!(message.contains("/v1/nothing-here"), "{message}");
    get("/").error(404, "not_found");

    let wrong_method = node.exchange(
        format!(
            "POST /v1/info HTTP/1.1\r\n{headers}connection: close\r\ncontent-length: 0\r\n\r\n"
        )
        .as_bytes(),
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
            "POST /v1/invoke HTTP/1.1\r\n{headers}connection: close\r\ncontent-length: {}\r\n\r\n{call}",
            call.len()
        )
        .as_bytes(),
    );
    let message = untyped.error(400, "bad_request");
    assert!(message.contains("application/json"), "{message}");
    let mistyped = node.exchange(
        format!(
            "POST /v1/invoke HTTP/1.1\r\n{headers}connection: close\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{call}",
            call.len()
        )
        .as_bytes(),
    );
    mistyped.error(400, "bad_request");

    let message = node
        .exchange(&node.post_json("/v1/invoke", r#"{"reference": "#))
        .error(400, "bad_request");
    assert!(message.contains("JSON"), "{message}");
    let message = node
        .exchange(&node.post_json("/v1/invoke", r#"{"reference":"abcdef","colour":"red"}"#))
        .error(400, "bad_request");
    assert!(message.contains("colour"), "{message}");
    node.exchange(&node.post_json("/v1/names/set", r#"{"name":"x"}"#))
        .error(400, "bad_request");
    get("/v1/names/history?name=%ZZ").error(400, "bad_request");

    let oversized = node.exchange(
        format!(
            "POST /v1/invoke HTTP/1.1\r\n{headers}content-type: application/json\r\ncontent-length: {}\r\n\r\n",
            MAX_JSON_BODY * 4
        )
        .as_bytes(),
    );
    oversized.error(413, "too_large");

    // Errors of the node keep their kind, as before.
    node.exchange(&node.post_json("/v1/invoke", r#"{"reference":"abcdef"}"#))
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
    let mut requests = node.post_json(
        "/v1/invoke",
        &format!(r#"{{"reference":"{faults}:spin","timeout_ms":30000}}"#),
    );
    requests.extend_from_slice(
        format!("GET /v1/info HTTP/1.1\r\n{}\r\n", node.api_headers()).as_bytes(),
    );
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

/// A request to set the name `stolen` to `reference`, with `headers`.
fn set_stolen_name(reference: &str, headers: &str) -> Vec<u8> {
    let body = format!(r#"{{"name":"stolen","reference":"{reference}"}}"#);
    format!(
        "POST /v1/names/set HTTP/1.1\r\n{headers}connection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Asserts that `answer` is the refusal of a request without the node's token.
#[track_caller]
fn refused_for_its_token(answer: &Answer) -> String {
    let message = answer.error(401, "not_allowed");
    assert!(
        answer.head.contains("www-authenticate: bearer"),
        "{answer:#?}"
    );
    assert!(message.contains("api.token"), "{message}");
    message
}

#[test]
fn an_api_request_without_the_token_is_refused_with_401() {
    let node = ApiNode::start();
    let add = format!("{}:add", node.spore.publish("arith", None));
    let host = format!("host: {}\r\n", node.api);
    // A route, a path that is no route, a route asked with the wrong method, a write.
    refused_for_its_token(&node.get_with("/v1/info", &host));
    refused_for_its_token(&node.get_with("/v1/nothing-here", &host));
    refused_for_its_token(
        &node.exchange(
            format!(
                "POST /v1/info HTTP/1.1\r\n{host}connection: close\r\ncontent-length: 0\r\n\r\n"
            )
            .as_bytes(),
        ),
    );
    refused_for_its_token(&node.exchange(&set_stolen_name(&add, &host)));
    let names = node.spore.run(&["names", "ls"]);
    assert!(!names.ok().contains("stolen"), "{names:#?}");

    // The same request with the token is served.
    let answer = node.exchange(&set_stolen_name(&add, &node.api_headers()));
    assert_eq!(answer.status, 200, "{answer:#?}");
    assert!(node.spore.run(&["names", "ls"]).ok().contains("stolen"));
}

#[test]
fn an_api_request_with_a_wrong_token_is_refused_with_401() {
    let node = ApiNode::start();
    let add = format!("{}:add", node.spore.publish("arith", None));
    let host = format!("host: {}\r\n", node.api);
    let right = node.spore.api_authorization();
    let token = right.strip_prefix("Bearer ").unwrap();
    let last = token.chars().last().unwrap();
    let one_digit_off = format!("{}{}", &token[..63], if last == '0' { '1' } else { '0' });
    for authorization in [
        format!("Bearer {one_digit_off}"),
        format!("Bearer {}", "0".repeat(64)),
        format!("Bearer {}", &token[..32]),
        format!("Bearer {token}{token}"),
        format!("Basic {token}"),
        format!("Bearer{token}"),
        token.to_owned(),
        "Bearer".to_owned(),
    ] {
        let headers = format!("{host}authorization: {authorization}\r\n");
        let message = refused_for_its_token(&node.get_with("/v1/info", &headers));
        assert!(
            message.contains("not this node's"),
            "{authorization}: {message}"
        );
        refused_for_its_token(&node.exchange(&set_stolen_name(&add, &headers)));
    }
    let names = node.spore.run(&["names", "ls"]);
    assert!(!names.ok().contains("stolen"), "{names:#?}");
}

#[test]
fn an_api_request_with_the_token_is_answered() {
    let node = ApiNode::start();
    let answer = node.get_with("/v1/info", &node.api_headers());
    assert_eq!(answer.status, 200, "{answer:#?}");
    let info: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(info["api"], node.api.as_str());
    // `localhost` names a loopback API too, and the scheme is case-insensitive.
    let authorization = node.spore.api_authorization().replace("Bearer", "bearer");
    let answer = node.get_with(
        "/v1/info",
        &format!(
            "host: localhost:{}\r\nauthorization: {authorization}\r\n",
            node.port()
        ),
    );
    assert_eq!(answer.status, 200, "{answer:#?}");
}

#[test]
fn an_api_request_naming_another_host_is_refused_with_403() {
    let node = ApiNode::start();
    let authorization = format!("authorization: {}\r\n", node.spore.api_authorization());
    let port = node.port();
    for host in [
        format!("host: evil.example:{port}\r\n"),
        "host: evil.example\r\n".to_owned(),
        format!("host: 127.0.0.1:{}\r\n", port.wrapping_add(1)),
        // A second `Host` besides the right one.
        format!("host: {}\r\nhost: evil.example:{port}\r\n", node.api),
    ] {
        let message = node
            .get_with("/v1/info", &format!("{host}{authorization}"))
            .error(403, "not_allowed");
        assert!(message.contains("Host"), "{host}: {message}");
    }
    // A request line in absolute form names its host there.
    let absolute = node.exchange(
        format!(
            "GET http://evil.example:{port}/v1/info HTTP/1.1\r\nhost: {}\r\n{authorization}connection: close\r\n\r\n",
            node.api
        )
        .as_bytes(),
    );
    absolute.error(403, "not_allowed");
    // The host check comes first: without the token as well.
    node.get_with("/v1/info", &format!("host: evil.example:{port}\r\n"))
        .error(403, "not_allowed");
}

#[test]
fn an_api_request_without_a_host_is_refused_with_403() {
    let node = ApiNode::start();
    let authorization = format!("authorization: {}\r\n", node.spore.api_authorization());
    for version in ["HTTP/1.0", "HTTP/1.1"] {
        let answer = node.exchange(
            format!("GET /v1/info {version}\r\n{authorization}connection: close\r\n\r\n")
                .as_bytes(),
        );
        let message = answer.error(403, "not_allowed");
        assert!(message.contains("no `Host`"), "{version}: {message}");
    }
}

#[test]
fn the_api_token_is_owner_only_and_outlives_the_node() {
    use std::os::unix::fs::PermissionsExt;
    let node = ApiNode::start();
    let path = node.spore.home().join("api.token");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    let token = std::fs::read_to_string(&path).unwrap();
    assert_eq!(token.trim().len(), 64, "{token:?}");
    assert!(
        token.trim().bytes().all(|b| b.is_ascii_hexdigit()),
        "{token:?}"
    );

    let ApiNode(node) = node;
    let again = ApiNode::start_with(node.stop(), &[]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), token);
    let answer = again.get_with("/v1/info", &again.api_headers());
    assert_eq!(answer.status, 200, "{answer:#?}");
    again.spore.run(&["ls"]).ok();
}

#[test]
fn a_node_does_not_start_on_a_token_file_that_holds_no_token() {
    let spore = Spore::new();
    spore.run(&["ls"]).ok();
    std::fs::write(spore.home().join("api.token"), "hunter2\n").unwrap();
    let run = spore.run(&[
        "node",
        "run",
        "--no-mdns",
        "--api",
        "127.0.0.1:0",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ]);
    assert_ne!(run.code, 0, "{run:#?}");
    assert!(run.stderr.contains("is not an API token"), "{run:#?}");
    assert!(!spore.home().join("node.json").exists());
}

#[test]
fn the_cli_reports_a_token_it_cannot_use_instead_of_going_around_the_node() {
    let node = ApiNode::start();
    let path = node.spore.home().join("api.token");
    let token = std::fs::read_to_string(&path).unwrap();

    std::fs::remove_file(&path).unwrap();
    let stderr = node
        .spore
        .run(&["ls"])
        .fails_with(exit::NOT_ALLOWED)
        .to_owned();
    assert!(
        stderr.contains("cannot read the API token") && stderr.contains("api.token"),
        "{stderr}"
    );

    // A token, but another one: the node refuses it, and the CLI says why.
    std::fs::write(&path, "ab".repeat(32)).unwrap();
    let stderr = node
        .spore
        .run(&["ls"])
        .fails_with(exit::NOT_ALLOWED)
        .to_owned();
    assert!(stderr.contains("not this node's"), "{stderr}");

    std::fs::write(&path, &token).unwrap();
    node.spore.run(&["ls"]).ok();
}

#[test]
fn a_guest_allowed_onto_loopback_cannot_use_the_node_api() {
    let spore = Spore::new();
    spore.configure(
        "[abilities.http]\nprovider = \"http\"\nallow = [\"127.0.0.1\"]\ntimeout = \"5s\"\n",
    );
    let node = ApiNode::start_with(spore, &[]);
    node.spore.publish("title", Some("title"));
    let url = format!("\"http://{}/v1/info\"", node.api);
    let stderr = node
        .spore
        .run(&["invoke", "title", &url])
        .fails_with(exit::GUEST_ERROR)
        .to_owned();
    assert!(stderr.contains("HTTP status 401"), "{stderr}");
}

#[test]
fn only_a_node_whose_api_listens_beyond_loopback_warns_and_both_take_the_token() {
    /// Stops the node and returns everything it wrote to stderr.
    fn stderr_of(mut node: RunningNode) -> String {
        let mut stderr = node.child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            stderr.read_to_string(&mut text).unwrap();
            text
        });
        node.stop();
        reader.join().unwrap()
    }

    for (api, warns) in [("0.0.0.0:0", true), ("127.0.0.1:0", false)] {
        let node = RunningNode::start_with_api(Spore::new(), api);
        let port: u16 = node.api.rsplit_once(':').unwrap().1.parse().unwrap();
        // The CLI dials the address node.json gives, as it is.
        let info = node.spore.run(&["--json", "node", "info"]).json();
        assert_eq!(info["api"], node.api.as_str());
        let node = ApiNode(node);
        let loopback = format!("host: 127.0.0.1:{port}\r\n");
        refused_for_its_token(&node.get_with("/v1/info", &loopback));
        let headers = format!(
            "{loopback}authorization: {}\r\n",
            node.spore.api_authorization()
        );
        let answer = node.get_with("/v1/info", &headers);
        assert_eq!(answer.status, 200, "{api}: {answer:#?}");
        // A refused host is told the address it dialed, not `0.0.0.0`.
        let message = node
            .get_with("/v1/info", &format!("host: evil.example:{port}\r\n"))
            .error(403, "not_allowed");
        assert!(
            message.contains(&format!(" 127.0.0.1:{port} ")),
            "{message}"
        );

        let ApiNode(node) = node;
        let stderr = stderr_of(node);
        let warning = "warning: the API listens beyond loopback";
        assert_eq!(stderr.contains(warning), warns, "{api}: {stderr}");
        if warns {
            assert!(stderr.contains("api.token"), "{stderr}");
        }
    }
}
