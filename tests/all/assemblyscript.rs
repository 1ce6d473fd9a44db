//! Functions written in TypeScript with the AssemblyScript SDK (`sdk/assemblyscript`,
//! functions in `codebase/ts`), run through the real `spore` binary like any other:
//! published, invoked with typed arguments, calling and called by Rust functions, and
//! placed across the mesh.

mod npm;

use std::path::Path;

use serde_json::json;

use crate::support::{Spore, exit, module_path};

/// Publishes the TypeScript module `name` on `spore`, optionally named; its hash.
fn publish_ts(spore: &Spore, dir: &Path, name: &str, as_name: Option<&str>) -> String {
    let path = npm::module(dir, name);
    let mut args = vec!["publish", path.as_str()];
    if let Some(as_name) = as_name {
        args.extend(["--name", as_name]);
    }
    spore.run(&args).ok().to_owned()
}

#[test]
fn the_sdk_passes_the_value_vectors_and_its_abi_and_client_tests() {
    if npm::modules().is_none() {
        return;
    }
    let output = npm::run(
        &npm::sdk_dir(),
        "node",
        &[
            "--test",
            "tests/vectors.mjs",
            "tests/abi.mjs",
            "tests/clients.mjs",
        ],
    );
    assert!(output.contains("# fail 0"), "{output}");
    assert!(!output.contains("# pass 0\n"), "{output}");
}

#[test]
fn typescript_functions_take_typed_arguments_and_return_results_and_errors() {
    let Some(ts) = npm::modules() else { return };
    let spore = Spore::new();
    publish_ts(&spore, ts, "arith", Some("tsmath"));
    assert_eq!(spore.invoke("tsmath.add", &["2", "3"]), 5);
    assert_eq!(spore.invoke("tsmath.sub", &["2", "3"]), -1);
    assert_eq!(spore.invoke("tsmath.mul", &["-4", "5"]), -20);
    assert_eq!(spore.invoke("tsmath.div", &["17", "5"]), 3);
    assert_eq!(spore.invoke("tsmath.sum", &["[1, 2, 3]"]), 6);

    let overflow = spore.run(&["invoke", "tsmath.add", "9223372036854775807", "1"]);
    assert!(
        overflow
            .fails_with(exit::GUEST_ERROR)
            .contains("9223372036854775807 + 1 overflows a 64-bit integer"),
        "{overflow:?}"
    );
    let by_zero = spore.run(&["invoke", "tsmath.div", "1", "0"]);
    assert!(
        by_zero
            .fails_with(exit::GUEST_ERROR)
            .contains("division by zero")
    );
    let not_a_number = spore.run(&["invoke", "tsmath.add", "2", r#""three""#]);
    assert!(
        not_a_number
            .fails_with(exit::USAGE)
            .contains("argument 2 (`b`) of `add`"),
        "{not_a_number:?}"
    );
}

#[test]
fn inspect_shows_the_signatures_a_typescript_module_carries() {
    let Some(ts) = npm::modules() else { return };
    let spore = Spore::new();
    publish_ts(&spore, ts, "arith", Some("tsmath"));
    let inspected = spore.run(&["inspect", "tsmath.add"]).ok().to_owned();
    assert!(
        inspected.contains("add(a: i64, b: i64) -> Result<i64, string>"),
        "{inspected}"
    );
    assert!(
        inspected.contains("sum(values: Array<i64>) -> Result<i64, string>"),
        "{inspected}"
    );
    // The same module has no import at all: the SDK's abort is its own, not `env.abort`.
    let info = spore.run(&["--json", "inspect", "tsmath.add"]).json();
    assert_eq!(info["manifest"]["imports"], json!([]), "{info}");
}

#[test]
fn an_http_route_fills_a_typescript_functions_arguments_by_name_from_its_signature() {
    use crate::routes::{route, send, serving};
    let Some(ts) = npm::modules() else { return };
    let node = serving(&route("GET", "/add/{a}", "tsmath.add", ""), None, &[]);
    publish_ts(&node.spore, ts, "arith", Some("tsmath"));
    assert_eq!(send(&node, "GET", "/add/2?b=3", None).json(), 5);
    // The section says `a` is an int, so the route refuses text before any call.
    let not_a_number = send(&node, "GET", "/add/two?b=3", None);
    assert_eq!(not_a_number.status, 400);
    let message = not_a_number.json()["error"]["message"].to_string();
    assert!(
        message.contains("`a` is `two`, not an integer"),
        "{message}"
    );
}

#[test]
fn a_typescript_function_serves_a_route_with_the_whole_request_and_its_own_response() {
    use crate::routes::{route, send, serving};
    let Some(ts) = npm::modules() else { return };
    let routes = [
        route("GET", "/hello/{name}", "tsweb.hello", ""),
        route("POST", "/shout", "tsweb.shout", ""),
    ]
    .concat();
    let node = serving(&routes, None, &[]);
    publish_ts(&node.spore, ts, "web", Some("tsweb"));

    // The signature gives the parameter the kind `request`, so the route passes the
    // request value rather than look for an argument named `request`.
    let hello = send(&node, "GET", "/hello/ada%20lovelace?greeting=hi", None);
    assert_eq!(
        (hello.status, hello.body.as_str()),
        (200, "hi, ada lovelace!")
    );
    assert_eq!(
        hello.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(hello.header("x-method"), Some("GET"));
    assert!(
        hello
            .header("x-agent")
            .is_some_and(|a| a.starts_with("ureq")),
        "{:?}",
        hello.header("x-agent")
    );

    let shouted = send(&node, "POST", "/shout", Some("quiet please"));
    assert_eq!(
        (shouted.status, shouted.body.as_str()),
        (201, "QUIET PLEASE")
    );
    assert_eq!(shouted.header("location"), Some("/shout"));
}

#[test]
fn a_typescript_function_reshapes_nested_json() {
    let Some(ts) = npm::modules() else { return };
    let spore = Spore::new();
    publish_ts(&spore, ts, "reshape", Some("tsreshape"));
    let orders = json!([
        {"customer": {"id": 2, "name": "Bo", "address": {"city": "Oslo"}}, "items": [{"sku": "pen", "qty": 3, "price_cents": 150}]},
        {"customer": {"id": 1, "name": "Al", "address": {"city": "Rome"}}, "items": [{"sku": "ink", "qty": 1, "price_cents": 900}, {"sku": "pen", "qty": 1, "price_cents": 150}]},
        {"customer": {"id": 2, "name": "Bo", "address": {"city": "Oslo"}}, "items": []}
    ]);
    // The same answer as the Rust `reshape.summarize_orders` (tests/all/codebase.rs).
    let summary = spore.invoke("tsreshape.summarize_orders", &[&orders.to_string()]);
    assert_eq!(
        summary,
        json!({
            "customers": [
                {"id": 1, "name": "Al", "city": "Rome", "orders": 1, "total_cents": 1050},
                {"id": 2, "name": "Bo", "city": "Oslo", "orders": 2, "total_cents": 450}
            ],
            "skus": {"ink": 1, "pen": 4},
            "total_cents": 1500
        })
    );
    let flat = spore.invoke(
        "tsreshape.flatten",
        &[r#"{"a": {"b": [{"c": 1}, 2.5]}, "d": [], "e": null}"#],
    );
    assert_eq!(
        flat,
        json!({"a.b.0.c": 1, "a.b.1": 2.5, "d": [], "e": null})
    );
    let missing = spore.run(&["invoke", "tsreshape.summarize_orders", r#"[{"items": []}]"#]);
    assert!(
        missing
            .fails_with(exit::GUEST_ERROR)
            .contains("missing field `customer`"),
        "{missing:?}"
    );
}

#[test]
fn a_typescript_counter_keeps_its_count_in_kv_where_rust_reads_it() {
    let Some(ts) = npm::modules() else { return };
    let spore = Spore::new();
    publish_ts(&spore, ts, "counter", Some("tscounter"));
    spore.publish("visits", Some("visits"));
    assert_eq!(spore.invoke("tscounter.hit", &[r#""home""#]), 1);
    assert_eq!(spore.invoke("tscounter.hit", &[r#""home""#]), 2);
    // Both languages keep a count under `visits/<page>` in the same kv namespace.
    assert_eq!(spore.invoke("visits.hit", &[r#""home""#]), 3);
    assert_eq!(spore.invoke("tscounter.count", &[r#""home""#]), 3);
    assert_eq!(spore.invoke("tscounter.count", &[r#""away""#]), 0);
}

#[test]
fn typescript_and_rust_functions_call_each_other() {
    let Some(ts) = npm::modules() else { return };
    let spore = Spore::new();
    let ts_arith = publish_ts(&spore, ts, "arith", None);
    let ts_caller = publish_ts(&spore, ts, "caller", Some("tscaller"));
    let rust_arith = spore.publish("arith", None);
    spore.publish("caller", Some("caller"));

    // TypeScript calls Rust: (5 + 5) + 5.
    let rust_add = format!("\"{rust_arith}:add\"");
    assert_eq!(spore.invoke("tscaller.call_twice", &[&rust_add, "5"]), 15);
    // Rust calls TypeScript.
    let ts_add = format!("\"{ts_arith}:add\"");
    assert_eq!(spore.invoke("caller.call_twice", &[&ts_add, "5"]), 15);
    // A called function's error reaches the caller as its value (kind guest_error).
    let ts_div = format!("\"{ts_arith}:div\"");
    let failed = spore.run(&["invoke", "caller.call_twice", &ts_div, "0"]);
    assert!(
        failed
            .fails_with(exit::GUEST_ERROR)
            .contains("returned an error: 0 / 0: division by zero"),
        "{failed:?}"
    );
    // Recursion through `call` stops at the node's depth limit, in TypeScript too.
    let itself = format!("\"{ts_caller}:depth\"");
    assert_eq!(spore.invoke("tscaller.depth", &[&itself, "0"]), 8);
    let rust_div = format!("\"{rust_arith}:div\"");
    let failed = spore.run(&["invoke", "tscaller.call_twice", &rust_div, "0"]);
    assert!(
        failed
            .fails_with(exit::GUEST_ERROR)
            .contains("returned an error: 0 / 0: division by zero"),
        "{failed:?}"
    );
}

#[test]
fn a_typescript_function_is_placed_on_the_node_that_binds_kv() {
    let Some(ts) = npm::modules() else { return };
    let (cloud, edge) = crate::mesh::cloud_and_edge();
    let counter = publish_ts(&edge.spore, ts, "counter", None);

    for expected in 1..=2 {
        let report = edge
            .spore
            .invoke_report(&format!("{counter}:hit"), &[r#""home""#]);
        assert_eq!(report["result"], expected, "{report}");
        let ran_on_cloud = report["path"].as_array().unwrap().iter().any(|step| {
            step["node"] == cloud.peer_id.as_str()
                && step["step"].as_str().unwrap().starts_with("ran")
        });
        assert!(ran_on_cloud, "{report}");
    }
    // The count lives in the cloud's kv, where the Rust counter reads it too.
    let visits = cloud
        .spore
        .run(&["publish", module_path("visits").to_str().unwrap()]);
    let visits = visits.ok().to_owned();
    assert_eq!(
        cloud
            .spore
            .invoke(&format!("{visits}:count"), &[r#""home""#]),
        2
    );
}

/// What `spore new NAME --lang ts` will do: copy `sdk/assemblyscript/template`, with
/// `{{name}}` and `{{sdk}}` (the SDK's npm dependency) filled in.
#[test]
fn the_typescript_template_builds_with_npm_and_its_functions_run() {
    if npm::modules().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = new_from_template(&dir.path().join("greeter"));
    // The same sources give the same module, wherever they are built.
    let elsewhere = new_from_template(&dir.path().join("elsewhere/greeter"));
    assert_eq!(
        std::fs::read(project.join("build/greeter.wasm")).unwrap(),
        std::fs::read(elsewhere.join("build/greeter.wasm")).unwrap(),
        "two builds of one template differ"
    );

    let spore = Spore::new();
    let module = project.join("build/greeter.wasm");
    spore
        .run(&["publish", module.to_str().unwrap(), "--name", "greeter"])
        .ok();
    assert_eq!(
        spore.invoke("greeter.hello", &[r#""world""#]),
        "Hello, world!"
    );
    assert_eq!(spore.invoke("greeter.divide", &["7", "2"]), 3);
    assert_eq!(spore.invoke("greeter.remember", &[r#""milk""#]), "");
    assert_eq!(spore.invoke("greeter.remember", &[r#""eggs""#]), "milk");
    let inspected = spore.run(&["inspect", "greeter.hello"]).ok().to_owned();
    assert!(
        inspected.contains("hello(name: string) -> string"),
        "{inspected}"
    );
}

/// Writes the project `greeter` to `project` with `spore new --lang ts` (on a home of its
/// own, which installs the TypeScript SDK the binary carries), installs and builds it.
fn new_from_template(project: &Path) -> std::path::PathBuf {
    let home = Spore::new();
    home.run(&[
        "new",
        "greeter",
        "--lang",
        "ts",
        "--path",
        project.to_str().unwrap(),
    ])
    .ok();
    for file in ["package.json", "README.md", "assembly/index.ts", ".npmrc"] {
        let text = std::fs::read_to_string(project.join(file)).unwrap();
        assert!(!text.contains("{{"), "{file} has a placeholder left");
    }
    npm::run(project, "npm", &["install", "--no-audit", "--no-fund"]);
    npm::run(project, "npm", &["run", "build"]);
    project.to_path_buf()
}
