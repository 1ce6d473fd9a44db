//! `spore new`: a function crate written from the SDK the binary carries, that builds,
//! tests and publishes from a directory outside the repository.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Spore, exit, guest_target_dir, repo_root};

/// Runs `spore new NAME` in `parent` (a directory outside the repository) and returns
/// the crate's directory.
pub fn new_crate(spore: &Spore, parent: &Path, name: &str) -> PathBuf {
    let run = spore
        .command()
        .arg("new")
        .arg(name)
        .current_dir(parent)
        .output()
        .unwrap();
    assert!(run.status.success(), "spore new failed: {run:?}");
    let dir = PathBuf::from(String::from_utf8(run.stdout).unwrap().trim());
    assert_eq!(dir, parent.join(name));
    dir
}

/// `spore build DIR`, with `envs` set; returns the module's hash.
pub fn build(spore: &Spore, dir: &Path, envs: &[(&str, &str)]) -> String {
    let mut command = spore.command();
    command
        .args(["--json", "build"])
        .arg(dir)
        .envs(envs.iter().copied());
    let run = command.output().unwrap();
    assert!(
        run.status.success(),
        "spore build failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let published: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    published["manifest"]["module"].as_str().unwrap().to_owned()
}

#[test]
fn a_new_crate_builds_tests_and_publishes_outside_the_repository() {
    let spore = Spore::new();
    let outside = tempfile::tempdir().unwrap();
    assert!(!outside.path().starts_with(repo_root()));
    let dir = new_crate(&spore, outside.path(), "hello-fn");

    // The SDK is inside the crate, which points there, not into a checkout nor the home.
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("path = \"spore-sdk/spore-guest\""),
        "{manifest}"
    );
    assert!(dir.join("spore-sdk/spore-guest/Cargo.toml").is_file());
    assert!(
        dir.join("spore-sdk/spore-guest-macros/src/lib.rs")
            .is_file()
    );
    assert!(!spore.home().join("sdk/rust").exists());
    assert!(
        !manifest.contains(repo_root().to_str().unwrap()),
        "{manifest}"
    );

    // Its native tests pass, with the fakes of spore_guest::testing.
    let tested = Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()))
        .args(["test", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", guest_target_dir())
        .output()
        .unwrap();
    assert!(tested.status.success(), "cargo test failed: {tested:?}");
    let report = String::from_utf8_lossy(&tested.stdout);
    assert!(report.contains("2 passed"), "{report}");

    // It builds into a module whose functions answer.
    let built = spore.run(&["build", dir.to_str().unwrap(), "--name", "hello"]);
    built.ok();
    assert_eq!(
        spore.invoke("hello.greet", &[r#""ada""#]),
        serde_json::json!("Hello, ada!")
    );
    assert_eq!(
        spore.invoke("hello.visit", &[r#""ada""#]),
        serde_json::json!(1)
    );
    assert_eq!(
        spore.invoke("hello.visit", &[r#""ada""#]),
        serde_json::json!(2)
    );
}

#[test]
fn spore_new_refuses_a_non_empty_directory_and_an_invalid_name() {
    let spore = Spore::new();
    let outside = tempfile::tempdir().unwrap();
    let taken = outside.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("notes.txt"), "mine").unwrap();

    let run = spore.run(&["new", "hello", "--path", taken.to_str().unwrap()]);
    let stderr = run.fails_with(exit::USAGE);
    assert!(stderr.contains("exists and is not empty"), "{stderr}");
    assert_eq!(std::fs::read_dir(&taken).unwrap().count(), 1);

    for name in ["2fast", "my fn", "fn", "std"] {
        let path = outside.path().join("bad");
        let run = spore.run(&["new", name, "--path", path.to_str().unwrap()]);
        let stderr = run.fails_with(exit::USAGE);
        assert!(stderr.contains("cannot name a crate"), "{name}: {stderr}");
        assert!(!path.exists(), "{name}");
    }
    // Nothing was installed for a crate that was never written.
    assert!(!spore.home().join("sdk").exists());

    // An empty directory is fine.
    let empty = outside.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let json = spore
        .run(&["--json", "new", "hello", "--path", empty.to_str().unwrap()])
        .json();
    assert_eq!(json["dir"], empty.to_str().unwrap());
    assert!(empty.join("src/lib.rs").is_file());
}
