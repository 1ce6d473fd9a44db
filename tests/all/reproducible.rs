//! `spore build` as a user's build: the same sources give the same hash in any
//! directory, the user's `RUSTFLAGS` and `CARGO_TARGET_DIR` apply, and crates share the
//! home's target directory when the user chose none.

use crate::new::{build, new_crate};
use crate::support::{Spore, copy_dir, guest_target_dir};

#[test]
fn one_crate_in_two_directories_and_target_dirs_has_one_hash() {
    // One home (so one installed SDK): builds from two homes do not give equal
    // hashes yet (the SDK's path still reaches the module; see docs/cli.md).
    let first_spore = Spore::new();
    let second_spore = &first_spore;
    let first_parent = tempfile::tempdir().unwrap();
    let first = new_crate(&first_spore, first_parent.path(), "same-fn");
    // Another directory name, at another depth: nothing of either path may reach the
    // module.
    let second_parent = tempfile::tempdir().unwrap();
    let second = second_parent.path().join("deeper/other-name");
    copy_dir(&first, &second);

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
        second_spore,
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
