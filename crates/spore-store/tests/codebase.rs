//! The codebase against real files in a temporary directory.

use spore_core::{FunctionRef, Hash, Manifest, Name};
use spore_store::{Codebase, Damaged, NameEvent, OpenOptions, StoreError};

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
        Err(StoreError::NameNotFound { .. })
    ));
    assert!(matches!(
        codebase.name_history(&name("nope")),
        Err(StoreError::NameNotFound { .. })
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

#[test]
fn publish_stores_the_module_its_manifest_and_every_name_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    let (bytes, manifest) = module("add");
    let target = FunctionRef::new(manifest.module, "add".parse().unwrap());
    let names = [
        (name("math.add"), target.clone()),
        (name("math.plus"), target.clone()),
    ];
    assert!(codebase.publish(&bytes, &manifest, &names).unwrap());
    assert_eq!(codebase.names().unwrap().len(), 2);
    assert_eq!(
        codebase.names_for_module(&manifest.module).unwrap().len(),
        2
    );
    // A manifest for other bytes is refused before anything is written.
    let (other, _) = module("sub");
    let before = std::fs::read_dir(dir.path().join("modules"))
        .unwrap()
        .count();
    assert!(codebase.publish(&other, &manifest, &names).is_err());
    assert_eq!(
        std::fs::read_dir(dir.path().join("modules"))
            .unwrap()
            .count(),
        before
    );
    assert_eq!(codebase.name_history(&name("math.add")).unwrap().len(), 1);
}

#[test]
fn a_staged_module_is_readable_but_listed_nowhere_and_stored_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    let (bytes, manifest) = module("add");
    {
        let _staged = codebase.stage(&bytes, &manifest);
        assert_eq!(codebase.module_bytes(&manifest.module).unwrap(), bytes);
        assert_eq!(codebase.manifest(&manifest.module).unwrap(), manifest);
        assert!(!codebase.has_module(&manifest.module).unwrap());
        assert!(codebase.manifests().unwrap().is_empty());
    }
    assert!(matches!(
        codebase.manifest(&manifest.module),
        Err(StoreError::ModuleNotFound(_))
    ));
    assert_eq!(
        std::fs::read_dir(dir.path().join("modules"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn a_named_module_is_removed_only_with_force_and_takes_its_names_along() {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    let (bytes, manifest) = module("add");
    let target = FunctionRef::new(manifest.module, "add".parse().unwrap());
    codebase
        .publish(&bytes, &manifest, &[(name("math.add"), target)])
        .unwrap();
    codebase
        .put_artifact(&manifest.module, b"compiler", b"code")
        .unwrap();
    match codebase.remove_module(&manifest.module, false) {
        Err(StoreError::ModuleInUse { names, .. }) => assert_eq!(names, ["math.add"]),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(codebase.has_module(&manifest.module).unwrap());
    let removed = codebase.remove_module(&manifest.module, true).unwrap();
    assert_eq!(removed.names, [name("math.add")]);
    assert!(!codebase.has_module(&manifest.module).unwrap());
    assert!(codebase.names().unwrap().is_empty());
    assert_eq!(
        codebase
            .name_history(&name("math.add"))
            .unwrap()
            .last()
            .unwrap()
            .event,
        NameEvent::Removed
    );
    assert_eq!(
        codebase.artifact(&manifest.module, b"compiler").unwrap(),
        None
    );
    assert!(
        !dir.path()
            .join("modules")
            .join(manifest.module.to_hex())
            .exists()
    );
    assert!(matches!(
        codebase.remove_module(&manifest.module, false),
        Err(StoreError::ModuleNotFound(_))
    ));
}

#[test]
fn gc_collects_unpublished_module_files_stale_artifacts_and_orphan_memo_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (kept, kept_manifest) = module("add");
    let (orphan, orphan_manifest) = module("sub");
    let codebase = Codebase::open(dir.path()).unwrap();
    codebase.put_module(&kept, &kept_manifest).unwrap();
    // A module file whose publication never committed, as a crash would leave it.
    std::fs::write(
        dir.path()
            .join("modules")
            .join(orphan_manifest.module.to_hex()),
        &orphan,
    )
    .unwrap();
    codebase
        .put_artifact(&orphan_manifest.module, b"compiler-new", b"code")
        .unwrap();
    codebase
        .put_artifact(&kept_manifest.module, b"compiler-old", b"old code")
        .unwrap();
    codebase
        .put_artifact(&kept_manifest.module, b"compiler-new", b"code")
        .unwrap();
    codebase
        .memo_put(&Hash::of(b"call 1"), &kept_manifest.module, b"result")
        .unwrap();
    codebase
        .memo_put(&Hash::of(b"call 2"), &orphan_manifest.module, b"result")
        .unwrap();

    let report = codebase.gc().unwrap();
    assert_eq!(report.modules, [orphan_manifest.module]);
    assert_eq!(report.artifacts, 2, "{report:?}");
    assert_eq!(report.memo_entries, 1);
    assert_eq!(
        codebase
            .artifact(&kept_manifest.module, b"compiler-new")
            .unwrap()
            .unwrap(),
        b"code"
    );
    assert!(codebase.memo_get(&Hash::of(b"call 1")).unwrap().is_some());
    assert_eq!(codebase.module_bytes(&kept_manifest.module).unwrap(), kept);
    assert_eq!(codebase.gc().unwrap(), Default::default());
}

#[test]
fn the_memo_keeps_to_its_size_cap_by_dropping_the_oldest_entries() {
    let dir = tempfile::tempdir().unwrap();
    let options = OpenOptions {
        memo_max_bytes: 1000,
        ..Default::default()
    };
    let codebase = Codebase::open_with(dir.path(), &options).unwrap();
    let module = Hash::of(b"module");
    let key = |n: u32| Hash::of(&n.to_le_bytes());
    for n in 0..10 {
        codebase
            .memo_put(&key(n), &module, &[n as u8; 300])
            .unwrap();
    }
    // 10 entries of 300 bytes went into a 1000-byte memo: the newest 3 stay.
    for n in 0..7 {
        assert_eq!(codebase.memo_get(&key(n)).unwrap(), None, "entry {n}");
    }
    for n in 7..10 {
        assert_eq!(
            codebase.memo_get(&key(n)).unwrap().unwrap(),
            [n as u8; 300],
            "entry {n}"
        );
    }
    // An entry larger than the whole memo is not kept, and evicts nothing.
    codebase.memo_put(&key(99), &module, &[0; 1001]).unwrap();
    assert_eq!(codebase.memo_get(&key(99)).unwrap(), None);
    assert!(codebase.memo_get(&key(9)).unwrap().is_some());
    assert_eq!(codebase.memo_clear().unwrap(), 3);
}

#[test]
fn a_kv_write_over_the_namespace_quota_fails_and_keeps_the_old_value() {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    let space = codebase.kv_space("small").unwrap().with_quota(100);
    space.put("a", &[1; 40]).unwrap();
    space.put("b", &[2; 40]).unwrap();
    assert_eq!(space.usage().unwrap(), 82);
    match space.put("a", &[3; 60]) {
        Err(error @ StoreError::QuotaExceeded { .. }) => {
            assert_eq!(error.kind(), spore_core::ErrorKind::Quota);
            assert!(error.to_string().contains("small"), "{error}");
        }
        other => panic!("expected a quota error, got {other:?}"),
    }
    assert_eq!(space.get("a").unwrap().unwrap(), [1; 40]);
    assert!(matches!(
        space.compare_and_swap("c", None, Some(&[4; 30])),
        Err(StoreError::QuotaExceeded { .. })
    ));
    // Writes that shrink the namespace always go through.
    space.put("a", &[5; 10]).unwrap();
    assert!(space.delete("b").unwrap());
    assert_eq!(space.usage().unwrap(), 11);
    // Quotas are per namespace.
    codebase
        .kv_space("other")
        .unwrap()
        .with_quota(100)
        .put("a", &[0; 90])
        .unwrap();
}

#[test]
fn concurrent_kv_writes_each_get_their_own_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let space = codebase.kv_space("shared").unwrap().with_quota(2_000);
            std::thread::spawn(move || {
                (0..50)
                    .map(|n| space.put(&format!("{t}-{n}"), &[t as u8; 20]).is_ok())
                    .filter(|ok| *ok)
                    .count()
            })
        })
        .collect();
    let written: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let space = codebase.kv_space("shared").unwrap();
    // Each record is 23 or 24 bytes: the quota admits what fits, refuses the rest, and
    // what was acknowledged is all there.
    assert!(written > 50 && written < 200, "{written}");
    assert_eq!(space.list("", 1000).unwrap().len(), written);
    assert!(space.usage().unwrap() <= 2_000);
}

#[test]
fn a_damaged_module_file_is_reported_naming_its_hash_and_dropped_by_repair() {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    let (bytes, manifest) = module("add");
    codebase
        .publish(
            &bytes,
            &manifest,
            &[(
                name("math.add"),
                FunctionRef::new(manifest.module, "add".parse().unwrap()),
            )],
        )
        .unwrap();
    let file = dir.path().join("modules").join(manifest.module.to_hex());
    let mut damaged = std::fs::read(&file).unwrap();
    damaged[10] ^= 0x40;
    std::fs::write(&file, damaged).unwrap();
    match codebase.module_bytes(&manifest.module) {
        Err(StoreError::Corrupt {
            item: Damaged::Module(hash),
            ..
        }) => assert_eq!(hash, manifest.module),
        other => panic!("expected damage, got {other:?}"),
    }
    let report = codebase.verify().unwrap();
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    assert_eq!(report.damaged[0].item, Damaged::Module(manifest.module));
    let repaired = codebase.repair().unwrap();
    assert_eq!(repaired.lost.len(), 1);
    assert!(codebase.verify().unwrap().damaged.is_empty());
    assert!(!codebase.has_module(&manifest.module).unwrap());
    // The name survives, and publishing the module again brings it back.
    codebase.put_module(&bytes, &manifest).unwrap();
    assert_eq!(codebase.module_bytes(&manifest.module).unwrap(), bytes);
    assert!(codebase.name(&name("math.add")).unwrap().is_some());
}

#[test]
fn a_damaged_artifact_is_dropped_without_a_word() {
    let dir = tempfile::tempdir().unwrap();
    let codebase = Codebase::open(dir.path()).unwrap();
    let hash = Hash::of(b"module");
    codebase
        .put_artifact(&hash, b"compiler", b"native code")
        .unwrap();
    let file = std::fs::read_dir(dir.path().join("artifacts"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&file).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&file, bytes).unwrap();
    assert_eq!(codebase.artifact(&hash, b"compiler").unwrap(), None);
    assert!(!file.exists());
}

#[test]
fn an_index_that_fails_its_check_is_named_and_salvage_keeps_what_verifies() {
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
        codebase.kv_space("ns").unwrap().put("k", b"v").unwrap();
    }
    // A truncated index: redb cannot open it.
    let index = dir.path().join("index.redb");
    let len = std::fs::metadata(&index).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&index)
        .unwrap()
        .set_len(len / 3)
        .unwrap();
    match Codebase::open(dir.path()) {
        Err(StoreError::Corrupt {
            item: Damaged::Index(path),
            ..
        }) => assert_eq!(path, index),
        Err(other) => panic!("expected a damaged index, got {other}"),
        Ok(_) => panic!("a truncated index opened"),
    }
    let report = Codebase::salvage(dir.path(), &OpenOptions::default()).unwrap();
    assert!(report.damaged_index.as_ref().is_some_and(|p| p.exists()));
    assert_eq!(report.modules, 1);
    let codebase = Codebase::open(dir.path()).unwrap();
    // The module is back from its file; what else survived depends on where the cut
    // fell, and whatever did not is in the report.
    assert_eq!(codebase.module_bytes(&manifest.module).unwrap(), bytes);
    let named = codebase.name(&name("math.add")).unwrap().is_some();
    let kv = codebase.kv_space("ns").unwrap().get("k").unwrap().is_some();
    assert!(named || !report.lost.is_empty(), "{report:?}");
    assert!(kv || !report.lost.is_empty(), "{report:?}");
}
