//! Publishing: identity by hash, idempotence, and refusing what is not a spore module.

use crate::support::{Spore, exit, module_path, temp_file};

#[test]
fn the_hash_is_blake3_of_the_bytes_as_b3sum_prints_it() {
    let spore = Spore::new();
    let bytes = std::fs::read(module_path("arith")).unwrap();
    let expected = blake3::hash(&bytes).to_hex().to_string();
    assert_eq!(spore.publish("arith", None), expected);
    let path = module_path("arith");
    let hashed = spore.run(&["hash", path.to_str().unwrap()]);
    assert!(hashed.ok().starts_with(&format!("{expected}  ")));
}

#[test]
fn publishing_the_same_bytes_twice_is_a_no_op() {
    let spore = Spore::new();
    let path = module_path("words");
    let first = spore
        .run(&["--json", "publish", path.to_str().unwrap()])
        .json();
    let second = spore
        .run(&["--json", "publish", path.to_str().unwrap()])
        .json();
    assert_eq!(first["manifest"]["module"], second["manifest"]["module"]);
    assert_eq!(first["manifest_hash"], second["manifest_hash"]);
    assert_eq!(first["new"], true);
    assert_eq!(second["new"], false);
    assert_eq!(
        spore
            .run(&["--json", "ls"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn malformed_modules_are_refused_at_publish_with_the_reason() {
    let spore = Spore::new();
    let cases: &[(&str, Vec<u8>, &str)] = &[
        ("text.wasm", b"hello, world".to_vec(), "does not start with the bytes `\\0asm`"),
        ("truncated.wasm", std::fs::read(module_path("arith")).unwrap()[..200].to_vec(), "not a valid WebAssembly module"),
        (
            "no-alloc.wasm",
            wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "f") (param i32 i32) (result i64) i64.const 0))"#).unwrap(),
            "spore_alloc",
        ),
        (
            "dashed-name.wasm",
            wat::parse_str(r#"(module (memory (export "memory") 1)
                (func (export "spore_alloc") (param i32) (result i32) i32.const 0)
                (func (export "foo-bar") (param i32 i32) (result i64) i64.const 0))"#).unwrap(),
            "the export `foo-bar` has the type of a spore function but is not a valid function name",
        ),
        (
            "wasi.wasm",
            wat::parse_str(r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))"#).unwrap(),
            "wasi_snapshot_preview1.fd_write",
        ),
    ];
    for (file, bytes, reason) in cases {
        let (_dir, path) = temp_file(file, bytes);
        let run = spore.run(&["publish", path.to_str().unwrap()]);
        let stderr = run.fails_with(exit::INVALID_MODULE);
        assert!(stderr.contains(reason), "{file}: {stderr}");
    }
    // Nothing was stored, and the home still works.
    assert!(
        spore
            .run(&["--json", "ls"])
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
    let hash = spore.publish("faults", None);
    spore.still_serves(&hash);
}

#[test]
fn inspect_shows_the_derived_manifest_and_names() {
    let spore = Spore::new();
    let hash = spore.publish("arith", Some("math"));
    let info = spore.run(&["--json", "inspect", "math.add"]).json();
    assert_eq!(info["manifest"]["module"], hash.as_str());
    // Each function with its reach: arithmetic reaches no ability.
    assert_eq!(
        info["manifest"]["functions"],
        serde_json::json!({"add": [], "div": [], "mul": [], "sub": [], "sum": []})
    );
    assert_eq!(info["manifest"]["imports"], serde_json::json!([]));
    assert_eq!(info["names"].as_array().unwrap().len(), 5);
    let text = spore.run(&["inspect", &hash[..10]]);
    assert!(
        text.ok()
            .contains("functions  add (pure), div (pure), mul (pure), sub (pure), sum (pure)"),
        "{text:?}"
    );
}

#[test]
fn spore_build_compiles_a_guest_crate_and_publishes_it() {
    let spore = Spore::new();
    // A relative path, as a person types it (tests run in the package's directory).
    assert!(std::path::Path::new("codebase/words/Cargo.toml").is_file());
    let built = spore.run(&["build", "codebase/words", "--name", "text.words"]);
    let hash = built.ok().lines().last().unwrap().to_owned();
    assert_eq!(
        hash,
        blake3::hash(&std::fs::read(module_path("words")).unwrap())
            .to_hex()
            .as_str()
    );
    let top = spore.invoke("text.words.top", &[r#""b a b c b a""#, "2"]);
    assert_eq!(top, serde_json::json!([["b", 3], ["a", 2]]));
}

/// `config.toml` can hold secrets (`[config]` values, provider environments).
#[test]
fn a_fresh_homes_configuration_is_readable_only_by_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let spore = Spore::new();
    spore.run(&["ls"]).ok();
    let mode = std::fs::metadata(spore.home().join("config.toml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "config.toml has mode {:o}",
        mode & 0o777
    );
}
