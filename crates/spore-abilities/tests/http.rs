//! The `http` provider against a real HTTP server on 127.0.0.1, started per test.
//!
//! Calls go through `HttpProvider::call_until`, which is `Provider::call` without an
//! `AbilityContext` (the runtime is the only place that makes one).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_abilities::http::HttpConfigError;
use spore_abilities::{HttpProvider, HttpSettings};
use spore_runtime::{AbilityError, ErrorKind, Provider, field};

const TITLE_PAGE: &str = "<html><head><title>Hello spore</title></head><body>hi</body></html>";
const BIG: usize = 1024 * 1024;
/// How long `/slow` makes its caller wait; well past the timeouts the tests set.
const SLOW: Duration = Duration::from_secs(3);

/// Serves a few canned paths on 127.0.0.1 until the test process ends.
fn serve(redirect_to: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test server");
    let address = listener.local_addr().expect("test server address");
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || answer(stream, redirect_to));
        }
    });
    address
}

fn answer(stream: TcpStream, redirect_to: SocketAddr) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").to_owned(),
    );
    let mut content_length = 0;
    let mut custom = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((&line, ""));
        match name.to_ascii_lowercase().as_str() {
            "content-length" => content_length = value.trim().parse().unwrap_or(0),
            "x-custom" => custom = value.trim().to_owned(),
            _ => {}
        }
    }
    let mut body = vec![0; content_length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }

    let mut stream = &stream;
    let respond =
        |mut stream: &TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]| {
            let mut head = format!(
                "HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: {}\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream
                .write_all(head.as_bytes())
                .and_then(|()| stream.write_all(body));
        };
    match (method.as_str(), path.as_str()) {
        ("GET", "/page") => respond(
            stream,
            "200 OK",
            &[
                ("Content-Type", "text/html".into()),
                ("X-Test", "yes".into()),
            ],
            TITLE_PAGE.as_bytes(),
        ),
        ("GET", "/missing") => respond(stream, "404 Not Found", &[], b"no such page"),
        ("GET", "/slow") => {
            thread::sleep(SLOW);
            respond(stream, "200 OK", &[], b"finally");
        }
        ("GET", "/big") => respond(stream, "200 OK", &[], &vec![b'x'; BIG]),
        ("GET", "/big-unannounced") => {
            // No length: the client only learns the size by reading.
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n");
            let chunk = vec![b'y'; 64 * 1024];
            for _ in 0..(BIG / chunk.len()) {
                if stream.write_all(&chunk).is_err() {
                    return;
                }
            }
        }
        ("GET", "/redirect") => respond(
            stream,
            "302 Found",
            &[("Location", format!("http://{redirect_to}/stolen"))],
            b"",
        ),
        ("POST", "/echo") => respond(stream, "201 Created", &[("X-Echo-Custom", custom)], &body),
        _ => respond(stream, "400 Bad Request", &[], b"unexpected request"),
    }
    let _ = stream.flush();
}

/// A listener that nothing should connect to; a connection would wait in its backlog,
/// so `accept` tells whether one was made.
fn trap() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the trap");
    listener.set_nonblocking(true).expect("nonblocking trap");
    let address = listener.local_addr().expect("trap address");
    (listener, address)
}

fn assert_untouched(trap: &TcpListener) {
    match trap.accept() {
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(error) => panic!("checking the trap failed: {error}"),
        Ok((_, peer)) => {
            panic!("the provider connected to a host it should not reach (from {peer})")
        }
    }
}

struct Fixture {
    server: SocketAddr,
    trap: TcpListener,
    trap_address: SocketAddr,
}

fn fixture() -> Fixture {
    let (trap, trap_address) = trap();
    Fixture {
        server: serve(trap_address),
        trap,
        trap_address,
    }
}

fn provider(allow: &[String], timeout: Duration, max_response_bytes: u64) -> HttpProvider {
    HttpProvider::new(HttpSettings {
        allow: allow.to_vec(),
        timeout,
        max_response_bytes,
    })
    .expect("valid http settings")
}

fn allowing(server: SocketAddr) -> HttpProvider {
    provider(
        &[server.to_string()],
        Duration::from_secs(5),
        4 * 1024 * 1024,
    )
}

fn text(value: &str) -> Value {
    Value::Text(value.into())
}

fn get(url: &str) -> Value {
    Value::Map(vec![(text("url"), text(url))])
}

fn request(
    provider: &HttpProvider,
    request: Value,
    within: Duration,
) -> Result<Value, AbilityError> {
    provider.call_until(Instant::now() + within, "request", request)
}

fn status(response: &Value) -> u64 {
    let status = field(response, "status")
        .and_then(Value::as_integer)
        .expect("a status");
    u64::try_from(status).expect("an unsigned status")
}

fn header<'a>(response: &'a Value, name: &str) -> Option<&'a str> {
    field(response, "headers")
        .and_then(|headers| field(headers, name))
        .and_then(Value::as_text)
}

fn body(response: &Value) -> &[u8] {
    field(response, "body")
        .and_then(Value::as_bytes)
        .expect("a byte string body")
}

fn expect_error(result: Result<Value, AbilityError>, kind: ErrorKind) -> AbilityError {
    match result {
        Ok(value) => panic!("expected a {kind} error, got a response: {value:?}"),
        Err(error) => {
            assert_eq!(error.kind, kind, "unexpected error: {error}");
            error
        }
    }
}

#[test]
fn allowed_get_returns_status_headers_and_body() {
    let fx = fixture();
    let http = allowing(fx.server);
    let response = request(
        &http,
        get(&format!("http://{}/page", fx.server)),
        Duration::from_secs(5),
    )
    .expect("a response");
    assert_eq!(status(&response), 200);
    assert_eq!(header(&response, "content-type"), Some("text/html"));
    // Names arrive lowercase whatever the server wrote.
    assert_eq!(header(&response, "x-test"), Some("yes"));
    let page = String::from_utf8(body(&response).to_vec()).expect("utf-8 page");
    assert!(page.contains("<title>Hello spore</title>"), "page: {page}");
}

#[test]
fn error_statuses_are_responses() {
    let fx = fixture();
    let http = allowing(fx.server);
    let response = request(
        &http,
        get(&format!("http://{}/missing", fx.server)),
        Duration::from_secs(5),
    )
    .expect("a response");
    assert_eq!(status(&response), 404);
    assert_eq!(body(&response), b"no such page");
}

#[test]
fn hosts_compare_case_insensitively() {
    let fx = fixture();
    let http = provider(
        &[format!("LocalHost:{}", fx.server.port())],
        Duration::from_secs(5),
        1 << 20,
    );
    let url = format!("http://localhost:{}/page", fx.server.port());
    let response = request(&http, get(&url), Duration::from_secs(5)).expect("a response");
    assert_eq!(status(&response), 200);
}

#[test]
fn hosts_off_the_allowlist_are_refused_without_connecting() {
    let fx = fixture();
    let http = allowing(fx.server);

    // Same host, another port: the entry names a port, so only that port is allowed.
    let error = expect_error(
        request(
            &http,
            get(&format!("http://{}/page", fx.trap_address)),
            Duration::from_secs(5),
        ),
        ErrorKind::NotAllowed,
    );
    assert!(
        error.message.contains(&fx.trap_address.to_string()),
        "names the host: {error}"
    );
    assert!(
        error.message.contains("`allow`"),
        "says how to allow it: {error}"
    );

    let error = expect_error(
        request(&http, get("https://example.org/"), Duration::from_secs(5)),
        ErrorKind::NotAllowed,
    );
    assert!(
        error.message.contains("example.org"),
        "names the host: {error}"
    );
    expect_error(
        request(
            &http,
            get(&format!("ftp://{}/", fx.server)),
            Duration::from_secs(5),
        ),
        ErrorKind::NotAllowed,
    );
    assert_untouched(&fx.trap);
}

#[test]
fn wildcards_allow_subdomains_only() {
    let http = provider(&["*.example.org".to_owned()], Duration::from_secs(1), 1024);
    // The apex is not a subdomain, nor is a name that merely ends the same way; both are
    // refused before any DNS lookup.
    for url in [
        "http://example.org/",
        "http://badexample.org/",
        "http://example.org.evil.net/",
    ] {
        expect_error(
            request(&http, get(url), Duration::from_secs(1)),
            ErrorKind::NotAllowed,
        );
    }
}

#[test]
fn a_slow_server_times_out_at_the_binding_timeout() {
    let fx = fixture();
    let timeout = Duration::from_millis(300);
    let http = provider(&[fx.server.to_string()], timeout, 1 << 20);
    let started = Instant::now();
    let error = expect_error(
        request(
            &http,
            get(&format!("http://{}/slow", fx.server)),
            Duration::from_secs(10),
        ),
        ErrorKind::Timeout,
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= timeout - Duration::from_millis(50),
        "gave up early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1500),
        "gave up late: {elapsed:?} ({error})"
    );
}

#[test]
fn the_callers_deadline_wins_over_a_longer_timeout() {
    let fx = fixture();
    let http = provider(&[fx.server.to_string()], Duration::from_secs(10), 1 << 20);
    let started = Instant::now();
    expect_error(
        request(
            &http,
            get(&format!("http://{}/slow", fx.server)),
            Duration::from_millis(300),
        ),
        ErrorKind::Timeout,
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(1500),
        "waited past the caller's deadline: {elapsed:?}"
    );

    // A deadline that already passed fails without a request.
    expect_error(
        http.call_until(
            Instant::now(),
            "request",
            get(&format!("http://{}/page", fx.server)),
        ),
        ErrorKind::Timeout,
    );
}

#[test]
fn bodies_over_the_limit_are_too_large() {
    let fx = fixture();
    let http = provider(&[fx.server.to_string()], Duration::from_secs(5), 64 * 1024);
    for path in ["/big", "/big-unannounced"] {
        let error = expect_error(
            request(
                &http,
                get(&format!("http://{}{path}", fx.server)),
                Duration::from_secs(5),
            ),
            ErrorKind::TooLarge,
        );
        assert!(error.message.contains("64 KiB"), "names the limit: {error}");
    }
    // The limit is inclusive of a body exactly at it.
    let http = provider(&[fx.server.to_string()], Duration::from_secs(5), BIG as u64);
    let response = request(
        &http,
        get(&format!("http://{}/big", fx.server)),
        Duration::from_secs(5),
    )
    .expect("a response");
    assert_eq!(body(&response).len(), BIG);
}

#[test]
fn post_sends_method_headers_and_body() {
    let fx = fixture();
    let http = allowing(fx.server);
    let payload = b"\x00binary\xffpayload".to_vec();
    let post = Value::Map(vec![
        (text("url"), text(&format!("http://{}/echo", fx.server))),
        (text("method"), text("POST")),
        (
            text("headers"),
            Value::Map(vec![(text("X-Custom"), text("given"))]),
        ),
        (text("body"), Value::Bytes(payload.clone())),
    ]);
    let response = request(&http, post, Duration::from_secs(5)).expect("a response");
    assert_eq!(status(&response), 201);
    assert_eq!(body(&response), payload.as_slice());
    assert_eq!(header(&response, "x-echo-custom"), Some("given"));
}

#[test]
fn redirects_to_other_hosts_are_not_followed() {
    let fx = fixture();
    let http = allowing(fx.server);
    let response = request(
        &http,
        get(&format!("http://{}/redirect", fx.server)),
        Duration::from_secs(5),
    )
    .expect("a response");
    assert_eq!(status(&response), 302);
    let location = header(&response, "location").expect("a location header");
    assert_eq!(location, format!("http://{}/stolen", fx.trap_address));
    assert_untouched(&fx.trap);
}

#[test]
fn malformed_requests_are_bad_requests() {
    let fx = fixture();
    let http = allowing(fx.server);
    let page = format!("http://{}/page", fx.server);
    let with =
        |key: &str, value: Value| Value::Map(vec![(text("url"), text(&page)), (text(key), value)]);
    let cases = [
        get("not a url"),
        get("http://"),
        get("/relative/path"),
        Value::Map(vec![]),
        Value::Text(page.clone()),
        with("method", text("BREW")),
        with("method", Value::Integer(1.into())),
        with("headers", Value::Array(vec![])),
        with("headers", Value::Map(vec![(text("bad header"), text("x"))])),
        with(
            "headers",
            Value::Map(vec![(text("host"), text("elsewhere.example"))]),
        ),
        with("body", Value::Integer(3.into())),
    ];
    for case in cases {
        let result = request(&http, case.clone(), Duration::from_secs(5));
        match result {
            Err(error) if error.kind == ErrorKind::BadRequest => {}
            other => panic!("{case:?} gave {other:?}, not a bad_request"),
        }
    }
}

#[test]
fn connection_failures_are_failed() {
    let fx = fixture();
    // Allowed, but nothing listens there any more.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    let http = provider(
        &[fx.server.to_string(), closed.to_string()],
        Duration::from_secs(5),
        1024,
    );
    expect_error(
        request(
            &http,
            get(&format!("http://{closed}/")),
            Duration::from_secs(5),
        ),
        ErrorKind::Failed,
    );
}

#[test]
fn allowlist_entries_are_checked() {
    for entry in [
        "http://example.org",
        "example.org/path",
        "*",
        "*example.org",
        "a:b:c",
        "host:99999",
        "host:0",
        "[::1",
        "exa mple.org",
        "",
    ] {
        match HttpProvider::new(HttpSettings {
            allow: vec![entry.to_owned()],
            ..HttpSettings::default()
        }) {
            Err(HttpConfigError::BadAllowEntry { entry: named, .. }) => assert_eq!(named, entry),
            Err(other) => panic!("`{entry}`: unexpected error {other}"),
            Ok(_) => panic!("`{entry}` was accepted"),
        }
    }
    for entry in [
        "Example.ORG",
        "*.example.org",
        "[::1]:8080",
        "[::1]",
        "127.0.0.1:80",
        "localhost",
    ] {
        HttpProvider::new(HttpSettings {
            allow: vec![entry.to_owned()],
            ..HttpSettings::default()
        })
        .unwrap_or_else(|error| panic!("`{entry}` was refused: {error}"));
    }
}

#[test]
fn describe_names_the_settings() {
    let http = HttpProvider::new(HttpSettings {
        allow: vec!["example.org".into(), "127.0.0.1:8080".into()],
        ..HttpSettings::default()
    })
    .expect("valid settings");
    assert_eq!(
        http.describe(),
        "http client, allow [example.org, 127.0.0.1:8080], timeout 10s, max response 4 MiB"
    );
}
