//! Abilities end to end: built-in providers, deny by default, publish-time shape checks,
//! provider processes, Wasm handlers, `call`, and what each failure looks like.

use serde_json::json;

use crate::http_server::TestServer;
use crate::support::{Spore, exit, repo_root, temp_file};

/// A module whose `relay` hands its argument array to `ABILITY.OPERATION` and returns the
/// response buffer as its own result, so a test sees exactly what the provider answered.
fn relay_module(ability: &str, operation: &str) -> Vec<u8> {
    relay_with(ability, operation, "(local.get 0) (local.get 1)")
}

/// Like [`relay_module`], but the request is the CBOR text "kaboom" whatever the arguments.
fn kaboom_relay(ability: &str, operation: &str) -> Vec<u8> {
    relay_with(ability, operation, "(i32.const 16) (i32.const 7)")
}

fn relay_with(ability: &str, operation: &str, request: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
          (import "{ability}" "{operation}" (func $op (param i32 i32) (result i64)))
          (memory (export "memory") 1)
          (data (i32.const 16) "\66kaboom")
          (global $next (mut i32) (i32.const 1024))
          (func (export "spore_alloc") (param $len i32) (result i32)
            (local $ptr i32)
            (local.set $ptr (global.get $next))
            (global.set $next (i32.add (global.get $next) (local.get $len)))
            (local.get $ptr))
          (func (export "relay") (param i32 i32) (result i64)
            (call $op {request})))"#
    ))
    .unwrap()
}

fn publish_bytes(spore: &Spore, name: &str, bytes: &[u8]) -> crate::support::Run {
    let (_dir, path) = temp_file(&format!("{name}.wasm"), bytes);
    spore.run(&["publish", path.to_str().unwrap()])
}

#[test]
fn a_kv_counter_counts_and_is_never_memoized() {
    let spore = Spore::new();
    spore.publish("visits", Some("visits"));
    for expected in 1..=3 {
        let report = spore.invoke_report("visits.hit", &[r#""home""#]);
        assert_eq!(report["result"], expected);
        assert_eq!(report["memo"], "skipped");
        assert_eq!(report["effectful"], true);
    }
    assert_eq!(spore.invoke("visits.count", &[r#""home""#]), 3);
    assert_eq!(spore.invoke("visits.count", &[r#""away""#]), 0);
}

#[test]
fn an_unbound_ability_is_refused_before_the_function_starts() {
    let spore = Spore::new();
    spore.publish("visits", Some("visits"));
    // The same defaults without a kv binding.
    let without_kv = spore_node::config::default_config().replace(
        "[abilities.kv]\nprovider = \"kv\"\nnamespace = \"default\"\nmax_value_bytes = \"1MiB\"\n",
        "",
    );
    assert_ne!(
        without_kv,
        spore_node::config::default_config(),
        "the defaults changed; update this test"
    );
    spore.write_config(&without_kv);
    let stderr = spore
        .run(&["invoke", "visits.hit", r#""x""#])
        .fails_with(exit::NOT_FOUND)
        .to_owned();
    assert!(
        stderr.contains("needs abilities that are not bound here: kv"),
        "{stderr}"
    );
    assert!(
        stderr.contains("config.toml"),
        "names the configuration: {stderr}"
    );
    // Functions without the missing ability still run.
    spore.publish("arith", Some("math"));
    assert_eq!(spore.invoke("math.add", &["1", "1"]), 2);
}

#[test]
fn imports_must_name_a_known_ability_and_operation_at_publish() {
    let spore = Spore::new();
    let stderr = publish_bytes(&spore, "sensor", &relay_module("sensor", "read"))
        .fails_with(exit::INVALID_MODULE)
        .to_owned();
    assert!(stderr.contains("`sensor.read`"), "{stderr}");
    assert!(stderr.contains("declare it in"), "{stderr}");
    let stderr = publish_bytes(&spore, "kv", &relay_module("kv", "frobnicate"))
        .fails_with(exit::INVALID_MODULE)
        .to_owned();
    assert!(stderr.contains("`kv.frobnicate`"), "{stderr}");
    // Declaring the custom ability (without binding it) makes the module publishable.
    spore.configure("[abilities.sensor]\noperations = [\"read\"]\n");
    publish_bytes(&spore, "sensor", &relay_module("sensor", "read")).ok();
    let abilities = spore.run(&["--json", "abilities"]).json();
    let sensor = abilities["abilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["ability"] == "sensor")
        .unwrap();
    assert_eq!(sensor["provider"], serde_json::Value::Null);
}

#[test]
fn spore_abilities_lists_the_bindings_in_force() {
    let spore = Spore::new();
    let listed = spore.run(&["abilities"]);
    let text = listed.ok();
    assert!(text.contains("config.toml"), "{text}");
    for ability in ["call", "clock", "config", "kv", "log", "random"] {
        assert!(
            text.lines().any(|l| l.starts_with(ability)),
            "{ability} missing from:\n{text}"
        );
    }
    assert!(
        text.contains("http") && text.contains("(declared, not bound on this node)"),
        "{text}"
    );
}

#[test]
fn http_fetches_from_allowed_hosts_only() {
    let server = TestServer::start();
    let spore = Spore::new();
    spore.configure(&format!(
        "[abilities.http]\nprovider = \"http\"\nallow = [\"{}\"]\ntimeout = \"5s\"\n",
        server.addr
    ));
    spore.publish("title", Some("title"));
    let url = format!("\"{}\"", server.url("/page"));
    assert_eq!(spore.invoke("title", &[&url]), "Spore & Friends");

    let untitled = format!("\"{}\"", server.url("/untitled"));
    spore
        .run(&["invoke", "title", &untitled])
        .fails_with(exit::GUEST_ERROR);

    let before = server.accepted();
    let other_port = format!("\"http://127.0.0.1:{}/page\"", server.addr.port() + 1);
    let stderr = spore
        .run(&["invoke", "title", &other_port])
        .fails_with(exit::GUEST_ERROR)
        .to_owned();
    assert!(
        stderr.contains("not allowed") || stderr.contains("not_allowed"),
        "{stderr}"
    );
    assert_eq!(
        server.accepted(),
        before,
        "a refused request must not connect anywhere"
    );
}

#[test]
fn call_invokes_another_function_by_hash() {
    let spore = Spore::new();
    let arith = spore.publish("arith", None);
    spore.publish("caller", Some("caller"));
    let add = format!("\"{arith}:add\"");
    // (5 + 5) + 5
    let report = spore.invoke_report("caller.call_twice", &[&add, "5"]);
    assert_eq!(report["result"], 15);
    // Calls pinned to a full hash of a pure function keep the caller pure.
    assert_eq!(report["effectful"], false);
    let by_name_target = spore.invoke_report(
        "caller.call_twice",
        &[&format!("\"{}:add\"", &arith[..10]), "5"],
    );
    assert_eq!(
        by_name_target["effectful"], true,
        "a prefix can be re-resolved later, so it is not pure"
    );
}

#[test]
fn call_recursion_stops_at_the_depth_limit() {
    let spore = Spore::new();
    let caller = spore.publish("caller", None);
    let itself = format!("\"{caller}:depth\"");
    // Each level calls the next; the call that would exceed the limit fails with kind
    // `depth`, and that level returns how deep it got.
    assert_eq!(spore.invoke(&format!("{caller}:depth"), &[&itself, "0"]), 8);
    spore.write_config(
        &spore_node::config::default_config().replace("call_depth = 8", "call_depth = 3"),
    );
    assert_eq!(spore.invoke(&format!("{caller}:depth"), &[&itself, "0"]), 3);
}

#[test]
fn a_custom_ability_served_by_a_provider_process() {
    let spore = Spore::new();
    let script = repo_root().join("examples/sensor-provider/sensor.py");
    spore.configure(&format!(
        "[abilities.sensor]\nprovider = \"process\"\noperations = [\"read\"]\ncommand = [\"python3\", \"{}\"]\ntimeout = \"5s\"\n",
        script.display()
    ));
    spore.publish("sensors", Some("sensors"));
    let reading = spore.invoke("sensors.read", &[r#""attic""#]);
    assert_eq!(reading["id"], "attic");
    assert!(reading["value"].is_f64(), "{reading}");
    assert!(reading["unit"].is_string(), "{reading}");
}

/// A provider process for `sensor` that misbehaves on request: `crash` exits, `hang`
/// never answers; anything else is a reading of 1.0.
pub(crate) const FLAKY_PROVIDER: &str = r#"
import struct, sys
def read_exact(n):
    data = b""
    while len(data) < n:
        chunk = sys.stdin.buffer.read(n - len(data))
        if not chunk:
            sys.exit(0)
        data += chunk
    return data
def text(s):
    b = s.encode()
    return (bytes([0x60 + len(b)]) if len(b) < 24 else bytes([0x78, len(b)])) + b
def uint(n):
    return bytes([n]) if n < 24 else (bytes([0x18, n]) if n < 256 else b"\x19" + struct.pack(">H", n) if n < 65536 else b"\x1a" + struct.pack(">I", n))
def send(payload):
    sys.stdout.buffer.write(struct.pack(">I", len(payload)) + payload)
    sys.stdout.buffer.flush()
send(b"\xa1" + text("hello") + b"\xa3" + text("protocol") + uint(1) + text("ability") + text("sensor") + text("operations") + b"\x81" + text("read"))
while True:
    (length,) = struct.unpack(">I", read_exact(4))
    frame = read_exact(length)
    # The request id is the first value in the map the node sends ({id, operation, request, deadline_ms}).
    id_pos = frame.index(b"bid") + 3
    head = frame[id_pos]
    if head < 24: request_id, = (head,)
    elif head == 0x18: request_id = frame[id_pos + 1]
    elif head == 0x19: request_id, = struct.unpack(">H", frame[id_pos + 1:id_pos + 3])
    else: request_id, = struct.unpack(">I", frame[id_pos + 1:id_pos + 5])
    if b"crash" in frame:
        sys.exit(3)
    if b"hang" in frame:
        continue
    send(b"\xa2" + text("id") + uint(request_id) + text("ok") + b"\xa3" + text("id") + text("x") + text("value") + b"\xf9\x3c\x00" + text("unit") + text("C"))
"#;

#[test]
fn a_provider_process_that_crashes_or_hangs_fails_the_call_not_the_node() {
    let spore = Spore::new();
    let (_dir, script) = temp_file("flaky.py", FLAKY_PROVIDER.as_bytes());
    spore.configure(&format!(
        "[abilities.sensor]\nprovider = \"process\"\noperations = [\"read\"]\ncommand = [\"python3\", \"{}\"]\ntimeout = \"1s\"\n",
        script.display()
    ));
    spore.publish("sensors", Some("sensors"));
    assert_eq!(spore.invoke("sensors.read", &[r#""ok""#])["value"], 1.0);

    let stderr = spore
        .run(&["invoke", "sensors.read", r#""crash""#])
        .fails_with(exit::GUEST_ERROR)
        .to_owned();
    assert!(
        stderr.contains("unavailable") || stderr.contains("exited"),
        "{stderr}"
    );

    let started = std::time::Instant::now();
    let stderr = spore
        .run(&["invoke", "sensors.read", r#""hang""#])
        .fails_with(exit::GUEST_ERROR)
        .to_owned();
    assert!(
        stderr.contains("timeout") || stderr.contains("timed out"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "no hang: {:?}",
        started.elapsed()
    );

    assert_eq!(spore.invoke("sensors.read", &[r#""ok""#])["value"], 1.0);
}

#[test]
fn a_wasm_handler_serves_kv_over_the_native_store_with_a_prefix() {
    let spore = Spore::new();
    // Any reference into the handler module will do: a name of one of its functions.
    spore.publish("kvprefix", Some("kvprefix"));
    spore.publish("visits", Some("visits"));
    let handled = spore_node::config::default_config().replace(
        "[abilities.kv]\nprovider = \"kv\"\nnamespace = \"default\"\nmax_value_bytes = \"1MiB\"\n",
        "[abilities.kv]\nprovider = \"handler\"\nfunction = \"kvprefix.get\"\n[abilities.kv.uses.kv]\nprovider = \"kv\"\nnamespace = \"default\"\n",
    );
    spore.write_config(&handled);
    assert_eq!(spore.invoke("visits.hit", &[r#""a""#]), 1);
    assert_eq!(spore.invoke("visits.hit", &[r#""a""#]), 2);
    assert_eq!(spore.invoke("visits.count", &[r#""a""#]), 2);

    // Without the handler, the same store shows where the data really went.
    spore.write_config(&spore_node::config::default_config());
    spore.publish("telemetry", Some("telemetry"));
    assert_eq!(spore.invoke("telemetry.load", &[r#""tenant/visits/a""#]), 2);
    assert_eq!(spore.invoke("visits.count", &[r#""a""#]), 0);
}

#[test]
fn a_handler_that_traps_gives_the_caller_a_trap_error() {
    let spore = Spore::new();
    // `faults:boom` panics; serving ability `boom` with it makes every operation trap.
    spore.publish("faults", Some("faults"));
    spore.configure("[abilities.boom]\nprovider = \"handler\"\noperations = [\"boom\"]\nfunction = \"faults.boom\"\n");
    let relay = publish_bytes(&spore, "relay", &kaboom_relay("boom", "boom"));
    let hash = relay.ok().to_owned();
    let stderr = spore
        .run(&["invoke", &format!("{hash}:relay"), r#""kaboom""#])
        .fails_with(exit::GUEST_ERROR)
        .to_owned();
    assert!(stderr.contains("\"kind\":\"trap\""), "{stderr}");
    assert!(stderr.contains("kaboom"), "{stderr}");
    assert_eq!(spore.invoke("faults.echo", &["1"]), 1);
}

#[test]
fn an_oversized_kv_value_is_refused_and_loses_nothing() {
    let spore = Spore::new();
    spore.write_config(
        &spore_node::config::default_config()
            .replace("max_value_bytes = \"1MiB\"", "max_value_bytes = \"1KiB\""),
    );
    spore.publish("telemetry", Some("telemetry"));
    spore
        .run(&["invoke", "telemetry.store", r#""k""#, r#""small""#])
        .ok();
    let big = format!("\"{}\"", "x".repeat(4096));
    let stderr = spore
        .run(&["invoke", "telemetry.store", r#""k""#, &big])
        .fails_with(exit::GUEST_ERROR)
        .to_owned();
    assert!(
        stderr.contains("too_large") || stderr.contains("at most 1024"),
        "{stderr}"
    );
    assert_eq!(spore.invoke("telemetry.load", &[r#""k""#]), "small");
}

#[test]
fn pure_functions_are_memoized_and_a_hit_returns_exactly_what_ran() {
    let spore = Spore::new();
    spore.publish("cpu", Some("cpu"));
    spore.publish("arith", Some("math"));
    let first = spore.invoke_report("cpu.sha256", &["2"]);
    assert_eq!(first["memo"], "stored");
    let second = spore.invoke_report("cpu.sha256", &["2"]);
    assert_eq!(second["memo"], "hit");
    assert_eq!(second["result"], first["result"]);
    assert_eq!(
        second["stats"],
        serde_json::Value::Null,
        "a hit does not run the function"
    );
    let bypass = spore.invoke_report("cpu.sha256", &["2", "--no-memo"]);
    assert_eq!(bypass["memo"], "skipped");
    assert_eq!(bypass["result"], first["result"]);
    // Returned errors of pure functions are memoized too, and stay errors.
    for _ in 0..2 {
        let json = spore.run(&["--json", "invoke", "math.div", "1", "0"]);
        let error: serde_json::Value =
            serde_json::from_str(json.fails_with(exit::GUEST_ERROR)).unwrap();
        assert_eq!(error["error"]["value"], "1 / 0: division by zero");
    }
    let cleared = spore.run(&["--json", "memo", "clear"]).json();
    assert_eq!(cleared, json!({"cleared": 2}));
    assert_eq!(spore.invoke_report("cpu.sha256", &["2"])["memo"], "stored");
}
