//! What the crate's own tests share: a mesh to be members of, a call to echo and the
//! echo's answer.

use std::time::Duration;

use spore_core::{Args, CallRequest, FunctionRef, Hash, MemoUse, Path, PathStep, TraceId};

use crate::{InvokeResponse, Membership, Returned};
use libp2p::identity::Keypair;
use spore_core::trust::SecretKey;

/// The membership of a node in the one mesh the crate's tests use, serving `serves`.
pub(crate) fn member(keypair: &Keypair, serves: &[&str]) -> Option<Membership> {
    let mesh = SecretKey::from_seed([0x5e; 32]);
    Some(Membership::admit(&mesh, keypair, &[], serves).expect("a test membership"))
}

/// A mesh on loopback serving `host`: a member of the tests' mesh, or (`member` false) a
/// stranger that skips its own checks, so that it routes, gossips and speaks the
/// protocols to the node it dials before that node could judge it.
pub(crate) async fn start_mesh(
    bootstrap: Vec<libp2p::Multiaddr>,
    member: bool,
    host: std::sync::Arc<dyn crate::MeshHost>,
) -> crate::Mesh {
    start_mesh_tuned(bootstrap, member, host, crate::MeshTuning::default()).await
}

/// [`start_mesh`] with `tuning`.
pub(crate) async fn start_mesh_tuned(
    bootstrap: Vec<libp2p::Multiaddr>,
    member: bool,
    host: std::sync::Arc<dyn crate::MeshHost>,
    tuning: crate::MeshTuning,
) -> crate::Mesh {
    let keypair = Keypair::generate_ed25519();
    let config = crate::MeshConfig {
        membership: self::member(&keypair, &[]).filter(|_| member),
        nat: Default::default(),
        keypair,
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("a multiaddr")],
        announce: Vec::new(),
        bootstrap,
        mdns: false,
        abilities: Vec::new(),
    };
    let tuning = crate::MeshTuning {
        trust_everyone: !member,
        ..tuning
    };
    crate::Mesh::start_tuned(config, host, tuning)
        .await
        .expect("a test mesh starts")
}

/// A call of `hash:main` with `args` (a CBOR array) and a deadline `after` from now.
pub(crate) fn echo_request(hash: Hash, args: &[u8], after: Duration) -> CallRequest {
    CallRequest::new(
        FunctionRef::new(hash, "main".parse().expect("a valid export name")),
        Args::from_bytes(args.to_vec()),
        std::time::Instant::now() + after,
        16 << 20,
        TraceId::default(),
    )
}

/// What an echoing host answers: the call's argument bytes, with a one-step path saying
/// `how` it was answered.
pub(crate) fn echo(request: &CallRequest, how: &str) -> InvokeResponse {
    let mut path = Path::new();
    path.push(PathStep {
        node: "server".into(),
        step: how.into(),
        micros: 0,
    });
    InvokeResponse {
        result: Ok(Returned {
            value: request.args.as_bytes().to_vec(),
            memo: MemoUse::Skipped,
            effectful: false,
            stats: None,
        }),
        path,
        refused: false,
    }
}
