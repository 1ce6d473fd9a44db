//! The functions of `codebase/`, run through spore.

use serde_json::json;

use crate::support::Spore;

#[test]
fn arith() {
    let spore = Spore::new();
    spore.publish("arith", Some("math"));
    assert_eq!(spore.invoke("math.add", &["2", "3"]), 5);
    assert_eq!(spore.invoke("math.sub", &["2", "3"]), -1);
    assert_eq!(spore.invoke("math.mul", &["-4", "5"]), -20);
    assert_eq!(spore.invoke("math.div", &["17", "5"]), 3);
    assert_eq!(spore.invoke("math.sum", &["[]"]), 0);
}

#[test]
fn word_frequencies() {
    let spore = Spore::new();
    spore.publish("words", Some("words"));
    let text = r#""The cat saw the other cat. THE END""#;
    assert_eq!(
        spore.invoke("words.frequencies", &[text]),
        json!({"cat": 2, "end": 1, "other": 1, "saw": 1, "the": 3})
    );
    assert_eq!(
        spore.invoke("words.top", &[text, "2"]),
        json!([["the", 3], ["cat", 2]])
    );
}

#[test]
fn markdown_to_html_with_pulldown_cmark() {
    let spore = Spore::new();
    spore.publish("markdown", Some("md"));
    let html = spore.invoke(
        "md",
        &[r##""# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~ - [x] done""##],
    );
    let html = html.as_str().unwrap();
    assert!(html.starts_with("<h1>Title</h1>"), "{html}");
    assert!(html.contains("<table>"), "{html}");
    assert!(html.contains("<del>old</del>"), "{html}");
}

#[test]
fn reshaping_nested_json() {
    let spore = Spore::new();
    spore.publish("reshape", Some("reshape"));
    let orders = json!([
        {"customer": {"id": 2, "name": "Bo", "address": {"city": "Oslo"}}, "items": [{"sku": "pen", "qty": 3, "price_cents": 150}]},
        {"customer": {"id": 1, "name": "Al", "address": {"city": "Rome"}}, "items": [{"sku": "ink", "qty": 1, "price_cents": 900}, {"sku": "pen", "qty": 1, "price_cents": 150}]},
        {"customer": {"id": 2, "name": "Bo", "address": {"city": "Oslo"}}, "items": []}
    ]);
    let summary = spore.invoke("reshape.summarize_orders", &[&orders.to_string()]);
    assert_eq!(
        summary["customers"][0],
        json!({"id": 1, "name": "Al", "city": "Rome", "orders": 1, "total_cents": 1050})
    );
    assert_eq!(
        summary["customers"][1],
        json!({"id": 2, "name": "Bo", "city": "Oslo", "orders": 2, "total_cents": 450})
    );
    assert_eq!(summary["skus"], json!({"ink": 1, "pen": 4}));
    assert_eq!(summary["total_cents"], 1500);
    let flat = spore.invoke(
        "reshape.flatten",
        &[r#"{"a": {"b": [{"c": 1}, 2]}, "d": []}"#],
    );
    assert_eq!(flat, json!({"a.b.0.c": 1, "a.b.1": 2, "d": []}));
    let missing = spore.run(&["invoke", "reshape.summarize_orders", r#"[{"items": []}]"#]);
    assert!(
        missing
            .fails_with(crate::support::exit::USAGE)
            .contains("customer")
    );
}

#[test]
fn cpu_heavy_functions_match_native_results() {
    let spore = Spore::new();
    spore.publish("cpu", Some("cpu"));
    // Python: hashlib.sha256(bytes(i % 251 for i in range(1 << 20))).hexdigest()
    assert_eq!(
        spore.invoke("cpu.sha256", &["1"]),
        "631b84027d6b9e52b539c4e8373622d23032dfadc64d60af87339c9037e4f769"
    );
    // The same escape-time loop in Python gives 66192 for 64x48 at 100 iterations.
    assert_eq!(spore.invoke("cpu.mandelbrot", &["64", "48", "100"]), 66192);
}
