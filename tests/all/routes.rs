//! HTTP routes (`spec/http.md`) with real `spore node run --http` processes: requests
//! through a route to a function on the same node and on another, every failure status,
//! and bodies over the limit refused before they are read.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{RunningNode, Spore};

/// A node serving `routes` (TOML `[[routes]]` tables) on `--http`, with `webfront`
/// published as `web`.
pub(crate) fn serving(
    routes: &str,
    config: Option<&str>,
    bootstrap: &[&RunningNode],
) -> RunningNode {
    let spore = Spore::new();
    let base = config.map_or_else(spore_node::config::default_config, str::to_owned);
    spore.write_config(&format!("{base}\n{routes}"));
    let addrs: Vec<&str> = bootstrap.iter().map(|n| n.listen.as_str()).collect();
    let node = RunningNode::launch(
        spore,
        &addrs,
        &["--listen", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0"],
    );
    assert!(node.http.is_some(), "node.json names the HTTP address");
    node
}

/// The default configuration without its `kv` binding.
fn without_kv() -> String {
    let defaults = spore_node::config::default_config();
    let start = defaults.find("[abilities.kv]").unwrap();
    let end = start + defaults[start..].find("\n\n").unwrap();
    format!("{}{}", &defaults[..start], &defaults[end..])
}

pub(crate) fn route(method: &str, path: &str, function: &str, extra: &str) -> String {
    format!(
        "[[routes]]\nmethod = \"{method}\"\npath = \"{path}\"\nfunction = \"{function}\"\n{extra}\n"
    )
}

pub(crate) struct Answer {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build(),
    )
}

pub(crate) fn send(node: &RunningNode, method: &str, path: &str, body: Option<&str>) -> Answer {
    let url = format!("http://{}{path}", node.http.as_ref().unwrap());
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(&url)
        .header("content-type", "text/plain")
        .body(body.unwrap_or("").to_owned())
        .unwrap();
    let mut response = agent().run(request).unwrap();
    Answer {
        status: response.status().as_u16(),
        headers: response
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: response.body_mut().read_to_string().unwrap(),
    }
}

fn publish_web(node: &RunningNode) -> String {
    node.spore.publish("webfront", Some("web"))
}

#[test]
fn a_route_calls_its_function_with_the_request_and_answers_what_it_returns() {
    let routes = [
        route("POST", "/echo/{kind}", "web.echo", ""),
        route("GET", "/hello/{name}", "web.hello", ""),
        route("GET", "/hits/{page}", "web.hits", ""),
    ]
    .concat();
    let node = serving(&routes, None, &[]);
    publish_web(&node);

    let echoed = send(&node, "POST", "/echo/a%20b?x=1&y=two", Some("payload"));
    assert_eq!(echoed.status, 200, "{}", echoed.body);
    assert_eq!(echoed.header("content-type"), Some("application/json"));
    let echoed = echoed.json();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/echo/a%20b");
    assert_eq!(echoed["params"], serde_json::json!({ "kind": "a b" }));
    assert_eq!(echoed["query"], serde_json::json!({ "x": "1", "y": "two" }));
    assert_eq!(echoed["body"], "payload");
    assert_eq!(echoed["content_type"], "text/plain");

    let hello = send(&node, "GET", "/hello/ada", None);
    assert_eq!((hello.status, hello.body.as_str()), (200, "hello, ada"));
    assert_eq!(
        hello.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    // A plain value is sent as JSON.
    assert_eq!(send(&node, "GET", "/hits/home", None).json(), 1);
    assert_eq!(send(&node, "GET", "/hits/home", None).json(), 2);

    // Routing failures.
    let missing = send(&node, "GET", "/nowhere", None);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["kind"], "not_found");
    let wrong_method = send(&node, "DELETE", "/hello/ada", None);
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.header("allow"), Some("GET"));
}

#[test]
fn each_failure_of_a_call_has_the_status_spec_http_gives_it() {
    let routes = [
        route("GET", "/teapot", "web.teapot", ""),
        route("GET", "/broken", "web.broken", ""),
        route("GET", "/stall", "web.stall", "timeout = \"1s\""),
        route("GET", "/unpublished", "nobody.home", ""),
        route("GET", "/args", "arith.add", ""),
        route("GET", "/hits/{page}", "web.hits", ""),
    ]
    .concat();
    // No kv here, and no peer binds it.
    let node = serving(&routes, Some(&without_kv()), &[]);
    publish_web(&node);
    node.spore.publish("arith", Some("arith"));

    let teapot = send(&node, "GET", "/teapot", None);
    assert_eq!(
        (teapot.status, teapot.body.as_str()),
        (418, "short and stout")
    );
    let broken = send(&node, "GET", "/broken", None);
    assert_eq!(broken.status, 500);
    assert_eq!(broken.json()["error"]["kind"], "guest_error");
    assert_eq!(
        broken.json()["error"]["value"],
        "the frobnicator is out of order"
    );
    let started = Instant::now();
    let stalled = send(&node, "GET", "/stall", None);
    assert_eq!(stalled.status, 504, "{}", stalled.body);
    assert!(started.elapsed() < Duration::from_secs(10));
    let unpublished = send(&node, "GET", "/unpublished", None);
    assert_eq!(unpublished.status, 503, "{}", unpublished.body);
    let bad_args = send(&node, "GET", "/args", None);
    assert_eq!(bad_args.status, 400, "{}", bad_args.body);
    let unbound = send(&node, "GET", "/hits/home", None);
    assert_eq!(unbound.status, 503, "{}", unbound.body);
    assert_eq!(unbound.json()["error"]["kind"], "unbound");
}

#[test]
fn a_route_runs_its_function_where_the_abilities_it_needs_are_bound() {
    // The cloud binds kv for the mesh's members; the gateway binds none.
    let cloud_spore = Spore::new();
    cloud_spore.write_config(&spore_node::config::default_config().replacen(
        "[abilities.kv]\n",
        "[abilities.kv]\ncallers = [\"role:test\"]\n",
        1,
    ));
    let cloud = RunningNode::start_with(cloud_spore, &[]);
    let gateway = serving(
        &route("GET", "/hits/{page}", "web.hits", ""),
        Some(&without_kv()),
        &[&cloud],
    );
    publish_web(&gateway);
    let started = Instant::now();
    loop {
        let hits = send(&gateway, "GET", "/hits/home", None);
        if hits.status == 200 {
            assert_eq!(hits.json(), 1);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{} {}",
            hits.status,
            hits.body
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The count is kept where it ran: the gateway binds no kv.
    assert_eq!(send(&gateway, "GET", "/hits/home", None).json(), 2);
}

#[test]
fn a_body_over_the_routes_limit_is_refused_before_it_is_read() {
    let node = serving(
        &route("POST", "/echo/{kind}", "web.echo", "max_body = \"1KiB\""),
        None,
        &[],
    );
    publish_web(&node);
    let fits = send(&node, "POST", "/echo/x", Some(&"a".repeat(1024)));
    assert_eq!(fits.status, 200, "{}", fits.body);

    // Declared too long: 413 at once, though the body never comes.
    let addr = node.http.clone().unwrap();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "POST /echo/x HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 1048576\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");

    // Chunked, with no length declared: refused once it grows past the limit.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // In one write, so that the server has read it all when it answers (a server that
    // closes with bytes unread resets the connection, and the answer can be lost).
    let request = format!(
        "POST /echo/x HTTP/1.1\r\nhost: {addr}\r\ntransfer-encoding: chunked\r\n\r\n800\r\n{}\r\n0\r\n\r\n",
        "b".repeat(2048)
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
}

#[test]
fn routes_added_and_removed_with_the_cli_are_served_by_the_running_node_at_once() {
    let node = serving("", None, &[]);
    publish_web(&node);
    assert_eq!(send(&node, "GET", "/hello/ada", None).status, 404);

    let said = node
        .spore
        .run(&[
            "routes",
            "add",
            "GET",
            "/hello/{name}",
            "web.hello",
            "--timeout",
            "2s",
        ])
        .ok()
        .to_owned();
    assert_eq!(said, "added GET /hello/{name} -> web.hello");
    let hello = send(&node, "GET", "/hello/ada", None);
    assert_eq!((hello.status, hello.body.as_str()), (200, "hello, ada"));
    let listed = node.spore.run(&["--json", "routes", "ls"]).json();
    assert_eq!(
        listed,
        serde_json::json!([{ "method": "GET", "path": "/hello/{name}", "function": "web.hello", "timeout_ms": 2000, "max_body_bytes": 1048576 }])
    );

    // A route that would take the same requests is refused, and nothing is written.
    let config = std::fs::read_to_string(node.spore.home().join("config.toml")).unwrap();
    let refused = node
        .spore
        .run(&["routes", "add", "*", "/hello/{who}", "web.echo"]);
    let message = refused.fails_with(crate::support::exit::USAGE);
    assert!(message.contains("is taken already"), "{message}");
    assert_eq!(
        std::fs::read_to_string(node.spore.home().join("config.toml")).unwrap(),
        config
    );
    assert!(config.contains("# Bindings:"), "comments are kept");

    node.spore
        .run(&["routes", "rm", "GET", "/hello/{name}"])
        .ok();
    assert_eq!(send(&node, "GET", "/hello/ada", None).status, 404);
    let missing = node.spore.run(&["routes", "rm", "GET", "/hello/{name}"]);
    assert!(
        missing
            .fails_with(crate::support::exit::USAGE)
            .contains("no route takes")
    );
}

#[test]
fn a_typed_function_gets_its_arguments_by_name_from_the_path_the_query_or_a_json_body() {
    let routes = [
        route("GET", "/add/{a}", "arith.add", ""),
        route("POST", "/add", "arith.add", ""),
        route("GET", "/sum", "arith.sum", ""),
    ]
    .concat();
    let node = serving(&routes, None, &[]);
    node.spore.publish("arith", Some("arith"));

    let inspected = node.spore.run(&["inspect", "arith.add"]).ok().to_owned();
    assert!(
        inspected.contains("signature  add(a: i64, b: i64) -> Result<i64, String>"),
        "{inspected}"
    );

    assert_eq!(send(&node, "GET", "/add/2?b=3", None).json(), 5);
    let posted = send(&node, "POST", "/add", Some(r#"{"a": 40, "b": 2}"#));
    assert_eq!(posted.json(), 42, "{}", posted.body);
    assert_eq!(send(&node, "GET", "/sum?values=[1,2,3]", None).json(), 6);

    let not_a_number = send(&node, "GET", "/add/two?b=3", None);
    assert_eq!(not_a_number.status, 400);
    let message = not_a_number.json()["error"]["message"].to_string();
    assert!(
        message.contains("`a` is `two`, not an integer"),
        "{message}"
    );
    let missing = send(&node, "GET", "/add/2", None);
    assert_eq!(missing.status, 400);
    assert!(
        missing.body.contains("`b` (i64) is missing"),
        "{}",
        missing.body
    );
    let not_json = send(&node, "POST", "/add", Some("a=1&b=2"));
    assert_eq!(not_json.status, 400);
    assert!(not_json.body.contains("not JSON"), "{}", not_json.body);
}

#[test]
fn a_stopping_node_finishes_the_requests_in_flight_and_takes_no_new_ones() {
    let node = serving(
        &route("GET", "/sha/{mib}", "cpu.sha256", "timeout = \"30s\""),
        None,
        &[],
    );
    node.spore.publish("cpu", Some("cpu"));
    let addr = node.http.clone().unwrap();
    let started = Instant::now();
    let in_flight = std::thread::spawn({
        let addr = addr.clone();
        move || {
            let response = agent()
                .get(format!("http://{addr}/sha/96"))
                .call()
                .map(|mut r| (r.status().as_u16(), r.body_mut().read_to_string().unwrap()));
            (response, started.elapsed())
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let stopping = Instant::now();
    let _ = node.stop();
    let ((status, body), took) = match in_flight.join().unwrap() {
        (Ok(answer), took) => (answer, took),
        (Err(e), _) => panic!("the request in flight was dropped: {e}"),
    };
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.trim_matches('"').len(), 64, "a SHA-256 in hex: {body}");
    assert!(
        took > Duration::from_millis(300),
        "it was in flight when the node stopped"
    );
    assert!(stopping.elapsed() < Duration::from_secs(20));
    assert!(
        TcpStream::connect(&addr).is_err(),
        "the stopped node takes no new connections"
    );
}

#[test]
fn a_route_follows_its_name_at_once_though_its_answers_are_remembered() {
    let node = serving(&route("GET", "/greet/{name}", "greet", ""), None, &[]);
    publish_web(&node);
    node.spore.run(&["names", "set", "greet", "web.hello"]).ok();
    // The first request reads the name and runs the function; the next are answered
    // from what the node holds in memory (the name resolved, the result remembered).
    for _ in 0..3 {
        let hello = send(&node, "GET", "/greet/ada", None);
        assert_eq!((hello.status, hello.body.as_str()), (200, "hello, ada"));
    }

    node.spore
        .run(&["names", "set", "greet", "web.teapot"])
        .ok();
    let moved = send(&node, "GET", "/greet/ada", None);
    assert_eq!(
        (moved.status, moved.body.as_str()),
        (418, "short and stout"),
        "the route calls where the name points now"
    );

    node.spore.run(&["names", "set", "greet", "web.hello"]).ok();
    let back = send(&node, "GET", "/greet/ada", None);
    assert_eq!((back.status, back.body.as_str()), (200, "hello, ada"));
    // A route whose function cannot be found is unavailable (`spec/http.md`).
    node.spore.run(&["names", "rm", "greet"]).ok();
    let gone = send(&node, "GET", "/greet/ada", None);
    assert_eq!(gone.status, 503, "{}", gone.body);
    assert_eq!(gone.json()["error"]["kind"], "not_found");
}
