//! Damage to a home is found, named and contained: a damaged module is reported with its
//! hash and never run, a damaged name or index with exit 7 naming it, and
//! `spore verify --repair` drops what is damaged and says what was lost.

use crate::support::{Spore, exit};

/// Flips one byte of a stored module file, as bit rot on disk would.
fn damage_stored_module(spore: &Spore, hash: &str) {
    let path = spore.home().join("codebase/modules").join(hash);
    let mut bytes = std::fs::read(&path).expect("the module is stored as a file");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn a_damaged_module_is_detected_reported_and_repaired_by_publishing_again() {
    let spore = Spore::new();
    let hash = spore.publish("arith", Some("math"));
    let faults = spore.publish("faults", None);
    assert_eq!(spore.invoke("math.add", &["1", "2"]), 3);

    damage_stored_module(&spore, &hash);

    // `add` is pure, so its earlier result is memoized and a memo hit never reads the
    // module; bypass the memo to make spore load it.
    let stderr = spore
        .run(&["invoke", "math.add", "1", "2", "--no-memo"])
        .fails_with(exit::CORRUPT)
        .to_owned();
    assert!(stderr.contains(&hash), "the error names the hash: {stderr}");
    assert!(stderr.contains("corrupt"), "{stderr}");
    let verify = spore.run(&["verify"]);
    let stdout = verify.stdout.clone();
    verify.fails_with(exit::CORRUPT);
    assert!(
        stdout.contains(&format!("damaged: module {hash}")),
        "{stdout}"
    );
    assert!(stdout.contains("2 modules"), "{stdout}");
    assert!(stdout.contains("1 damaged"), "{stdout}");
    // Other modules are untouched.
    spore.still_serves(&faults);

    // Publishing the good bytes again repairs the entry; names survived throughout.
    spore.publish("arith", None);
    assert_eq!(spore.invoke("math.add", &["1", "2", "--no-memo"]), 3);
    spore.run(&["verify"]).ok();
}

/// Replaces the index records of `name` (its current record and every event of its
/// history) with records whose envelopes do not verify, as damage inside a value would
/// leave them, by editing `index.redb` while no spore process holds it.
fn damage_name_records(spore: &Spore, name: &str) {
    use redb::{ReadableTable, TableDefinition};
    let db = redb::Database::open(spore.home().join("codebase/index.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    for table in ["names", "name_history"] {
        let mut table = txn
            .open_table(TableDefinition::<&[u8], &[u8]>::new(table))
            .unwrap();
        let keys: Vec<Vec<u8>> = table
            .iter()
            .unwrap()
            .map(|item| item.unwrap().0.value().to_vec())
            .filter(|key| key.starts_with(name.as_bytes()))
            .collect();
        for key in keys {
            let mut record = table.get(key.as_slice()).unwrap().unwrap().value().to_vec();
            let last = record.len() - 1;
            record[last] ^= 0x01;
            table.insert(key.as_slice(), record.as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

#[test]
fn a_damaged_name_is_reported_with_exit_7_and_repair_says_it_was_lost() {
    let spore = Spore::new();
    let hash = spore.publish("arith", Some("math"));
    spore
        .run(&["names", "set", "calc", &format!("{hash}:sub")])
        .ok();
    damage_name_records(&spore, "math.add");

    let stderr = spore
        .run(&["invoke", "math.add", "1", "2"])
        .fails_with(exit::CORRUPT)
        .to_owned();
    assert!(stderr.contains("name `math.add`"), "{stderr}");
    // Every other name works.
    assert_eq!(spore.invoke("calc", &["5", "2"]), 3);
    assert_eq!(spore.invoke("math.mul", &["5", "2"]), 10);

    let verify = spore.run(&["verify"]);
    assert!(verify.stdout.contains("math.add"), "{verify:?}");
    verify.fails_with(exit::CORRUPT);
    let json: serde_json::Value = {
        let run = spore.run(&["--json", "verify"]);
        serde_json::from_str(&run.stdout).unwrap()
    };
    let damaged = json["damaged"].as_array().unwrap();
    assert!(
        damaged
            .iter()
            .any(|d| d["kind"] == "name" && d["name"] == "math.add"),
        "{json}"
    );

    let repair = spore.run(&["verify", "--repair"]);
    assert!(repair.stdout.contains("lost: "), "{repair:?}");
    assert!(repair.stdout.contains("math.add"), "{repair:?}");
    repair.fails_with(exit::CORRUPT);
    // Repaired: the home verifies, and the name is gone, said so above.
    spore.run(&["verify"]).ok();
    spore
        .run(&["invoke", "math.add", "1", "2"])
        .fails_with(exit::NOT_FOUND);
    assert_eq!(spore.invoke("calc", &["5", "2"]), 3);
}

#[test]
fn a_damaged_index_is_named_with_exit_7_and_repair_keeps_what_can_be_read() {
    let spore = Spore::new();
    let hash = spore.publish("arith", Some("math"));
    // Zeros over the middle of the index: its pages fail redb's checksums.
    let index = spore.home().join("codebase/index.redb");
    let mut bytes = std::fs::read(&index).unwrap();
    let len = bytes.len();
    bytes[len / 4..len / 2].fill(0);
    bytes[4096..8192].fill(0xff);
    std::fs::write(&index, bytes).unwrap();

    let stderr = spore.run(&["ls"]).fails_with(exit::CORRUPT).to_owned();
    assert!(stderr.contains("index.redb"), "{stderr}");
    assert!(stderr.contains("spore verify --repair"), "{stderr}");

    let repair = spore.run(&["verify", "--repair"]);
    assert!(repair.stderr.contains("rebuilding the index"), "{repair:?}");
    // The module is back from its file, whatever else the damage took.
    let listed = spore.run(&["--json", "ls"]).json();
    assert_eq!(listed[0]["manifest"]["module"], hash.as_str(), "{listed}");
    assert_eq!(spore.invoke(&format!("{hash}:add"), &["1", "2"]), 3);
    let kept: Vec<_> = std::fs::read_dir(spore.home().join("codebase/damaged"))
        .unwrap()
        .collect();
    assert_eq!(kept.len(), 1, "the damaged index is kept aside");
    spore.run(&["verify"]).ok();
}
