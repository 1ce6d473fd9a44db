//! Who this node serves: the peers whose membership certificate admits them to its mesh
//! (`spec/trust.md`). Each side of a new connection sends a hello
//! (`/spore/hello/1`) with its certificate; until a peer's has been judged and found
//! good, none of spore's protocols serve it, and a peer that is refused, or that says
//! nothing in time, is disconnected.
//!
//! The verdict is kept per peer, not per stream, so that judging costs one message each
//! way per connection and nothing per call. What this module must not know: where
//! certificates and revocations are kept (the node's home), and what roles mean.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::identity::Keypair;
use libp2p::{PeerId, StreamProtocol};
use spore_core::trust::{self, Hello, PublicKey, Revocation, SecretKey, Signed, TrustError};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::streams::{Control, Stream};
use crate::wire::{read_frame, write_frame};

pub(crate) const HELLO_PROTOCOL: StreamProtocol = StreamProtocol::new("/spore/hello/1");
/// The largest hello (`spec/trust.md`).
const HELLO_FRAME_LIMIT: usize = 256 << 10;
/// The most revocations one hello carries.
const HELLO_REVOCATIONS: usize = 64;
/// How long a peer has, from the connection opening, to be admitted.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// This node's place in a mesh: its certificate and the mesh's revocations it knows.
#[derive(Debug, Clone)]
pub struct Membership {
    pub certificate: Signed<trust::Membership>,
    pub revocations: Vec<Signed<Revocation>>,
}

impl Membership {
    /// A membership for the node whose identity is `keypair`, made by the holder of the
    /// mesh key: what `spore mesh init` does for its own node, and tests for theirs.
    pub fn admit(
        mesh_key: &SecretKey,
        keypair: &Keypair,
        roles: &[&str],
        serves: &[&str],
    ) -> Result<Membership, TrustError> {
        let node = crate::keypair_key(keypair).ok_or_else(|| {
            TrustError::BadKey("the node's identity is not an ed25519 key".into())
        })?;
        let sorted = |labels: &[&str]| {
            let mut labels: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
            labels.sort();
            labels.dedup();
            labels
        };
        let body = trust::Membership {
            mesh: mesh_key.public(),
            node,
            roles: sorted(roles),
            serves: sorted(serves),
            issued_ms: now_ms(),
            expires_ms: None,
        };
        Ok(Membership {
            certificate: Signed::sign(body, mesh_key)?,
            revocations: Vec::new(),
        })
    }

    pub fn mesh(&self) -> PublicKey {
        self.certificate.body().mesh
    }
}

/// What a peer's certificate grants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub roles: Vec<String>,
    pub serves: Vec<String>,
    pub expires_ms: Option<u64>,
}

impl Admitted {
    /// Whether the peer may serve `ability` to the mesh.
    pub fn serves(&self, ability: &str) -> bool {
        self.serves.iter().any(|a| a == ability)
    }
}

/// A peer's standing, as far as this node has judged it.
#[derive(Debug, Clone)]
enum Standing {
    Admitted(Admitted),
    /// Its hello was judged, and does not admit it.
    Refused(String),
    /// It was not heard: no hello in time, or it hung up first.
    Unheard(String),
}

/// The verdicts on peers, shared by the swarm task, the servers and the clients.
pub(crate) struct Members {
    own: Option<Membership>,
    /// See `MeshTuning::trust_everyone`.
    #[cfg(test)]
    pub trust_everyone: bool,
    state: Mutex<State>,
    /// Bumped at every verdict, so that waiters look again.
    verdicts: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    standing: HashMap<PeerId, Standing>,
    revocations: Vec<Signed<Revocation>>,
}

/// What taking in a peer's hello learned besides the verdict.
pub(crate) struct Judged {
    pub verdict: Result<Admitted, String>,
    /// Revocations of this node's mesh it did not know.
    pub new_revocations: Vec<Signed<Revocation>>,
}

impl Members {
    pub fn new(own: Option<Membership>) -> Members {
        let revocations = own
            .as_ref()
            .map(|m| m.revocations.clone())
            .unwrap_or_default();
        Members {
            own,
            #[cfg(test)]
            trust_everyone: false,
            state: Mutex::new(State {
                standing: HashMap::new(),
                revocations,
            }),
            verdicts: watch::Sender::new(0),
        }
    }

    pub fn mesh(&self) -> Option<PublicKey> {
        self.own.as_ref().map(Membership::mesh)
    }

    /// This node's own certificate, if it belongs to a mesh.
    pub fn own(&self) -> Option<&Signed<trust::Membership>> {
        self.own.as_ref().map(|m| &m.certificate)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This node's hello: its certificate and the latest revocations it knows.
    pub fn hello(&self) -> Hello {
        let state = self.state();
        let skip = state.revocations.len().saturating_sub(HELLO_REVOCATIONS);
        Hello {
            certificate: self
                .own
                .as_ref()
                .map(|m| serde_bytes::ByteBuf::from(m.certificate.as_bytes().to_vec())),
            revocations: state.revocations[skip..]
                .iter()
                .map(|r| serde_bytes::ByteBuf::from(r.as_bytes().to_vec()))
                .collect(),
        }
    }

    /// Judges `peer` by its `hello` at `now_ms`, and keeps the verdict.
    pub fn judge(&self, peer: PeerId, hello: &Hello, now_ms: u64) -> Judged {
        let mut new_revocations = Vec::new();
        #[cfg(test)]
        if self.trust_everyone {
            let verdict = Ok(Admitted {
                roles: Vec::new(),
                serves: Vec::new(),
                expires_ms: None,
            });
            return self.keep(
                peer,
                Judged {
                    verdict,
                    new_revocations,
                },
            );
        }
        let Some(mesh) = self.mesh() else {
            return self.keep(
                peer,
                Judged {
                    verdict: Err("this node belongs to no mesh, so it admits no peer".into()),
                    new_revocations,
                },
            );
        };
        for bytes in hello.revocations.iter().take(HELLO_REVOCATIONS) {
            match Signed::<Revocation>::from_bytes(bytes) {
                Ok(r) if r.body().mesh == mesh => {
                    if self.learn(&r) {
                        new_revocations.push(r);
                    }
                }
                Ok(_) => {}
                Err(e) => debug!(%peer, "ignoring a revocation in a hello: {e}"),
            }
        }
        let verdict = match (&hello.certificate, crate::node_key(&peer)) {
            (None, _) => Err("it belongs to no mesh (its hello has no certificate)".to_owned()),
            (_, None) => Err("its peer id is not an ed25519 identity".to_owned()),
            (Some(bytes), Some(node)) => Signed::<trust::Membership>::from_bytes(bytes)
                .and_then(|certificate| {
                    let revocations = self.state().revocations.clone();
                    certificate.admits(&mesh, &node, now_ms, &revocations)?;
                    let body = certificate.body();
                    Ok(Admitted {
                        roles: body.roles.clone(),
                        serves: body.serves.clone(),
                        expires_ms: body.expires_ms,
                    })
                })
                .map_err(|e| e.to_string()),
        };
        self.keep(
            peer,
            Judged {
                verdict,
                new_revocations,
            },
        )
    }

    fn keep(&self, peer: PeerId, judged: Judged) -> Judged {
        let standing = match &judged.verdict {
            Ok(admitted) => Standing::Admitted(admitted.clone()),
            Err(why) => Standing::Refused(why.clone()),
        };
        self.state().standing.insert(peer, standing);
        self.verdicts.send_modify(|n| *n += 1);
        judged
    }

    /// Marks `peer` as not heard (no hello in time), unless it has been judged since.
    pub fn unheard(&self, peer: PeerId, why: &str) {
        self.state()
            .standing
            .entry(peer)
            .or_insert_with(|| Standing::Unheard(why.to_owned()));
        self.verdicts.send_modify(|n| *n += 1);
    }

    /// Whether `peer`'s hello was judged and refused (rather than never heard).
    pub fn refused(&self, peer: &PeerId) -> bool {
        matches!(self.state().standing.get(peer), Some(Standing::Refused(_)))
    }

    /// Keeps `revocation` if it is new; whether it was.
    pub fn learn(&self, revocation: &Signed<Revocation>) -> bool {
        let mut state = self.state();
        if state.revocations.contains(revocation) {
            return false;
        }
        state.revocations.push(revocation.clone());
        true
    }

    /// What `peer`'s certificate grants it, if it has been admitted.
    pub fn admitted(&self, peer: &PeerId) -> Option<Admitted> {
        match self.state().standing.get(peer) {
            Some(Standing::Admitted(admitted)) => Some(admitted.clone()),
            _ => None,
        }
    }

    /// Waits until `peer` is judged, at most `timeout`: what its certificate grants it,
    /// or why it was not admitted; `Err(None)` when there was no verdict in time.
    pub async fn verdict(
        &self,
        peer: &PeerId,
        timeout: Duration,
    ) -> Result<Admitted, Option<String>> {
        let mut verdicts = self.verdicts.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                match self.state().standing.get(peer) {
                    Some(Standing::Admitted(admitted)) => return Ok(admitted.clone()),
                    Some(Standing::Refused(why) | Standing::Unheard(why)) => {
                        return Err(Some(why.clone()));
                    }
                    None => {}
                }
                if verdicts.changed().await.is_err() {
                    return Err(Some("the mesh has shut down".to_owned()));
                }
            }
        })
        .await;
        waited.unwrap_or(Err(None))
    }

    /// [`Members::verdict`], where no verdict in time is a refusal: the peer said
    /// nothing that admits it.
    pub async fn wait(&self, peer: &PeerId, timeout: Duration) -> Result<Admitted, String> {
        self.verdict(peer, timeout)
            .await
            .map_err(|why| why.unwrap_or_else(|| format!("it sent no hello within {timeout:?}")))
    }

    /// Forgets that a peer no longer connected was admitted: its next connection is
    /// judged afresh (its certificate may have been revoked since). A refusal is kept,
    /// so that asking for the peer again says why at once.
    pub fn disconnected(&self, peer: &PeerId) {
        {
            let mut state = self.state();
            match state.standing.get(peer) {
                Some(Standing::Admitted(_)) => {
                    state.standing.remove(peer);
                }
                Some(_) => {}
                None => {
                    let why = "it hung up before its hello was heard".to_owned();
                    state.standing.insert(*peer, Standing::Unheard(why));
                }
            }
        }
        self.verdicts.send_modify(|n| *n += 1);
    }

    /// Forgets an earlier refusal of a peer that connected again: its new hello (a
    /// renewed certificate, perhaps) is judged afresh.
    pub fn reconnected(&self, peer: &PeerId) {
        let mut state = self.state();
        if let Some(Standing::Refused(_) | Standing::Unheard(_)) = state.standing.get(peer) {
            state.standing.remove(peer);
        }
    }

    /// Admitted peers that no longer are at `now_ms`: their certificate expired or a
    /// revocation names them. Each is marked refused, with the reason.
    pub fn lapsed(&self, now_ms: u64) -> Vec<(PeerId, String)> {
        let mut state = self.state();
        // The revoked nodes by peer id. Deriving each admitted peer's key from its peer
        // id instead costs a curve point decompression per peer per check: with 100
        // nodes in one process, checked twice a second, that was most of its two cores
        // (perf on tests/mesh/scale.rs), and pongs came seconds late.
        let revoked: HashMap<PeerId, Revocation> = state
            .revocations
            .iter()
            .map(|r| (crate::peer_id_of(&r.body().node), r.body().clone()))
            .collect();
        let mut lapsed = Vec::new();
        for (peer, standing) in state.standing.iter_mut() {
            let Standing::Admitted(admitted) = standing else {
                continue;
            };
            let why = match admitted.expires_ms {
                Some(expires_ms) if expires_ms <= now_ms => {
                    Some(TrustError::Expired { expires_ms, now_ms }.to_string())
                }
                _ => revoked.get(peer).map(|r| {
                    TrustError::Revoked {
                        revoked_ms: r.revoked_ms,
                        reason: r.reason.clone(),
                    }
                    .to_string()
                }),
            };
            if let Some(why) = why {
                *standing = Standing::Refused(why.clone());
                lapsed.push((*peer, why));
            }
        }
        lapsed
    }
}

/// Sends this node's hello to `peer` on a stream of its own.
pub(crate) async fn send_hello(control: Control, members: &Members, peer: PeerId) {
    #[cfg(test)]
    if members.trust_everyone {
        return;
    }
    let hello = members.hello();
    let sent = tokio::time::timeout(HELLO_TIMEOUT, async {
        let mut stream = control
            .open_stream(peer, HELLO_PROTOCOL)
            .await
            .map_err(|e| e.to_string())?;
        write_frame(&mut stream, &hello, HELLO_FRAME_LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        stream.close().await.map_err(|e| e.to_string())
    })
    .await;
    match sent {
        Ok(Ok(())) => {}
        Ok(Err(e)) => debug!(%peer, "cannot send the hello: {e}"),
        Err(_) => debug!(%peer, "sending the hello timed out"),
    }
}

/// Reads a peer's hello from the stream it opened and judges it.
pub(crate) async fn receive_hello(members: &Members, peer: PeerId, mut stream: Stream) -> Judged {
    let read = tokio::time::timeout(HELLO_TIMEOUT, async {
        let hello: Hello = read_frame(&mut stream, HELLO_FRAME_LIMIT)
            .await
            .map_err(|e| format!("its hello is unreadable: {e}"))?;
        // One frame and nothing after it.
        let mut rest = [0u8; 1];
        match stream.read(&mut rest).await {
            Ok(0) | Err(_) => Ok(hello),
            Ok(_) => Err("its hello stream carries more than one frame".to_owned()),
        }
    })
    .await;
    let judged = match read {
        Ok(Ok(hello)) => members.judge(peer, &hello, now_ms()),
        Ok(Err(why)) => members.keep(
            peer,
            Judged {
                verdict: Err(why),
                new_revocations: Vec::new(),
            },
        ),
        Err(_) => members.keep(
            peer,
            Judged {
                verdict: Err(format!("it sent no hello within {HELLO_TIMEOUT:?}")),
                new_revocations: Vec::new(),
            },
        ),
    };
    match &judged.verdict {
        Ok(admitted) => {
            info!(%peer, roles = ?admitted.roles, serves = ?admitted.serves, "peer admitted")
        }
        Err(why) => warn!(%peer, "peer refused: {why}"),
    }
    judged
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
