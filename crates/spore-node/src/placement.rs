//! Where a call runs (`spec/wire.md`, "Placement"): here when this node binds every
//! ability the function can reach, else on a peer that advertises them; code that is
//! not here is fetched from the mesh, verified and kept. One deadline, the request's,
//! covers all of it. Every step is recorded in the call's path, for `--explain`.

use std::sync::Arc;
use std::time::Instant;

use ciborium::Value;
use spore_core::{CallRequest, ErrorKind, Failure, FunctionRef, Hash, MAX_HOPS, Path};
use spore_mesh::{InvokeResponse, Mesh, PeerId, Returned};
use spore_runtime::{CallEnv, InvokeError};

use crate::{Node, NodeError, Outcome};

/// The node's link to the mesh, set when a long-lived node joins it.
pub(crate) struct MeshLink {
    pub(crate) mesh: Mesh,
    pub(crate) runtime: tokio::runtime::Handle,
    /// The peer id as text, as every step of a path names this node (formatted once:
    /// base58 encoding it was a measurable part of a remote call).
    me: String,
}

impl MeshLink {
    /// Runs a mesh operation from the node's (synchronous) code. That code runs on
    /// blocking threads, except short pure calls served on the mesh's own workers
    /// ([`crate::NodeHost`]'s `invoke_now`), which never reach the mesh; should one,
    /// moving off the worker first keeps it from stalling the runtime (`block_on` on a
    /// worker would panic).
    pub(crate) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.runtime.block_on(future))
            }
            _ => self.runtime.block_on(future),
        }
    }
}

impl Node {
    /// Joins the mesh: this node's calls may now be placed on peers and fetch code.
    pub fn attach_mesh(self: &Arc<Self>, mesh: Mesh, runtime: tokio::runtime::Handle) {
        let me = mesh.peer_id().to_string();
        if self.mesh.set(MeshLink { mesh, runtime, me }).is_ok() {
            self.spread_all_chains();
        }
    }

    pub fn mesh(&self) -> Option<&Mesh> {
        self.mesh.get().map(|link| &link.mesh)
    }

    /// The abilities this node serves for others: bound here and not local to every node
    /// anyway.
    pub fn served_abilities(&self) -> Vec<String> {
        self.bindings
            .iter()
            .map(|(ability, _)| ability)
            .filter(|ability| !spore_abilities::is_everywhere(ability))
            .map(str::to_owned)
            .collect()
    }

    /// Refuses a call made for a peer that would use a binding whose `publishers` (in
    /// `config.toml`) signed no publication of `function`'s module. Calls made on the
    /// node itself, and the operator's handlers, are not held to it. A call made for a
    /// peer is told by its bindings: the set filtered for that peer
    /// (`NodeHost::bindings_for`), which the calls it makes inherit.
    fn check_publishers(
        &self,
        function: &FunctionRef,
        reach: &[&str],
        env: &CallEnv,
    ) -> Result<(), NodeError> {
        if !env.bindings.on_behalf() {
            return Ok(());
        }
        let restricted: Vec<(&str, &[spore_core::trust::PublicKey])> = reach
            .iter()
            .filter_map(|ability| {
                let config = self.config.abilities.get(*ability)?;
                (!config.publishers.is_empty()).then_some((*ability, config.publishers.as_slice()))
            })
            .collect();
        if restricted.is_empty() {
            return Ok(());
        }
        let signed_by = self.publishers_of(&function.module);
        for (ability, publishers) in restricted {
            if !publishers.iter().any(|key| signed_by.contains(key)) {
                return Err(NodeError::placement(
                    ErrorKind::NotAllowed,
                    format!(
                        "{function} may use {ability}, which a peer's call may use here only for code signed by {} (`publishers` in {}); {}",
                        publishers
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                        self.config.file.display(),
                        if signed_by.is_empty() {
                            "this node holds no signed publication of its module".to_owned()
                        } else {
                            format!(
                                "its module is published by {}",
                                signed_by
                                    .iter()
                                    .map(ToString::to_string)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    ),
                ));
            }
        }
        Ok(())
    }

    /// How this node names itself in paths: its peer id, or `local` off the mesh.
    pub(crate) fn me(&self) -> String {
        self.mesh
            .get()
            .map_or_else(|| "local".to_owned(), |link| link.me.clone())
    }

    /// Decides where `request` runs and runs it there.
    pub(crate) fn place(
        &self,
        request: CallRequest,
        env: &CallEnv,
        path: &mut Path,
    ) -> Result<Outcome, NodeError> {
        let pinned = match &request.placement {
            spore_core::Placement::On(peer) => Some(self.pinned_peer(peer)?),
            _ => None,
        };
        let here = self.mesh().map(Mesh::peer_id);
        let pinned_elsewhere = pinned.filter(|peer| Some(*peer) != here);
        let module = request.function.module;
        // A module loaded in memory is here and known; anything else may need fetching.
        let manifest = match self.runtime.loaded_manifest(&module) {
            Some(manifest) => manifest,
            None => {
                self.fetch(&module, request.deadline, path)?;
                self.runtime.manifest(&module)?
            }
        };
        let export = manifest.resolve_export(request.function.export.as_ref())?;
        let request = CallRequest {
            function: FunctionRef::new(request.function.module, export),
            ..request
        };
        let reach = self.reach(&manifest, &request.function);
        // Bound here but not for this call: a call a peer forwarded, or one it made
        // through `call`, may use only the bindings that peer may (`Node::bindings_for`).
        let withheld: Vec<&str> = reach
            .iter()
            .copied()
            .filter(|ability| {
                self.bindings.get(ability).is_some() && env.bindings.get(ability).is_none()
            })
            .collect();
        if !withheld.is_empty() {
            return Err(NodeError::placement(
                ErrorKind::NotAllowed,
                format!(
                    "{} may use {}, which this call may not: it may use only {}",
                    request.function,
                    withheld.join(", "),
                    env.bindings.origin()
                ),
            ));
        }
        self.check_publishers(&request.function, &reach, env)?;
        let needed: Vec<&str> = reach
            .iter()
            .copied()
            .filter(|ability| !spore_abilities::is_everywhere(ability))
            .collect();
        let missing: Vec<String> = needed
            .iter()
            .filter(|ability| self.bindings.get(ability).is_none())
            .map(|ability| ability.to_string())
            .collect();
        let local_only = request.placement == spore_core::Placement::Local;
        if (missing.is_empty() && pinned_elsewhere.is_none()) || local_only {
            return self.run_here(&request, &reach, env, path);
        }
        let Some(link) = self.mesh.get() else {
            // Not on a mesh: the runtime refuses the call naming what is missing.
            return self.run_here(&request, &reach, env, path);
        };
        if request.hops >= MAX_HOPS {
            return Err(NodeError::placement(
                ErrorKind::Unbound,
                format!(
                    "{} was forwarded {} times without finding a node that binds {}",
                    request.function,
                    request.hops,
                    missing.join(", ")
                ),
            ));
        }
        let needed: Vec<String> = needed.into_iter().map(str::to_owned).collect();
        let retry = reach.is_empty();
        // The peer's spans continue this call's (the span `call_in` entered).
        let parent_span =
            crate::trace_bridge::get().and_then(|bridge| bridge.span_id(&tracing::Span::current()));
        let request = CallRequest {
            hops: request.hops + 1,
            parent_span,
            ..request
        };
        if let Some(peer) = pinned_elsewhere {
            let pinned = [peer];
            return self
                .forward(link, &request, Peers::Given(&pinned), &[], retry, path)
                .done();
        }
        let found = self.find_peers(link, &request, &needed, &missing, Lookup::CacheFirst, path)?;
        let peers = if found.cached {
            Peers::Remembered(&found.peers)
        } else {
            Peers::Given(&found.peers)
        };
        match self.forward(link, &request, peers, &needed, retry, path) {
            // A remembered peer failed before the call reached it: nothing ran, so the
            // call may go to whoever serves the abilities now.
            Forwarded::Unsent(_) if found.cached => {
                let found =
                    self.find_peers(link, &request, &needed, &missing, Lookup::Dht, path)?;
                let peers = Peers::Given(&found.peers);
                self.forward(link, &request, peers, &needed, retry, path)
                    .done()
            }
            forwarded => forwarded.done(),
        }
    }

    /// The peer a call is pinned to, which only a node on a mesh can reach.
    fn pinned_peer(&self, peer: &str) -> Result<PeerId, NodeError> {
        let peer: PeerId = peer.parse().map_err(|e| {
            NodeError::placement(
                ErrorKind::BadRequest,
                format!("`{peer}` is not a peer id: {e}"),
            )
        })?;
        if self.mesh().is_none() {
            return Err(NodeError::placement(
                ErrorKind::Unavailable,
                format!(
                    "the call is pinned to peer {peer}, but no node runs on this home to reach \
                     it: start one with `spore node run`"
                ),
            ));
        }
        Ok(peer)
    }

    /// Peers that advertise every ability in `needed`: those remembered, unless asked
    /// for a fresh lookup or they are older than the cache's TTL, else the DHT's answer.
    /// Peers known to hold the module compiled come first.
    fn find_peers(
        &self,
        link: &MeshLink,
        request: &CallRequest,
        needed: &[String],
        missing: &[String],
        lookup: Lookup,
        path: &mut Path,
    ) -> Result<FoundPeers, NodeError> {
        let started = Instant::now();
        let remembered = match lookup {
            Lookup::CacheFirst => self.placements.serving(needed, started),
            Lookup::Dht => None,
        };
        let cached = remembered.as_ref().map(|remembered| remembered.age);
        let mut peers = match remembered {
            Some(remembered) => remembered.peers,
            None => {
                let deadline = tokio::time::Instant::from_std(request.deadline);
                let span = tracing::info_span!("find_ability_peers", abilities = ?needed);
                let peers = span
                    .in_scope(|| link.block_on(link.mesh.find_ability_peers(needed, deadline)))
                    .map_err(NodeError::from)?;
                self.placements.found(needed, &peers, Instant::now());
                peers
            }
        };
        self.metrics.placement_lookup(cached.is_some());
        let module = request.function.module;
        let compiled = self
            .placements
            .prefer_compiled(&module, &mut peers, Instant::now());
        tracing::debug!(abilities = ?needed, ?peers, ?cached, ?compiled, "peers for a placed call");
        let mut step = format!(
            "needs {} (not bound here): found {} peer(s) advertising them",
            missing.join(", "),
            peers.len()
        );
        if let Some(age) = cached {
            step.push_str(&format!(" (cached, {:.1} s old)", age.as_secs_f64()));
        }
        if !compiled.is_empty() {
            let compiled: Vec<String> = compiled.iter().map(ToString::to_string).collect();
            step.push_str(&format!(
                "; {} already ran {}",
                compiled.join(", "),
                module.short(12)
            ));
        }
        path.push(self.step(started, step));
        if peers.is_empty() {
            return Err(NodeError::placement(
                ErrorKind::Unbound,
                format!(
                    "{} needs {}, which neither this node nor any peer in the mesh binds",
                    request.function,
                    missing.join(", ")
                ),
            ));
        }
        Ok(FoundPeers {
            peers,
            cached: cached.is_some(),
        })
    }

    /// Sends `request` to the first of `peers` that is admitted, granted every ability
    /// in `grants`, and takes it. A peer that refuses the call (its policy, its limits:
    /// nothing of the call ran) is passed over for the next. A function that can reach
    /// no ability may be retried on the next peer after any failure; any other may
    /// already have acted, so once a peer took it, it is never sent again. A peer that
    /// cannot be reached, or no longer serves the abilities, is forgotten by the
    /// placement cache; if it was remembered, so are the others found with it, and
    /// forwarding stops there for the caller to look the peers up again.
    fn forward(
        &self,
        link: &MeshLink,
        request: &CallRequest,
        peers: Peers<'_>,
        grants: &[String],
        retry: bool,
        path: &mut Path,
    ) -> Forwarded {
        let function = &request.function;
        let mut last_error = None;
        let mut sent = false;
        let (list, remembered) = match peers {
            Peers::Given(list) => (list, false),
            Peers::Remembered(list) => (list, true),
        };
        for &peer in list {
            let started = Instant::now();
            // Judged again at every use: a remembered peer may have been revoked since.
            if let Err(error) = self.admitted_for(link, peer, grants, request.deadline) {
                path.push(self.step(started, format!("not forwarding to {peer}: {error}")));
                if error.kind() != ErrorKind::Timeout {
                    self.placements.forget(&peer);
                }
                // After a peer took the call, its failure is the one to report.
                if !sent {
                    last_error = Some(error);
                }
                if remembered {
                    break;
                }
                continue;
            }
            match link.block_on(link.mesh.invoke(peer, request)) {
                Ok(InvokeResponse {
                    result: Err(failure),
                    path: remote,
                    refused: true,
                }) => {
                    path.push(self.step(
                        started,
                        format!(
                            "{peer} refused {function}: {}: {}",
                            failure.kind, failure.message
                        ),
                    ));
                    path.extend(remote);
                    if failure.kind == ErrorKind::Unbound {
                        self.placements.forget(&peer);
                    }
                    if !sent {
                        last_error = Some(NodeError::Remote {
                            peer: peer.to_string(),
                            failure: Box::new(failure),
                        });
                    }
                }
                Ok(InvokeResponse {
                    result,
                    path: remote,
                    ..
                }) => {
                    path.push(self.step(started, format!("forwarded {function} to {peer}")));
                    path.extend(remote);
                    match &result {
                        // It ran there, so it is compiled there.
                        Ok(returned) if returned.stats.is_some() => {
                            self.placements.ran(function.module, peer, Instant::now());
                        }
                        Err(failure) if failure.kind == ErrorKind::Unbound => {
                            self.placements.forget(&peer);
                        }
                        _ => {}
                    }
                    return Forwarded::Done(remote_outcome(function, peer, result));
                }
                Err(error) => {
                    sent = true;
                    path.push(self.step(started, format!("forwarding to {peer} failed: {error}")));
                    if error.kind() != ErrorKind::Timeout {
                        self.placements.forget(&peer);
                    }
                    last_error = Some(NodeError::from(error));
                    if !retry {
                        break;
                    }
                }
            }
        }
        let error = last_error.expect("placement tries at least one peer");
        if sent {
            Forwarded::Done(Err(error))
        } else {
            Forwarded::Unsent(error)
        }
    }

    /// Whether `peer` is admitted to the mesh (connecting to it if need be) and its
    /// certificate grants it every ability in `grants`.
    fn admitted_for(
        &self,
        link: &MeshLink,
        peer: PeerId,
        grants: &[String],
        deadline: Instant,
    ) -> Result<(), NodeError> {
        let admitted = link
            .block_on(link.mesh.admit(peer, deadline.into()))
            .map_err(NodeError::from)?;
        match grants.iter().find(|ability| !admitted.serves(ability)) {
            None => Ok(()),
            Some(ability) => Err(NodeError::placement(
                ErrorKind::NotAllowed,
                format!("its certificate no longer grants it {ability}"),
            )),
        }
    }

    /// Makes sure module `hash` is here, fetching it from the mesh by `deadline` if not.
    pub(crate) fn fetch(
        &self,
        hash: &Hash,
        deadline: Instant,
        path: &mut Path,
    ) -> Result<(), NodeError> {
        if self.codebase.has_module(hash)? {
            return Ok(());
        }
        let Some(link) = self.mesh.get() else {
            return Err(spore_store::StoreError::ModuleNotFound(*hash).into());
        };
        let started = Instant::now();
        let span = tracing::info_span!("fetch", module = %hash.short(12));
        let fetched = span
            .in_scope(|| {
                link.block_on(
                    link.mesh
                        .fetch(*hash, tokio::time::Instant::from_std(deadline)),
                )
            })
            .map_err(NodeError::from)?;
        // The mesh verified every range against the hash; the manifest is derived here,
        // never taken from a peer, and deriving it hashes the whole once more: bytes of
        // another module are never stored in this one's place.
        let manifest = self.derive(&fetched.bytes)?;
        if manifest.module != *hash {
            let actual = manifest.module;
            return Err(spore_mesh::FetchError::HashMismatch {
                hash: *hash,
                actual,
            }
            .into());
        }
        self.codebase.put_module(&fetched.bytes, &manifest)?;
        self.metrics
            .fetched(fetched.bytes.len() as u64, started.elapsed());
        let sources: Vec<String> = fetched
            .sources
            .iter()
            .map(|(peer, bytes)| format!("{bytes} bytes from {peer}"))
            .collect();
        path.push(self.step(
            started,
            format!("fetched {} ({})", hash.short(12), sources.join(", ")),
        ));
        link.runtime.spawn({
            let mesh = link.mesh.clone();
            let hash = *hash;
            async move { mesh.announce(hash).await }
        });
        Ok(())
    }
}

/// Where [`Node::find_peers`] looks first.
#[derive(Clone, Copy)]
enum Lookup {
    /// The placement cache, then the DHT.
    CacheFirst,
    /// The DHT only: what was remembered failed.
    Dht,
}

/// The peers [`Node::forward`] tries, in order.
#[derive(Clone, Copy)]
enum Peers<'a> {
    /// Just found, or the one a call is pinned to.
    Given(&'a [PeerId]),
    /// From the placement cache.
    Remembered(&'a [PeerId]),
}

/// Peers to forward a call to, and whether they came from the cache.
struct FoundPeers {
    peers: Vec<PeerId>,
    cached: bool,
}

/// What forwarding a call came to.
enum Forwarded {
    /// An answer, or a failure after the call was sent to a peer (it may have acted).
    Done(Result<Outcome, NodeError>),
    /// No peer was sent the call: each was unreachable or no longer qualified.
    Unsent(NodeError),
}

impl Forwarded {
    fn done(self) -> Result<Outcome, NodeError> {
        match self {
            Forwarded::Done(result) => result,
            Forwarded::Unsent(error) => Err(error),
        }
    }
}

/// The caller's view of a peer's answer: a returned error stays a guest error with its
/// value, every other failure keeps its kind, and a result says how it was made.
fn remote_outcome(
    function: &FunctionRef,
    peer: PeerId,
    result: Result<Returned, Failure>,
) -> Result<Outcome, NodeError> {
    match result {
        Ok(returned) => Ok(Outcome {
            function: function.clone(),
            value: spore_core::value::decode(&returned.value).map_err(|e| NodeError::Remote {
                peer: peer.to_string(),
                failure: Box::new(Failure::new(
                    ErrorKind::Failed,
                    format!("its result for {function} is not a spore value: {e}"),
                )),
            })?,
            memo: returned.memo,
            stats: returned.stats,
            effectful: returned.effectful,
        }),
        Err(Failure {
            kind: ErrorKind::GuestError,
            value: Some(error),
            ..
        }) => Err(NodeError::Invoke(InvokeError::Guest {
            function: function.clone(),
            error,
        })),
        Err(failure) => Err(NodeError::Remote {
            peer: peer.to_string(),
            failure: Box::new(failure),
        }),
    }
}

/// A result as it travels back to the peer that forwarded the call.
pub(crate) fn returned(outcome: &Outcome) -> Result<Returned, Failure> {
    let value: &Value = &outcome.value;
    let bytes = spore_core::value::encode_canonical(value).map_err(|e| {
        Failure::new(
            ErrorKind::Trap,
            format!(
                "{} returned a value that does not encode: {e}",
                outcome.function
            ),
        )
    })?;
    Ok(Returned {
        value: bytes,
        memo: outcome.memo,
        effectful: outcome.effectful,
        stats: outcome.stats,
    })
}
