//! Runs real nested cargo builds of throwaway crates. Running under `cargo test` also
//! checks that the variables cargo sets for tests do not confuse the inner cargo.

use std::fs;
use std::path::Path;

use spore_build::{BuildError, BuildOptions, build_guest, ensure_wasm_target};

fn write_crate(dir: &Path, name: &str, crate_type: &str, source: &str) {
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [lib]\ncrate-type = [{crate_type}]\n\n[workspace]\n"
        ),
    )
    .unwrap();
    fs::write(dir.join("src/lib.rs"), source).unwrap();
}

#[test]
fn builds_a_cdylib_into_a_wasm_module() {
    ensure_wasm_target().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = "#[unsafe(no_mangle)]\npub extern \"C\" fn answer() -> i32 { 42 }\n";
    write_crate(dir.path(), "tiny-fn", "\"cdylib\", \"rlib\"", source);
    let target_dir = dir.path().join("out");
    let options = BuildOptions {
        target_dir: Some(target_dir.clone()),
        ..BuildOptions::default()
    };

    // Passing the manifest instead of the directory works too.
    let modules = build_guest(&dir.path().join("Cargo.toml"), &options).unwrap();

    assert_eq!(modules.len(), 1);
    assert_eq!(modules[0].name, "tiny_fn");
    assert!(
        modules[0].path.starts_with(&target_dir),
        "{:?}",
        modules[0].path
    );
    assert_eq!(&fs::read(&modules[0].path).unwrap()[..4], b"\0asm");
}

#[test]
fn a_library_without_cdylib_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    write_crate(dir.path(), "plain", "\"rlib\"", "pub fn f() {}\n");
    let options = BuildOptions {
        target_dir: Some(dir.path().join("out")),
        ..BuildOptions::default()
    };

    let error = build_guest(dir.path(), &options).unwrap_err();

    assert!(matches!(error, BuildError::NoCdylib { .. }), "{error:?}");
    assert!(
        error.to_string().contains("crate-type = [\"cdylib\"]"),
        "{error}"
    );
}

#[test]
fn compile_errors_fail_the_build() {
    let dir = tempfile::tempdir().unwrap();
    write_crate(
        dir.path(),
        "broken",
        "\"cdylib\"",
        "pub fn f() -> u32 { \"no\" }\n",
    );
    let options = BuildOptions {
        target_dir: Some(dir.path().join("out")),
        ..BuildOptions::default()
    };

    let error = build_guest(dir.path(), &options).unwrap_err();

    assert!(matches!(error, BuildError::CargoFailed { .. }), "{error:?}");
}

#[test]
fn a_directory_without_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let error = build_guest(dir.path(), &BuildOptions::default()).unwrap_err();
    assert!(matches!(error, BuildError::NotACrate(_)), "{error:?}");
}

#[test]
fn paths_are_remapped_in_the_module() {
    ensure_wasm_target().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A path dependency outside the crate's workspace: rustc sees its whole path.
    write_crate(
        &dir.path().join("helper"),
        "helper",
        "\"rlib\"",
        "pub fn at() -> &'static str { file!() }\n",
    );
    let app = dir.path().join("app");
    let source = "#[unsafe(no_mangle)]\npub extern \"C\" fn at() -> u64 {\n    \
                  let at = helper::at();\n    ((at.as_ptr() as u64) << 32) | at.len() as u64\n}\n";
    write_crate(&app, "app", "\"cdylib\"", source);
    let manifest = fs::read_to_string(app.join("Cargo.toml")).unwrap();
    fs::write(
        app.join("Cargo.toml"),
        manifest.replace(
            "[workspace]",
            "[dependencies]\nhelper = { path = \"../helper\" }\n\n[workspace]",
        ),
    )
    .unwrap();
    let options = BuildOptions {
        target_dir: Some(dir.path().join("out")),
        remap: vec![(dir.path().join("helper"), "/elsewhere/helper".to_owned())],
        ..BuildOptions::default()
    };

    let modules = build_guest(&app, &options).unwrap();

    let bytes = fs::read(&modules[0].path).unwrap();
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|window| window == needle);
    assert!(
        contains(b"/elsewhere/helper/src/lib.rs"),
        "the remapped path is missing"
    );
    assert!(
        !contains(dir.path().to_str().unwrap().as_bytes()),
        "the real path is in the module"
    );
}

#[test]
fn native_tests_are_run_and_a_failing_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let source =
        "pub fn two() -> u32 { 2 }\n\n#[test]\nfn two_is_two() { assert_eq!(two(), 2); }\n";
    write_crate(dir.path(), "checked", "\"cdylib\", \"rlib\"", source);
    let options = BuildOptions {
        target_dir: Some(dir.path().join("out")),
        ..BuildOptions::default()
    };
    spore_build::test_native(dir.path(), &options).unwrap();

    fs::write(
        dir.path().join("src/lib.rs"),
        source.replace("assert_eq!(two(), 2)", "assert_eq!(two(), 3)"),
    )
    .unwrap();
    let error = spore_build::test_native(dir.path(), &options).unwrap_err();
    assert!(matches!(error, BuildError::TestsFailed { .. }), "{error:?}");
}
