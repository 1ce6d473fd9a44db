//! The CLI as people expect one: shell completions, a version naming its commit, colour
//! only on a terminal and never with `NO_COLOR`, argument errors as JSON in `--json`
//! mode, and "did you mean" for a mistyped name.

use std::process::{Command, Stdio};

use crate::api::ApiNode;
use crate::support::{Run, Spore, exit, repo_root};

#[test]
fn completions_for_each_shell_name_the_real_subcommands() {
    let spore = Spore::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = spore.run(&["completions", shell]).ok().to_owned();
        for command in ["invoke", "node", "names", "completions"] {
            assert!(
                script.contains(command),
                "{shell}: no `{command}` in\n{script}"
            );
        }
    }
    spore.run(&["completions", "tcsh"]).fails_with(exit::USAGE);
}

#[test]
fn the_bash_completion_script_registers_spore_with_bash() {
    if Command::new("bash").arg("-c").arg("true").status().is_err() {
        eprintln!("SKIPPED: no bash on this machine to load the completion script in");
        return;
    }
    let spore = Spore::new();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("spore.bash");
    std::fs::write(&script, spore.run(&["completions", "bash"]).ok()).unwrap();
    let output = Command::new("bash")
        .arg("-c")
        .arg(r#"source "$1" && complete -p spore"#)
        .arg("bash")
        .arg(&script)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.trim_end().ends_with(" spore"), "{stdout}");
}

/// What `git` says in the repository, or `None` where it cannot (no git, no `.git`).
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(repo_root())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8(output.stdout).unwrap().trim().to_owned())
}

/// The commit `spore --version` must name: `SPORE_BUILD_COMMIT` when the build was given
/// one, else the checkout's HEAD with its date, else "unknown commit".
fn expected_commit() -> String {
    if let Some(given) = option_env!("SPORE_BUILD_COMMIT").filter(|c| !c.trim().is_empty()) {
        return given.trim().to_owned();
    }
    match (
        git(&["rev-parse", "--short=12", "HEAD"]),
        git(&["log", "-1", "--format=%cs", "HEAD"]),
    ) {
        (Some(hash), Some(date)) => format!("{hash} {date}"),
        _ => {
            eprintln!("no git checkout here: the version must say so");
            "unknown commit".to_owned()
        }
    }
}

#[test]
fn the_version_names_the_package_version_and_the_commit_built() {
    let spore = Spore::new();
    let version = spore.run(&["--version"]).ok().to_owned();
    assert_eq!(
        version,
        format!(
            "spore {} ({})",
            env!("CARGO_PKG_VERSION"),
            expected_commit()
        )
    );
    // `--json` does not turn the version into an error record.
    assert_eq!(spore.run(&["--json", "--version"]).ok(), version);

    // A running node reports the version of the binary that runs it.
    let node = ApiNode::start();
    let info = node.spore.run(&["--json", "node", "info"]).json();
    assert_eq!(
        info["version"].as_str().map(|v| format!("spore {v}")),
        Some(version.clone())
    );
    let text = node.spore.run(&["node", "info"]).ok().to_owned();
    assert!(
        text.contains(&format!("version  {}", &version["spore ".len()..])),
        "{text}"
    );
}

/// Runs the CLI with `args` as a person at a terminal would: through `script`, on a
/// pseudo-terminal, with `NO_COLOR` set to `no_color` when given. Returns everything it
/// wrote (stdout and stderr are the one terminal).
fn on_a_terminal(spore: &Spore, args: &str, no_color: Option<&str>) -> Option<String> {
    let command = format!(
        "{} --home {} {args}",
        env!("CARGO_BIN_EXE_spore"),
        spore.home().display()
    );
    let mut script = Command::new("script");
    script
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("SPORE_HOME")
        .env_remove("SPORE_LOG")
        .stdin(Stdio::null());
    if let Some(value) = no_color {
        script.env("NO_COLOR", value);
    }
    let output = script.output().ok()?;
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let spore = Spore::new();
    // Help and an argument error. (Log lines are not checked here: no command that
    // needs no node logs anything at -vv; their colour is `output::colour_on_stderr`.)
    let commands = ["--help", "frobnicate"];
    match on_a_terminal(&spore, "--help", None) {
        None => eprintln!("SKIPPED the terminal half: no `script` to make a terminal with"),
        Some(help) => {
            // On a terminal, the help is coloured: the check below can see colour.
            assert!(help.contains('\u{1b}'), "{help:?}");
            for args in commands {
                let seen = on_a_terminal(&spore, args, Some("1")).unwrap();
                assert!(seen.len() > 20, "{args}: {seen:?}");
                assert!(!seen.contains('\u{1b}'), "{args} with NO_COLOR=1: {seen:?}");
            }
        }
    }
    // Into pipes, nothing is coloured either.
    for args in commands {
        let args: Vec<&str> = args.split(' ').collect();
        let run = spore.run(&args);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(all.len() > 20, "{args:?}: {run:?}");
        assert!(!all.contains('\u{1b}'), "{args:?} into a pipe: {all:?}");
    }
}

/// The one JSON error record `run` printed on stderr, with nothing on stdout.
#[track_caller]
fn error_record(run: &Run, code: i32) -> serde_json::Value {
    let stderr = run.fails_with(code);
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    serde_json::from_str(stderr).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr:?}"))
}

#[test]
fn argument_errors_in_json_mode_are_one_json_error_record() {
    let spore = Spore::new();
    let missing = error_record(&spore.run(&["--json", "invoke"]), exit::USAGE);
    assert_eq!(missing["error"]["kind"], "bad_request", "{missing}");
    let message = missing["error"]["message"].as_str().unwrap();
    assert!(message.contains("<REFERENCE>"), "{message}");
    assert!(!message.starts_with("error:"), "{message}");
    assert_eq!(
        missing["error"].as_object().unwrap().len(),
        2,
        "only kind and message: {missing}"
    );

    let unknown = error_record(&spore.run(&["--json", "frobnicate"]), exit::USAGE);
    assert_eq!(unknown["error"]["kind"], "bad_request");
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'frobnicate'"),
        "{unknown}"
    );
    // `--json` given after the command counts too.
    error_record(
        &spore.run(&["invoke", "--timeout", "soon", "--json"]),
        exit::USAGE,
    );

    // Without `--json`, clap's own text.
    let text = spore.run(&["frobnicate"]);
    assert!(
        text.fails_with(exit::USAGE).starts_with("error: "),
        "{text:?}"
    );
    // Help is no error, with `--json` or without.
    let help = spore.run(&["--json", "--help"]);
    assert!(help.ok().contains("Usage: spore"), "{help:?}");
}

#[test]
fn a_misspelled_name_is_answered_with_the_names_likely_meant() {
    let spore = Spore::new();
    spore.publish("arith", Some("math"));
    assert_suggests(&spore);
}

#[test]
fn a_running_node_answers_a_misspelled_name_with_the_names_likely_meant() {
    let node = ApiNode::start();
    node.spore.publish("arith", Some("math"));
    assert_suggests(&node.spore);
}

/// `math.*` is published on `spore`: misspelled names of it are answered with them, in
/// text and JSON, wherever a name is looked up; unrelated names with none.
#[track_caller]
fn assert_suggests(spore: &Spore) {
    let stderr = spore
        .run(&["invoke", "math.ad", "1", "2"])
        .fails_with(exit::NOT_FOUND)
        .to_owned();
    assert!(
        stderr.contains("no name `math.ad`") && stderr.contains("did you mean `math.add`?"),
        "{stderr}"
    );
    let record = error_record(
        &spore.run(&["--json", "invoke", "math.ad", "1", "2"]),
        exit::NOT_FOUND,
    );
    assert_eq!(record["error"]["kind"], "not_found");
    assert_eq!(
        record["error"]["suggestions"],
        serde_json::json!(["math.add"])
    );

    let stderr = spore
        .run(&["inspect", "math.su"])
        .fails_with(exit::NOT_FOUND)
        .to_owned();
    assert!(
        // Two names one edit away, closest first and then by name; `math.mul` is two
        // edits away, within the third of the name's length that is allowed.
        stderr.contains("did you mean `math.sub`, `math.sum` or `math.mul`?"),
        "{stderr}"
    );
    for args in [
        ["names", "history", "mtah.div"],
        ["names", "rm", "math.dvi"],
    ] {
        let run = spore.run(&[&["--json"][..], &args[..]].concat());
        let record = error_record(&run, exit::NOT_FOUND);
        assert_eq!(
            record["error"]["suggestions"],
            serde_json::json!(["math.div"]),
            "{args:?}"
        );
    }

    let stderr = spore
        .run(&["invoke", "orders.create"])
        .fails_with(exit::NOT_FOUND)
        .to_owned();
    assert!(!stderr.contains("did you mean"), "{stderr}");
    let record = error_record(
        &spore.run(&["--json", "invoke", "orders.create"]),
        exit::NOT_FOUND,
    );
    assert!(record["error"].get("suggestions").is_none(), "{record}");
}
