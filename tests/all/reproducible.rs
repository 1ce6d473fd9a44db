//! `spore build` as a user's build: the same sources give the same hash in any
//! directory, the user's `RUSTFLAGS` and `CARGO_TARGET_DIR` apply, and crates share the
//! home's target directory when the user chose none.

use crate::new::{build, new_crate};
use crate::support::{Spore, guest_target_dir};

#[test]
fn one_crate_made_on_two_homes_in_two_directories_has_one_hash() {
    // Two homes and two `spore new`s, as two people on two machines would have: before
    // the SDK moved into the crate, cargo hashed each home's SDK path into the code and
    // the two modules differed.
    let first_spore = Spore::new();
    let second_spore = Spore::new();
    let first_parent = tempfile::tempdir().unwrap();
    let first = new_crate(&first_spore, first_parent.path(), "same-fn");
    // Another directory name, at another depth: nothing of either path may reach the
    // module.
    let second_parent = tempfile::tempdir().unwrap();
    let second = second_parent.path().join("deeper/other-name");
    std::fs::create_dir_all(second.parent().unwrap()).unwrap();
    second_spore.run(&["new", "same-fn", "--path", second.to_str().unwrap()]);

    // The first with no target directory of the user's: the home's is used.
    let first_hash = build(&first_spore, &first, &[("CARGO_TARGET_DIR", "")]);
    assert!(
        first_spore
            .home()
            .join("target/wasm32-unknown-unknown/release/same_fn.wasm")
            .is_file(),
        "the home's target directory was not used"
    );
    let guest_target = guest_target_dir();
    let second_hash = build(
        &second_spore,
        &second,
        &[("CARGO_TARGET_DIR", guest_target.to_str().unwrap())],
    );

    assert_eq!(first_hash, second_hash);
}

#[test]
fn the_users_rustflags_still_take_effect() {
    let spore = Spore::new();
    let parent = tempfile::tempdir().unwrap();
    let dir = new_crate(&spore, parent.path(), "flavoured");
    let lib = dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    let source = source.replace(
        "    format!(\"Hello, {who}!\")",
        "    if cfg!(spore_flavour) {\n        format!(\"Flavoured, {who}!\")\n    } else {\n        format!(\"Hello, {who}!\")\n    }",
    );
    std::fs::write(&lib, format!("#![allow(unexpected_cfgs)]\n{source}")).unwrap();

    let plain = build(&spore, &dir, &[]);
    let flavoured = build(&spore, &dir, &[("RUSTFLAGS", "--cfg spore_flavour")]);
    assert_ne!(plain, flavoured);
    let greeting = spore.invoke(&format!("{flavoured}:greet"), &[r#""ada""#]);
    assert_eq!(greeting, serde_json::json!("Flavoured, ada!"));
    // The encoded form, as cargo passes it on, works as well.
    let encoded = build(
        &spore,
        &dir,
        &[("CARGO_ENCODED_RUSTFLAGS", "--cfg\u{1f}spore_flavour")],
    );
    assert_eq!(encoded, flavoured);
}
