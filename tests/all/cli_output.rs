//! What the CLI prints: to a pipe that closed early, and text that others wrote.

use std::process::{Command, Stdio};
use std::sync::Arc;

use spore_mesh::{
    CallRequest, Cancel, Failure, InvokeResponse, Keypair, Mesh, MeshConfig, MeshHost, Path, PeerId,
};

use crate::api::ApiNode;
use crate::support::Spore;

/// Runs the CLI with its standard output a pipe whose reader is already gone, as in
/// `spore ls | head -1` once `head` has exited.
fn run_into_closed_pipe(spore: &Spore, args: &[&str]) -> (i32, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_spore"))
        .arg("--home")
        .arg(spore.home())
        .args(args)
        .env_remove("SPORE_HOME")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        output.status.code().expect("spore was killed by a signal"),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn a_closed_stdout_ends_the_cli_quietly() {
    let spore = Spore::new();
    let arith = spore.publish("arith", Some("math"));
    spore.publish("faults", None);
    for args in [
        vec!["ls"],
        vec!["--json", "ls"],
        vec!["inspect", "math.add"],
        vec!["names", "ls"],
        vec!["invoke", "math.add", "1", "2"],
        vec!["--json", "invoke", "math.add", "1", "2"],
        vec!["hash", "/dev/null"],
        vec!["abilities"],
    ] {
        let (code, stderr) = run_into_closed_pipe(&spore, &args);
        assert_eq!(code, 0, "spore {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "spore {args:?}: {stderr}");
    }
    // The output it could not print did not stop what it was asked to do.
    let (code, stderr) = run_into_closed_pipe(
        &spore,
        &["names", "set", "sum", &format!("{}:add", &arith[..12])],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(spore.invoke("sum", &["2", "2"]), 4);
}

/// A peer that answers every call with a failure whose message tries to clear the
/// screen and overwrite the line it is printed on.
struct Forger;

const FORGED: &str = "\u{1b}[2J\rerror: none, all is well\u{7}";

impl MeshHost for Forger {
    fn module_bytes(&self, _: &spore_core::Hash) -> Option<Vec<u8>> {
        None
    }
    fn module_hashes(&self) -> Vec<spore_core::Hash> {
        Vec::new()
    }
    fn invoke(&self, _: CallRequest, _: PeerId, _: Cancel) -> InvokeResponse {
        InvokeResponse {
            result: Err(Failure::new(spore_core::ErrorKind::Failed, FORGED)),
            path: Path::default(),
            refused: false,
        }
    }
}

#[test]
fn control_characters_a_peer_wrote_reach_stderr_escaped() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let forger = runtime.block_on(async {
        let keypair = Keypair::generate_ed25519();
        let membership =
            spore_mesh::Membership::admit(&crate::test_mesh::key(), &keypair, &[], &[]).ok();
        let config = MeshConfig {
            keypair,
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            announce: Vec::new(),
            bootstrap: Vec::new(),
            mdns: false,
            abilities: Vec::new(),
            membership,
            nat: Default::default(),
        };
        Mesh::start(config, Arc::new(Forger)).await.unwrap()
    });
    let forger_addr = runtime
        .block_on(forger.listen_addrs())
        .first()
        .expect("a listen address")
        .to_string();
    let node = ApiNode::start_with(Spore::new(), &[forger_addr]);
    let arith = node.spore.publish("arith", None);
    let peer = forger.peer_id().to_string();

    let call = ["invoke", &format!("{arith}:add"), "1", "2", "--on", &peer];
    let run = node.spore.run(&call);
    let stderr = run.fails_with(1);
    assert!(
        stderr.contains(r"\u{1b}[2J\rerror: none, all is well\u{7}"),
        "{stderr:?}"
    );
    assert!(!stderr.contains(['\u{1b}', '\r', '\u{7}']), "{stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");

    let mut json = vec!["--json"];
    json.extend(call);
    let run = node.spore.run(&json);
    let error: serde_json::Value = serde_json::from_str(run.fails_with(1)).unwrap();
    assert_eq!(error["error"]["kind"], "failed");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(!message.contains(char::is_control), "{message:?}");

    drop(node);
    runtime.block_on(forger.shutdown());
}
