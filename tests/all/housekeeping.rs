//! Publishing all or nothing, removing modules, collecting garbage, the bounds on what a
//! call may store, and homes written by spore before `index.redb`.

use crate::support::{Spore, exit, module_path, temp_file};

fn module_files(spore: &Spore) -> usize {
    std::fs::read_dir(spore.home().join("codebase/modules"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

fn listed(spore: &Spore) -> usize {
    spore
        .run(&["--json", "ls"])
        .json()
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn a_module_the_compiler_refuses_is_not_stored() {
    let spore = Spore::new();
    // Valid Wasm and a valid spore module, but a table larger than the engine allows
    // any instance: the compiler refuses it.
    let bytes = wat::parse_str(
        r#"(module (memory (export "memory") 1)
            (table 100000000 funcref)
            (func (export "spore_alloc") (param i32) (result i32) i32.const 0)
            (func (export "f") (param i32 i32) (result i64) i64.const 0))"#,
    )
    .unwrap();
    let (_dir, path) = temp_file("huge-table.wasm", &bytes);
    let run = spore.run(&["publish", path.to_str().unwrap(), "--name", "huge"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert_stores_nothing(&spore);
}

#[test]
fn publish_with_one_name_that_cannot_be_formed_stores_nothing() {
    let spore = Spore::new();
    // `arith` has five functions; a 253-byte name is valid alone, but NAME.function is
    // over the 256 bytes a name may have.
    let long = format!("a{}", "b".repeat(252));
    let path = module_path("arith");
    spore
        .run(&["publish", path.to_str().unwrap(), "--name", &long])
        .fails_with(exit::USAGE);
    assert_stores_nothing(&spore);
}

#[test]
fn rm_is_refused_while_names_point_at_the_module_and_force_removes_them_too() {
    let spore = Spore::new();
    let hash = spore.publish("arith", Some("math"));
    let faults = spore.publish("faults", None);
    let stderr = spore.run(&["rm", &hash]).fails_with(exit::USAGE).to_owned();
    assert!(stderr.contains("math.add"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(listed(&spore), 2);

    let removed = spore.run(&["--json", "rm", &hash[..10], "--force"]).json();
    assert_eq!(removed["module"], hash.as_str());
    assert_eq!(removed["names"].as_array().unwrap().len(), 5);
    assert_eq!(listed(&spore), 1);
    assert!(!spore.home().join("codebase/modules").join(&hash).exists());
    spore
        .run(&["invoke", "math.add", "1", "2"])
        .fails_with(exit::NOT_FOUND);
    // The names' history keeps where they pointed.
    let history = spore
        .run(&["--json", "names", "history", "math.add"])
        .json();
    assert_eq!(history.as_array().unwrap().len(), 2);
    // An unnamed module goes without --force.
    spore.run(&["rm", &faults]).ok();
    assert_eq!(listed(&spore), 0);
    spore.run(&["verify"]).ok();
}

#[test]
fn gc_removes_module_files_that_were_never_published() {
    let spore = Spore::new();
    let hash = spore.publish("arith", None);
    // A module file without a manifest, as a publication killed before its commit leaves.
    let orphan = blake3::hash(b"not really a module").to_hex().to_string();
    std::fs::write(
        spore.home().join("codebase/modules").join(&orphan),
        b"not really a module",
    )
    .unwrap();
    assert_eq!(listed(&spore), 1);
    let report = spore.run(&["--json", "gc"]).json();
    assert_eq!(report["modules"], serde_json::json!([orphan]));
    assert_eq!(module_files(&spore), 1);
    assert_eq!(spore.invoke(&format!("{hash}:add"), &["1", "2"]), 3);
    assert_eq!(
        spore.run(&["--json", "gc"]).json()["modules"],
        serde_json::json!([])
    );
}

#[test]
fn a_kv_namespace_over_its_quota_refuses_the_write_with_quota_and_keeps_the_old_value() {
    let spore = Spore::new();
    spore.write_config(&format!(
        "{}\n",
        spore_node::config::default_config().replace(
            "max_namespace_bytes = \"256MiB\"",
            "max_namespace_bytes = \"2KiB\""
        )
    ));
    spore.publish("telemetry", Some("telemetry"));
    spore
        .run(&["invoke", "telemetry.store", r#""k""#, r#""small""#])
        .ok();
    let big = format!("\"{}\"", "x".repeat(3000));
    let stderr = spore
        .run(&["invoke", "telemetry.store", r#""k""#, &big])
        .fails_with(exit::GUEST_ERROR)
        .to_owned();
    assert!(stderr.contains("quota"), "{stderr}");
    assert!(stderr.contains("max_namespace_bytes"), "{stderr}");
    assert_eq!(spore.invoke("telemetry.load", &[r#""k""#]), "small");
}

#[test]
fn a_home_written_with_sled_is_imported_once_and_its_files_moved_aside() {
    let spore = Spore::new();
    let bytes = std::fs::read(module_path("arith")).unwrap();
    let manifest = spore_core::Manifest::derive(&bytes).unwrap();
    let damaged = {
        let mut copy = std::fs::read(module_path("faults")).unwrap();
        let middle = copy.len() / 2;
        copy[middle] ^= 1;
        (
            blake3::hash(&std::fs::read(module_path("faults")).unwrap()),
            copy,
        )
    };
    // The home as spore wrote it with sled: trees of module bytes, manifests, names,
    // their history, and a kv namespace.
    {
        let db = sled::open(spore.home().join("codebase")).unwrap();
        let blobs = db.open_tree("blobs").unwrap();
        blobs
            .insert(manifest.module.as_bytes(), bytes.as_slice())
            .unwrap();
        blobs
            .insert(damaged.0.as_bytes(), damaged.1.as_slice())
            .unwrap();
        db.open_tree("manifests")
            .unwrap()
            .insert(manifest.module.as_bytes(), manifest.to_bytes())
            .unwrap();
        let target: spore_core::FunctionRef = format!("{}:add", manifest.module).parse().unwrap();
        for seq in 1..=2 {
            let entry = spore_store::NameEntry {
                seq,
                event: spore_store::NameEvent::Set(target.clone()),
                at_ms: 1_700_000_000_000 + seq,
            };
            let encoded = spore_core::value::to_canonical(&entry).unwrap();
            let mut key = b"calc\0".to_vec();
            key.extend_from_slice(&seq.to_be_bytes());
            db.open_tree("name_history")
                .unwrap()
                .insert(key, encoded.clone())
                .unwrap();
            db.open_tree("names")
                .unwrap()
                .insert("calc", encoded)
                .unwrap();
        }
        let kv = db.open_tree("kv/default").unwrap();
        // What the kv provider stored: the canonical CBOR of the text "small".
        kv.insert("k", spore_core::value::to_canonical(&"small").unwrap())
            .unwrap();
        db.flush().unwrap();
    }

    assert_eq!(spore.invoke("calc", &["1", "2"]), 3);
    let codebase = spore.home().join("codebase");
    assert!(codebase.join("index.redb").is_file());
    assert!(
        codebase.join("sled-migrated/db").exists(),
        "sled's files moved aside"
    );
    assert!(!codebase.join("db").exists());
    assert_eq!(
        spore
            .run(&["--json", "names", "history", "calc"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    spore.publish("telemetry", Some("telemetry"));
    assert_eq!(spore.invoke("telemetry.load", &[r#""k""#]), "small");
    // The module whose bytes no longer matched their hash was left out, and said so.
    let verify = spore.run(&["verify"]);
    assert!(
        verify.stdout.contains(&damaged.0.to_hex().to_string()),
        "{verify:?}"
    );
    verify.fails_with(exit::CORRUPT);
    spore.run(&["verify", "--repair"]);
    spore.run(&["verify"]).ok();
}

/// No module is listed or on disk, and no name exists.
fn assert_stores_nothing(spore: &Spore) {
    assert_eq!(listed(spore), 0);
    assert_eq!(module_files(spore), 0);
    let names = spore.run(&["--json", "names", "ls"]).json();
    assert!(names.as_array().unwrap().is_empty(), "{names}");
}
