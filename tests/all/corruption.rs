//! A module whose stored bytes are damaged is reported with its hash and never run.

use crate::support::{Spore, exit};

/// Flips one byte of a stored module, as bit rot on disk would, by editing the
/// codebase's sled database directly while no spore process holds it.
fn damage_stored_module(spore: &Spore, hash: &str) {
    let db = sled::open(spore.home().join("codebase")).unwrap();
    let blobs = db.open_tree("blobs").unwrap();
    let key = blake3::Hash::from_hex(hash).unwrap();
    let mut bytes = blobs
        .get(key.as_bytes())
        .unwrap()
        .expect("module is stored")
        .to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    blobs.insert(key.as_bytes(), bytes).unwrap();
    db.flush().unwrap();
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
    assert!(stdout.contains("2 modules checked, 1 corrupt"), "{stdout}");
    // Other modules are untouched.
    spore.still_serves(&faults);

    // Publishing the good bytes again repairs the entry; names survived throughout.
    spore.publish("arith", None);
    assert_eq!(spore.invoke("math.add", &["1", "2", "--no-memo"]), 3);
    spore.run(&["verify"]).ok();
}
