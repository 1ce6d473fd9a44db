//! The codebase against a real sled database in a temporary directory.

use spore_core::{FunctionRef, Hash, Manifest, Name};
use spore_store::{Codebase, NameEvent, OpenOptions, StoreError};

fn module(export: &str) -> (Vec<u8>, Manifest) {
    let bytes = wat::parse_str(format!(
        r#"(module (memory (export "memory") 1)
            (func (export "spore_alloc") (param i32) (result i32) i32.const 0)
            (func (export "{export}") (param i32 i32) (result i64) i64.const 0))"#
    ))
    .unwrap();
    let manifest = Manifest::derive(&bytes).unwrap();
    (bytes, manifest)
}

fn name(text: &str) -> Name {
    text.parse().unwrap()
}

#[test]
fn modules_round_trip_and_publishing_twice_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    let (bytes, manifest) = module("add");
    assert!(codebase.put_module(&bytes, &manifest).unwrap());
    assert!(!codebase.put_module(&bytes, &manifest).unwrap());
    assert_eq!(codebase.module_bytes(&manifest.module).unwrap(), bytes);
    assert_eq!(codebase.manifest(&manifest.module).unwrap(), manifest);
    assert_eq!(codebase.manifests().unwrap(), vec![manifest]);
}

#[test]
fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, manifest) = module("add");
    {
        let codebase = Codebase::open(dir.path()).unwrap();
        codebase.put_module(&bytes, &manifest).unwrap();
        codebase
            .set_name(
                &name("math.add"),
                &FunctionRef::new(manifest.module, "add".parse().unwrap()),
            )
            .unwrap();
    }
    let codebase = Codebase::open(dir.path()).unwrap();
    assert_eq!(codebase.module_bytes(&manifest.module).unwrap(), bytes);
    assert!(codebase.name(&name("math.add")).unwrap().is_some());
}

/// A valid module whose bytes differ by a custom section carrying `salt`.
fn salted(salt: u32) -> (Vec<u8>, Manifest) {
    let (mut bytes, _) = module("f");
    let name = b"salt";
    let payload_len = 1 + name.len() + 4;
    bytes.extend_from_slice(&[0, payload_len as u8, name.len() as u8]);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(&salt.to_le_bytes());
    let manifest = Manifest::derive(&bytes).unwrap();
    (bytes, manifest)
}

#[test]
fn prefixes_resolve_like_git() {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    // Find two modules whose hashes share their first six hex digits (a birthday
    // search over 24 bits: a few thousand tries).
    let mut seen = std::collections::HashMap::new();
    let (a, b) = (0u32..)
        .find_map(|salt| {
            let (bytes, manifest) = salted(salt);
            let key = manifest.module.as_bytes()[..3].to_vec();
            seen.insert(key, (bytes.clone(), manifest.clone()))
                .map(|other| (other, (bytes, manifest)))
        })
        .unwrap();
    for (bytes, manifest) in [&a, &b] {
        codebase.put_module(bytes, manifest).unwrap();
    }
    let shared: spore_core::HashPrefix = a.1.module.to_hex()[..6].parse().unwrap();
    match codebase.resolve_prefix(&shared) {
        Err(StoreError::AmbiguousPrefix { mut candidates, .. }) => {
            candidates.sort();
            let mut expected = vec![a.1.module, b.1.module];
            expected.sort();
            assert_eq!(candidates, expected);
        }
        other => panic!("expected an ambiguous prefix, got {other:?}"),
    }
    // One more digit tells them apart unless they share it too; the full hash always does.
    for manifest in [&a.1, &b.1] {
        let full = manifest.module.to_hex().parse().unwrap();
        assert_eq!(codebase.resolve_prefix(&full).unwrap(), manifest.module);
    }
    let missing = Hash::of(b"absent").to_hex()[..12].parse().unwrap();
    assert!(matches!(
        codebase.resolve_prefix(&missing),
        Err(StoreError::PrefixNotFound(_))
    ));
}

#[test]
fn names_keep_their_history_and_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    let (_, v1) = module("add");
    let (_, v2) = module("add2");
    let first = FunctionRef::new(v1.module, "add".parse().unwrap());
    let second = FunctionRef::new(v2.module, "add2".parse().unwrap());
    let add = name("math.add");
    assert_eq!(codebase.set_name(&add, &first).unwrap().seq, 1);
    assert_eq!(codebase.set_name(&add, &second).unwrap().seq, 2);
    assert_eq!(
        codebase.name(&add).unwrap().unwrap().target(),
        Some(&second)
    );
    // Rollback is setting the name to an earlier reference: history only grows.
    codebase.set_name(&add, &first).unwrap();
    let history = codebase.name_history(&add).unwrap();
    let targets: Vec<_> = history.iter().map(|e| e.target().cloned()).collect();
    assert_eq!(
        targets,
        [Some(first.clone()), Some(second), Some(first.clone())]
    );
    assert_eq!(
        codebase.names_for_module(&v1.module).unwrap(),
        vec![(add.clone(), first)]
    );

    codebase.remove_name(&add).unwrap();
    assert!(codebase.name(&add).unwrap().is_none());
    assert!(codebase.names().unwrap().is_empty());
    assert_eq!(
        codebase.name_history(&add).unwrap().last().unwrap().event,
        NameEvent::Removed
    );
    assert!(matches!(
        codebase.remove_name(&add),
        Err(StoreError::NameNotFound(_))
    ));
    assert!(matches!(
        codebase.name_history(&name("nope")),
        Err(StoreError::NameNotFound(_))
    ));
}

#[test]
fn artifacts_are_keyed_by_compiler_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    let hash = Hash::of(b"module");
    codebase
        .put_artifact(&hash, b"compiler-a", b"native code")
        .unwrap();
    assert_eq!(
        codebase.artifact(&hash, b"compiler-a").unwrap().unwrap(),
        b"native code"
    );
    assert_eq!(codebase.artifact(&hash, b"compiler-b").unwrap(), None);
}

#[test]
fn a_second_opener_waits_then_gets_a_precise_lock_error() {
    let dir = tempfile::tempdir().unwrap();
    let _holder = Codebase::open(dir.path()).unwrap();
    let options = OpenOptions {
        lock_timeout: std::time::Duration::from_millis(100),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    match Codebase::open_with(dir.path(), &options) {
        Err(StoreError::Locked { waited, .. }) => {
            assert!(waited >= options.lock_timeout);
            assert!(started.elapsed() < std::time::Duration::from_secs(2));
        }
        Err(other) => panic!("expected a lock error, got {other}"),
        Ok(_) => panic!("a second opener must not get the database"),
    }
}

#[test]
fn kv_spaces_are_separate_and_compare_and_swap_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    let a = codebase.kv_space("a").unwrap();
    let b = codebase.kv_space("b").unwrap();
    a.put("k", b"1").unwrap();
    assert_eq!(a.get("k").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(b.get("k").unwrap(), None);
    assert!(!a.compare_and_swap("k", Some(b"0"), Some(b"2")).unwrap());
    assert!(a.compare_and_swap("k", Some(b"1"), Some(b"2")).unwrap());
    assert!(a.compare_and_swap("new", None, Some(b"x")).unwrap());
    a.put("other", b"y").unwrap();
    assert_eq!(a.list("", 10).unwrap(), ["k", "new", "other"]);
    assert_eq!(a.list("n", 10).unwrap(), ["new"]);
    assert_eq!(a.list("", 2).unwrap().len(), 2);
    assert!(a.delete("k").unwrap());
    assert!(!a.delete("k").unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let a = a.clone();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    loop {
                        let current = a.get("counter").unwrap();
                        let n = current
                            .as_deref()
                            .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
                        if a.compare_and_swap(
                            "counter",
                            current.as_deref(),
                            Some(&(n + 1).to_le_bytes()),
                        )
                        .unwrap()
                        {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(a.get("counter").unwrap().unwrap(), 400u64.to_le_bytes());
}
