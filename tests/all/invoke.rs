//! Invoking by hash, prefix, name and `hash:function`, with JSON in and out.

use crate::support::{Spore, exit};

#[test]
fn by_full_hash_prefix_and_name() {
    let spore = Spore::new();
    let hash = spore.publish("arith", Some("math"));
    assert_eq!(spore.invoke(&format!("{hash}:add"), &["2", "3"]), 5);
    assert_eq!(
        spore.invoke(&format!("{}:mul", &hash[..6]), &["6", "7"]),
        42
    );
    assert_eq!(
        spore.invoke(&format!("{}:sub", hash[..8].to_uppercase()), &["1", "-4"]),
        5
    );
    assert_eq!(spore.invoke("math.sum", &["[1, 2, 3, 4]"]), 10);
}

#[test]
fn a_module_with_one_function_needs_no_export_name() {
    let spore = Spore::new();
    let hash = spore.publish("markdown", None);
    assert_eq!(
        spore.invoke(&hash[..12], &[r#""*hi*""#]),
        "<p><em>hi</em></p>\n"
    );
}

#[test]
fn a_module_with_several_functions_lists_them_when_none_is_named() {
    let spore = Spore::new();
    let hash = spore.publish("arith", None);
    let stderr = spore
        .run(&["invoke", &hash, "1", "2"])
        .fails_with(exit::USAGE)
        .to_owned();
    assert!(stderr.contains("add, div, mul, sub, sum"), "{stderr}");
}

#[test]
fn arguments_come_from_json_and_stdin() {
    let spore = Spore::new();
    let hash = spore.publish("faults", None);
    let nested = r#"{"a":[1,2.5,null,true],"b":{"c":"d"}}"#;
    assert_eq!(
        spore.invoke(&format!("{hash}:echo"), &[nested]),
        serde_json::from_str::<serde_json::Value>(nested).unwrap()
    );
    let piped = spore.run_with_stdin(
        &["invoke", &format!("{hash}:echo"), "-"],
        Some("[1, \"two\"]\n"),
    );
    assert_eq!(piped.json(), serde_json::json!([1, "two"]));
    let bad = spore.run(&["invoke", &format!("{hash}:echo"), "not-json"]);
    assert!(
        bad.fails_with(exit::USAGE)
            .contains("argument 1 is not JSON")
    );
}

#[test]
fn json_output_carries_the_result_and_where_the_time_went() {
    let spore = Spore::new();
    spore.publish("arith", Some("math"));
    let out = spore
        .run(&["--json", "invoke", "math.add", "40", "2"])
        .json();
    assert_eq!(out["result"], 42);
    assert!(out["function"].as_str().unwrap().ends_with(":add"));
    // Publishing compiled the module, so a fresh process loads the cached artifact.
    assert_eq!(out["stats"]["load"], "cached");
    assert!(out["stats"]["run_us"].is_u64());
}

#[test]
fn guest_errors_and_bad_arguments_have_their_own_exit_codes() {
    let spore = Spore::new();
    spore.publish("arith", Some("math"));
    let stderr = spore
        .run(&["invoke", "math.div", "1", "0"])
        .fails_with(exit::GUEST_ERROR)
        .to_owned();
    assert!(stderr.contains("division by zero"), "{stderr}");
    let json = spore.run(&["--json", "invoke", "math.div", "1", "0"]);
    let error: serde_json::Value =
        serde_json::from_str(json.fails_with(exit::GUEST_ERROR)).unwrap();
    assert_eq!(error["error"]["kind"], "guest_error");
    assert_eq!(error["error"]["value"], "1 / 0: division by zero");

    let stderr = spore
        .run(&["invoke", "math.add", "1", r#""two""#])
        .fails_with(exit::USAGE)
        .to_owned();
    assert!(stderr.contains("argument 2 (`b`)"), "{stderr}");
    let stderr = spore
        .run(&["invoke", "math.add", "1"])
        .fails_with(exit::USAGE)
        .to_owned();
    assert!(stderr.contains("takes 2 arguments, got 1"), "{stderr}");
}

#[test]
fn unknown_references_say_what_to_do_next() {
    let spore = Spore::new();
    let hash = spore.publish("arith", None);
    let stderr = spore
        .run(&["invoke", "ffffff", "1"])
        .fails_with(exit::NOT_FOUND)
        .to_owned();
    assert!(stderr.contains("spore ls"), "{stderr}");
    let stderr = spore
        .run(&["invoke", "math.nope"])
        .fails_with(exit::NOT_FOUND)
        .to_owned();
    assert!(stderr.contains("spore names ls"), "{stderr}");
    let stderr = spore
        .run(&["invoke", &format!("{hash}:nope")])
        .fails_with(exit::NOT_FOUND)
        .to_owned();
    assert!(stderr.contains("has no function `nope`"), "{stderr}");
    let stderr = spore
        .run(&["invoke", "0123"])
        .fails_with(exit::USAGE)
        .to_owned();
    assert!(stderr.contains("6 to 64 hex characters"), "{stderr}");
}

/// Pinning a call to a peer needs a node on this home to reach it; without one the call
/// must not quietly run here.
#[test]
fn a_call_pinned_to_a_peer_without_a_running_node_fails_clearly() {
    let spore = Spore::new();
    spore.publish("arith", Some("math"));
    let peer = "12D3KooWD5hnQD22gFFXrQEZYvNMsXMiq19B48UTKSMVLBrLBatx";
    let stderr = spore
        .run(&["invoke", "math.add", "2", "3", "--on", peer])
        .fails_with(exit::UNAVAILABLE)
        .to_owned();
    assert!(
        stderr.contains(peer) && stderr.contains("spore node run"),
        "{stderr}"
    );
}

/// One documented maximum, checked where the value is read, not a trap later.
#[test]
fn a_memory_cap_over_the_maximum_is_refused_before_anything_runs() {
    let spore = Spore::new();
    spore.publish("arith", Some("math"));
    let stderr = spore
        .run(&["invoke", "math.add", "2", "3", "--memory", "5GiB"])
        .fails_with(exit::USAGE)
        .to_owned();
    assert!(
        stderr.contains("5GiB") && stderr.contains("1GiB"),
        "{stderr}"
    );
    spore.configure_limits("memory = \"2GiB\"");
    let stderr = spore
        .run(&["invoke", "math.add", "2", "3"])
        .fails_with(exit::USAGE)
        .to_owned();
    assert!(
        stderr.contains("config.toml:")
            && stderr.contains("limits.memory")
            && stderr.contains("1GiB"),
        "{stderr}"
    );
}
