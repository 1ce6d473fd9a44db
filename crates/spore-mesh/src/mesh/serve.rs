//! The servers of the streams peers open: each hello is judged, and a fetch or a call
//! is answered only once its peer is admitted.

use std::sync::Arc;

use libp2p::PeerId;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, debug_span};

use crate::MeshHost;
use crate::fetch::ServeCache;
use crate::membership::{self, Admitted, HELLO_PROTOCOL, HELLO_TIMEOUT, Members};
use crate::streams::Inbound;
use crate::swarm::Command;
use crate::wire::{INVOKE_PROTOCOL, fetch_slice_format};

/// Answers the streams peers open, each in its own task, until shutdown; then stops
/// every answer still in progress.
pub(super) async fn serve(
    mut inbound: mpsc::Receiver<Inbound>,
    host: Arc<dyn MeshHost>,
    members: Arc<Members>,
    commands: mpsc::Sender<Command>,
    mut shutdown: watch::Receiver<bool>,
) {
    let cache = Arc::new(ServeCache::new());
    let mut handlers = JoinSet::new();
    loop {
        tokio::select! {
            next = inbound.recv() => {
                let Some(Inbound { peer, protocol, stream }) = next else { break };
                if protocol == HELLO_PROTOCOL {
                    handlers.spawn(take_hello(peer, stream, members.clone(), host.clone(), commands.clone()));
                    continue;
                }
                // Nothing is served to a peer before it is admitted.
                let members = members.clone();
                let admitted = async move { members.wait(&peer, HELLO_TIMEOUT).await };
                if let Some(format) = fetch_slice_format(&protocol) {
                    let span = debug_span!("serve_fetch", %peer);
                    let answer = crate::fetch::serve_one(stream, host.clone(), cache.clone(), format);
                    handlers.spawn(gated(peer, admitted, answer).instrument(span));
                } else if protocol == INVOKE_PROTOCOL {
                    let answer = crate::invoke::serve_stream(peer, stream, host.clone());
                    handlers.spawn(gated(peer, admitted, answer));
                }
            }
            Some(_) = handlers.join_next(), if !handlers.is_empty() => {}
            // A shutdown request, or the Mesh dropped without one.
            _ = shutdown.changed() => break,
        }
    }
    handlers.shutdown().await;
}

/// Runs `serve` once `admitted` says the peer is admitted; drops the stream otherwise.
async fn gated(
    peer: PeerId,
    admitted: impl std::future::Future<Output = Result<Admitted, String>>,
    serve: impl std::future::Future<Output = ()>,
) {
    match admitted.await {
        Ok(_) => serve.await,
        Err(why) => debug!(%peer, "refusing a stream from a peer that is not admitted: {why}"),
    }
}

/// Judges a peer's hello; hands new revocations to the host to keep, and has the peers
/// they revoke disconnected.
async fn take_hello(
    peer: PeerId,
    stream: crate::streams::Stream,
    members: Arc<Members>,
    host: Arc<dyn MeshHost>,
    commands: mpsc::Sender<Command>,
) {
    let judged = membership::receive_hello(&members, peer, stream).await;
    if judged.new_revocations.is_empty() {
        return;
    }
    for (revoked, why) in members.lapsed(membership::now_ms()) {
        let _ = commands.send(Command::Refused { peer: revoked, why }).await;
    }
    let _ = tokio::task::spawn_blocking(move || {
        for revocation in &judged.new_revocations {
            host.revocation_learned(revocation);
        }
    })
    .await;
}
