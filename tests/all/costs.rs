//! What a module may cost a node: every module limit and compile limit refuses the
//! module at publish, naming the limit, before anything is stored; a compile counts
//! against the caller's deadline; commands run under an address-space limit; and the
//! listing commands cope with any module the store accepted.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Run, Spore, exit, module_path, temp_file};

const TOO_LARGE: i32 = exit::USAGE;

/// Returns the spore value `null`: status 0 and CBOR `null` at offset 16, 2 bytes.
const RETURN_NULL: &str = "i64.const 68719476738";

/// A spore module around `body` (functions, imports, tables), with its ABI exports and a
/// function `main` that returns `null`.
fn module(body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module {body}
             (memory (export "memory") 1)
             (data (i32.const 16) "\00\f6")
             (func (export "spore_alloc") (param i32) (result i32) i32.const 1024)
             (func (export "main") (param i32 i32) (result i64) {RETURN_NULL}))"#
    ))
    .unwrap()
}

/// A function with `n` locals, all live across `k` nested blocks that one `br_table`
/// branches into: Cranelift's time and memory grow with blocks times live values, so a
/// module of a few tens of KB takes seconds and hundreds of MB (`nest(2000, 200)`, 28
/// KB: 3.5 s and 300 MB; `nest(4000, 400)`, 58 KB: 33 s and 1.25 GB).
fn nest(k: usize, n: usize) -> Vec<u8> {
    let mut body = String::new();
    for i in 0..n {
        body += &format!(
            "(local.set {} (i32.load offset={} (local.get 0)))\n",
            i + 2,
            4 * i % 60_000
        );
    }
    body += &"block\n".repeat(k);
    body += "local.get 1\nbr_table";
    for target in 0..k {
        body += &format!(" {target}");
    }
    body += "\n";
    for j in 0..k {
        body += &format!(
            "end (local.set {} (i32.add (local.get {}) (local.get 0)))\n",
            (j * 7) % n + 2,
            j % n + 2
        );
    }
    for i in 0..n {
        body += &format!("local.get {}\n", i + 2);
    }
    body += &"i32.add\n".repeat(n - 1);
    module(&format!(
        "(func (export \"nest\") (param i32 i32) (result i64) (local {}) {body} drop {RETURN_NULL})",
        "i32 ".repeat(n)
    ))
}

fn publish_bytes(spore: &Spore, bytes: &[u8]) -> Run {
    let (_dir, path) = temp_file("module.wasm", bytes);
    spore.run(&["publish", path.to_str().unwrap()])
}

#[track_caller]
fn assert_nothing_stored(spore: &Spore) {
    let listed = spore.run(&["--json", "ls"]).json();
    assert_eq!(
        listed,
        serde_json::json!([]),
        "the codebase should be empty"
    );
}

/// Runs spore on `spore`'s home under `ulimit -v kib`.
fn run_under_ulimit(spore: &Spore, kib: u64, args: &[&str]) -> Run {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_spore"))
        .arg("--home")
        .arg(spore.home())
        .args(args)
        .env_remove("SPORE_HOME")
        .env_remove("SPORE_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: output.status.code().expect("spore was killed by a signal"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn default_config_with(replacements: &[(&str, &str)]) -> String {
    let mut text = spore_node::config::default_config();
    for (from, to) in replacements {
        assert!(
            text.contains(from),
            "the default configuration has no `{from}`"
        );
        text = text.replacen(from, to, 1);
    }
    text
}

#[test]
fn every_module_limit_refuses_the_module_at_publish_by_name_and_stores_nothing() {
    let configured = || {
        let spore = Spore::new();
        spore.write_config(&default_config_with(&[
            ("max_bytes = \"16MiB\"", "max_bytes = \"64KiB\""),
            ("max_custom_bytes = \"4MiB\"", "max_custom_bytes = \"1KiB\""),
            ("max_functions = 100000", "max_functions = 50"),
            ("max_exports = 1000", "max_exports = 20"),
            ("max_imports = 1000", "max_imports = 2"),
            (
                "max_function_bytes = \"1MiB\"",
                "max_function_bytes = \"4KiB\"",
            ),
            ("max_locals = 10000", "max_locals = 100"),
            ("max_br_table_targets = 65520", "max_br_table_targets = 100"),
        ]));
        spore
    };
    let with_custom = |bytes: usize| {
        let mut module = module("");
        let name = b"notes";
        let mut content = vec![name.len() as u8];
        content.extend(name);
        content.extend(vec![b'x'; bytes]);
        module.push(0);
        // The section's size as LEB128 (two bytes hold up to 16383).
        let size = content.len();
        module.extend([(size as u8 & 0x7f) | 0x80, (size >> 7) as u8]);
        module.extend(content);
        module
    };
    let funcs = |n: usize| "(func)".repeat(n);
    let exports = |n: usize| {
        (0..n)
            .map(|i| format!("(func (export \"e{i}\"))"))
            .collect::<String>()
    };
    let imports = |n: usize| {
        [("kv", "get"), ("kv", "put"), ("log", "info")][..n]
            .iter()
            .map(|(a, o)| format!("(import \"{a}\" \"{o}\" (func (param i32 i32) (result i64)))"))
            .collect::<String>()
    };
    let body = |n: usize| format!("(func {})", "nop ".repeat(n));
    let locals = |n: usize| format!("(func (local {}))", "i32 ".repeat(n));
    let br_table = |n: usize| {
        format!(
            "(func (block (br_table {} (i32.const 0))))",
            "0 ".repeat(n + 1)
        )
    };
    let data = |n: usize| format!("(data (i32.const 100) \"{}\")", "a".repeat(n));
    // Each shape just within its limit publishes; just over it, it is refused by name.
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        ("max_bytes", module(&data(60_000)), module(&data(70_000))),
        ("max_custom_bytes", with_custom(900), with_custom(1100)),
        ("max_functions", module(&funcs(40)), module(&funcs(60))),
        ("max_exports", module(&exports(10)), module(&exports(30))),
        ("max_imports", module(&imports(2)), module(&imports(3))),
        (
            "max_function_bytes",
            module(&body(4000)),
            module(&body(5000)),
        ),
        ("max_locals", module(&locals(100)), module(&locals(101))),
        (
            "max_br_table_targets",
            module(&br_table(100)),
            module(&br_table(101)),
        ),
    ];
    for (key, within, over) in cases {
        let spore = configured();
        let stderr = publish_bytes(&spore, &over)
            .fails_with(TOO_LARGE)
            .to_owned();
        assert!(
            stderr.contains(&format!("`limits.module.{key}`")) && stderr.contains("over the limit"),
            "{key}: {stderr}"
        );
        assert_nothing_stored(&spore);
        let hash = publish_bytes(&spore, &within).ok().to_owned();
        assert_eq!(
            spore.invoke(&format!("{hash}:main"), &[]),
            serde_json::Value::Null,
            "{key}"
        );
    }
}

#[test]
fn the_engine_refuses_at_publish_what_it_cannot_run_and_nothing_is_stored() {
    let spore = Spore::new();
    let cases = [
        // An initial memory over limits.max_memory (256 MiB): 300 MiB.
        (
            wat::parse_str(
                r#"(module (memory (export "memory") 4800)
                   (func (export "spore_alloc") (param i32) (result i32) i32.const 0)
                   (func (export "main") (param i32 i32) (result i64) i64.const 0))"#,
            )
            .unwrap(),
            exit::INVALID_MODULE,
            "memory",
        ),
        // A table over the pool's 20,000 entries.
        (
            module("(table 30000 funcref)"),
            exit::INVALID_MODULE,
            "table",
        ),
        // Two tables: the pool has one per instance.
        (
            module("(table 1 funcref) (table 1 funcref)"),
            exit::INVALID_MODULE,
            "table",
        ),
        (
            module("(func (drop (ref.null extern)))"),
            exit::INVALID_MODULE,
            "gc",
        ),
        // More br_table targets than Cranelift compiles: caught before compiling.
        (
            module(&format!(
                "(func (block (br_table {} (i32.const 0))))",
                "0 ".repeat(65_522)
            )),
            TOO_LARGE,
            "max_br_table_targets",
        ),
    ];
    for (bytes, code, says) in cases {
        let stderr = publish_bytes(&spore, &bytes).fails_with(code).to_owned();
        assert!(stderr.to_lowercase().contains(says), "{says}: {stderr}");
        assert_nothing_stored(&spore);
    }
}

#[test]
fn a_compile_over_the_time_limit_is_stopped_and_the_module_refused() {
    let spore = Spore::new();
    spore.write_config(&default_config_with(&[(
        "timeout = \"1m\"",
        "timeout = \"1s\"",
    )]));
    let started = Instant::now();
    let stderr = publish_bytes(&spore, &nest(3000, 300))
        .fails_with(TOO_LARGE)
        .to_owned();
    let elapsed = started.elapsed();
    assert!(
        stderr.contains("took longer than this node's limit of 1s"),
        "{stderr}"
    );
    assert!(elapsed < Duration::from_secs(5), "publish took {elapsed:?}");
    assert_nothing_stored(&spore);
    // A module that compiles in time still publishes.
    publish_bytes(&spore, &module("")).ok();
}

#[test]
fn a_compile_over_the_memory_limit_is_stopped_and_the_module_refused() {
    let spore = Spore::new();
    spore.write_config(&default_config_with(&[(
        "memory = \"2GiB\"",
        "memory = \"384MiB\"",
    )]));
    let stderr = publish_bytes(&spore, &nest(3000, 300))
        .fails_with(TOO_LARGE)
        .to_owned();
    assert!(
        stderr.contains("needed more than this node's limit of 402653184 bytes"),
        "{stderr}"
    );
    assert_nothing_stored(&spore);
    // The largest test program compiles within the same limit.
    spore.publish("markdown", None);
}

#[test]
fn a_call_whose_deadline_ends_during_a_compile_times_out_at_its_deadline() {
    let spore = Spore::new();
    let hash = publish_bytes(&spore, &nest(2000, 200)).ok().to_owned();
    // Another limits.max_memory is another compiler: the stored artifact no longer
    // serves, and the next call compiles the module again.
    spore.write_config(&default_config_with(&[
        ("max_memory = \"256MiB\"", "max_memory = \"128MiB\""),
        ("memory = \"256MiB\"\nargs", "memory = \"128MiB\"\nargs"),
    ]));
    for _ in 0..2 {
        let started = Instant::now();
        let run = spore.run(&[
            "--json",
            "invoke",
            &format!("{hash}:nest"),
            "--timeout",
            "300ms",
        ]);
        let elapsed = started.elapsed();
        let error: serde_json::Value = serde_json::from_str(run.fails_with(exit::TRAP)).unwrap();
        assert_eq!(error["error"]["kind"], "timeout", "{error}");
        assert!(
            elapsed < Duration::from_millis(1500),
            "a 300 ms deadline ended the call after {elapsed:?}"
        );
    }
    // With time enough, the compile finishes and the call runs.
    assert_eq!(
        spore.invoke(&format!("{hash}:nest"), &["--timeout", "60s"]),
        serde_json::Value::Null
    );
}

#[test]
fn commands_run_under_an_address_space_limit_of_4_gib() {
    let spore = Spore::new();
    let hash = spore.publish("arith", Some("math"));
    const FOUR_GIB: u64 = 4 << 20;
    for args in [
        vec!["ls"],
        vec!["names", "ls"],
        vec!["inspect", "math.add"],
        vec!["verify"],
    ] {
        run_under_ulimit(&spore, FOUR_GIB, &args).ok();
    }
    let run = run_under_ulimit(
        &spore,
        FOUR_GIB,
        &["invoke", "--no-memo", "math.add", "2", "3"],
    );
    assert_eq!(run.ok(), "5");
    let markdown = module_path("markdown");
    run_under_ulimit(&spore, FOUR_GIB, &["publish", markdown.to_str().unwrap()]).ok();
    // Listing reserves nothing at all: it runs where no instance pool would fit.
    run_under_ulimit(&spore, 1 << 20, &["ls"]).ok();
    assert!(spore.run(&["ls"]).ok().contains(&hash[..12]));
}

#[test]
fn under_a_tighter_address_space_limit_the_error_says_what_to_lower() {
    let spore = Spore::new();
    spore.publish("arith", Some("math"));
    let run = run_under_ulimit(
        &spore,
        1 << 20,
        &["invoke", "--no-memo", "math.add", "2", "3"],
    );
    let stderr = run.fails_with(exit::UNAVAILABLE);
    assert!(
        stderr.contains("instance slots") && stderr.contains("ulimit -v"),
        "{stderr}"
    );
}

#[test]
fn a_call_may_not_ask_for_more_memory_than_the_node_gives_any_call() {
    let spore = Spore::new();
    let hash = spore.publish("faults", None);
    let stderr = spore
        .run(&["invoke", &format!("{hash}:hog"), "8", "--memory", "512MiB"])
        .fails_with(TOO_LARGE)
        .to_owned();
    assert!(
        stderr.contains("512MiB") && stderr.contains("`limits.max_memory`"),
        "{stderr}"
    );
    spore.write_config(&default_config_with(&[(
        "memory = \"64MiB\"",
        "memory = \"512MiB\"",
    )]));
    let stderr = spore.run(&["ls"]).fails_with(exit::USAGE).to_owned();
    assert!(
        stderr.contains("`limits.memory`") && stderr.contains("limits.max_memory"),
        "{stderr}"
    );
}

#[test]
fn ls_and_inspect_cope_with_510_exports_of_128_character_names() {
    let spore = Spore::new();
    let exports: String = (0..510)
        .map(|i| {
            let name = format!("f{i:03}{}", "x".repeat(124));
            assert_eq!(name.len(), 128);
            format!("(func (export \"{name}\") (param i32 i32) (result i64) i64.const 0)")
        })
        .collect();
    let hash = publish_bytes(&spore, &module(&exports)).ok().to_owned();
    let listed = spore.run(&["ls"]).ok().to_owned();
    assert!(
        listed.contains(&hash[..12]) && listed.contains("more"),
        "{listed}"
    );
    let longest = listed.lines().map(str::len).max().unwrap();
    assert!(longest < 400, "a line of {longest} bytes");
    let inspected = spore.run(&["inspect", &hash]).ok().to_owned();
    assert!(
        inspected.contains(&format!("f509{}", "x".repeat(124))),
        "{inspected}"
    );
    let json = spore.run(&["--json", "ls"]).json();
    assert_eq!(
        json[0]["manifest"]["functions"].as_object().unwrap().len(),
        511
    );
}
