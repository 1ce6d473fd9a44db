//! The node as the mesh sees it: the modules it holds, and calls peers forward to it,
//! run within this node's own limits for forwarded calls, whatever the caller asked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use spore_core::trust::{Revocation, Signed};
use spore_core::{CallRequest, Cancel, ErrorKind, Failure, Hash};
use spore_mesh::{InvokeNow, InvokeResponse, MeshHost, PeerId};
use spore_runtime::{Bindings, CallEnv};

use crate::trust::TrustStore;

use crate::placement::returned;
use crate::{Called, Node};

/// How many peers' bindings are kept ([`Node::bindings_for`]); past it, all are built
/// again as they are needed.
const MAX_KEPT_PEER_BINDINGS: usize = 4096;

/// How long a forwarded call may run on the mesh's own thread ([`MeshHost::invoke_now`]);
/// the runtime may overrun a deadline by one epoch tick (5 ms). Plenty for a short
/// function, and the mesh is never held up for long.
const INLINE_BUDGET: Duration = Duration::from_millis(5);

/// Two overruns of [`INLINE_BUDGET`] this close together send a module's calls to the
/// blocking pool, for this long; then they are tried inline again.
const OVERRUN_WINDOW: Duration = Duration::from_secs(60);

/// The node as the mesh sees it.
pub struct NodeHost {
    node: Weak<Node>,
    overruns: Overruns,
}

impl NodeHost {
    pub fn new(node: &Arc<Node>) -> NodeHost {
        NodeHost {
            node: Arc::downgrade(node),
            overruns: Overruns::default(),
        }
    }
}

/// Which modules' calls overran [`INLINE_BUDGET`], and so go to the blocking pool.
///
/// One overrun is not enough: on a busy machine a 20 µs call is sometimes preempted for
/// longer than the budget, and sending every later call of its module to the pool for
/// good made remote calls of it 2x slower for the rest of the process (seen in
/// `cargo bench --bench mesh`). A function that really runs long overruns again at once.
#[derive(Default)]
struct Overruns(Mutex<HashMap<Hash, Overrun>>);

#[derive(Clone, Copy)]
struct Overrun {
    last: Instant,
    repeated: bool,
}

impl Overruns {
    /// Whether calls of `module` go to the blocking pool at `now`.
    fn sends_to_pool(&self, module: &Hash, now: Instant) -> bool {
        self.lock().get(module).is_some_and(|overrun| {
            overrun.repeated && now.duration_since(overrun.last) < OVERRUN_WINDOW
        })
    }

    /// Counts an overrun of a call of `module` at `now`.
    fn record(&self, module: Hash, now: Instant) {
        let mut overruns = self.lock();
        let repeated = overruns
            .get(&module)
            .is_some_and(|earlier| now.duration_since(earlier.last) < OVERRUN_WINDOW);
        overruns.insert(
            module,
            Overrun {
                last: now,
                repeated,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Hash, Overrun>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn remote_span(request: &CallRequest, from: PeerId) -> tracing::Span {
    tracing::info_span!(
        "serve call",
        function = %request.function,
        trace = %request.trace,
        %from
    )
}

impl Node {
    /// A forwarded call held to this node's limits for forwarded calls
    /// (`docs/configuration.md`, `[limits.forwarded]`): its deadline and memory cap cut
    /// to them, and refused outright when its arguments are larger than they allow.
    fn admit(&self, mut request: CallRequest) -> Result<CallRequest, Failure> {
        let limits = &self.config.forwarded;
        if request.args.len() as u64 > limits.args_bytes {
            return Err(Failure::new(
                ErrorKind::TooLarge,
                format!(
                    "the arguments of {} are {} bytes; this node takes at most {} bytes of \
                     arguments in a forwarded call",
                    request.function,
                    request.args.len(),
                    limits.args_bytes
                ),
            ));
        }
        request.deadline = request.deadline.min(Instant::now() + limits.timeout);
        request.memory_bytes = request.memory_bytes.min(limits.memory_bytes);
        Ok(request)
    }

    /// Runs a call a peer forwarded, within this node's limits and with only the
    /// bindings that peer may use; stopped when `cancel` is set (the peer stopped
    /// waiting).
    fn serve(&self, request: CallRequest, cancel: Cancel, from: PeerId) -> InvokeResponse {
        let module = request.function.module;
        // A module this node does not hold is fetched to run the call: charged to the
        // peer, within its quota.
        // The in-memory check first: a warm call must not touch the disk for this.
        let held = self.runtime.loaded_manifest(&module).is_some()
            || self.codebase.has_module(&module).unwrap_or(false);
        let admitted = self
            .admit(request)
            .and_then(|request| {
                if !held {
                    self.peer_limits.may_fetch_for(&from)?;
                }
                Ok(request)
            })
            .and_then(|request| Ok((request, self.bindings_for(&from)?)));
        match admitted {
            Ok((request, bindings)) => {
                let env = CallEnv {
                    bindings,
                    depth: 0,
                    cancel,
                    log_budget: Some(self.peer_limits.log_budget(&from)),
                };
                let called = self.call_in(request, &env);
                if !held && let Ok(bytes) = self.codebase.module_bytes(&module) {
                    self.peer_limits.charge_module(&from, bytes.len() as u64);
                }
                answer(called)
            }
            Err(refusal) => InvokeResponse::refused(refusal, Default::default()),
        }
    }

    /// The bindings a call forwarded by `peer` may use: those whose `callers` admit it
    /// (`docs/security.md`), and `call`, which only composes functions that are held to
    /// the same bindings.
    fn bindings_for(&self, peer: &PeerId) -> Result<Arc<Bindings>, Failure> {
        let admitted = self
            .mesh()
            .and_then(|mesh| mesh.admitted(peer))
            .ok_or_else(|| {
                Failure::new(
                    ErrorKind::NotAllowed,
                    format!("peer {peer} is not admitted to this node's mesh"),
                )
            })?;
        // Kept per peer and its roles: building them formats the peer id, which cost a
        // measurable part of a warm remote call. A peer admitted again with other roles
        // gets them built again.
        let mut kept = self.peer_bindings.lock().expect("peer bindings poisoned");
        if let Some((roles, bindings)) = kept.get(peer)
            && *roles == admitted.roles
        {
            return Ok(bindings.clone());
        }
        if kept.len() >= MAX_KEPT_PEER_BINDINGS {
            kept.clear();
        }
        let may_use = |ability: &str| {
            ability == "call"
                || self.config.abilities.get(ability).is_some_and(|config| {
                    config
                        .callers
                        .iter()
                        .any(|rule| rule.admits(peer, &admitted.roles))
                })
        };
        let origin = format!(
            "the abilities whose `callers` in {} admit peer {peer} (roles: {})",
            self.config.file.display(),
            if admitted.roles.is_empty() {
                "none".to_owned()
            } else {
                admitted.roles.join(", ")
            }
        );
        let bindings = Arc::new(self.bindings.only(may_use, origin));
        kept.insert(*peer, (admitted.roles.clone(), bindings.clone()));
        Ok(bindings)
    }
}

/// A finished call as the peer that forwarded it receives it: refused when placement
/// stopped it before any of it ran, so that the peer may send it elsewhere.
fn answer(called: Called) -> InvokeResponse {
    match &called.result {
        Ok(outcome) => InvokeResponse::answered(returned(outcome), called.path),
        Err(error) if error.ran_nothing() => {
            InvokeResponse::refused(error.to_failure(), called.path)
        }
        Err(error) => InvokeResponse::answered(Err(error.to_failure()), called.path),
    }
}

impl MeshHost for NodeHost {
    fn module_bytes(&self, hash: &Hash) -> Option<Vec<u8>> {
        self.node.upgrade()?.codebase.module_bytes(hash).ok()
    }

    fn module_hashes(&self) -> Vec<Hash> {
        self.node
            .upgrade()
            .and_then(|node| node.codebase.manifests().ok())
            .map(|manifests| manifests.into_iter().map(|m| m.module).collect())
            .unwrap_or_default()
    }

    /// Keeps a revocation a peer told of in the home, so that the node still applies it
    /// after a restart.
    fn revocation_learned(&self, revocation: &Signed<Revocation>) {
        let Some(node) = self.node.upgrade() else {
            return;
        };
        match TrustStore::new(node.home()).add_revocation(revocation) {
            Ok(_) => tracing::info!(
                node = %revocation.body().node,
                reason = %revocation.body().reason,
                "learned a revocation of this mesh from a peer; kept in the home"
            ),
            Err(error) => tracing::warn!("cannot keep a revocation learned from a peer: {error}"),
        }
    }

    /// Keeps publications a member sent, if they verify and link; a run that starts past
    /// what is held (this node missed earlier records) is completed from the DHT.
    fn chain_received(&self, run: spore_core::trust::ChainRun, from: PeerId) {
        let Some(node) = self.node.upgrade() else {
            return;
        };
        let error = match node.receive_chain(&run) {
            Ok(_) => return,
            Err(error) => error,
        };
        let gap = matches!(
            &error,
            crate::NodeError::Trust(crate::TrustStoreError::Refused(
                spore_core::trust::TrustError::BrokenChain { .. }
            ))
        ) && run.first_seq() > 1;
        if gap && let Some(whole) = node.find_whole_chain(&run) {
            match node.receive_chain(&whole) {
                Ok(_) => return,
                Err(error) => {
                    return tracing::warn!(%from, name = run.name(), "refusing the chain of a mesh name: {error}");
                }
            }
        }
        tracing::warn!(%from, name = run.name(), publisher = %run.publisher(), "refusing publications of a mesh name: {error}");
    }

    fn invoke(&self, request: CallRequest, from: PeerId, cancel: Cancel) -> InvokeResponse {
        let _span = remote_span(&request, from).entered();
        let Some(node) = self.node.upgrade() else {
            return InvokeResponse::error(ErrorKind::Unavailable, "the node is shutting down");
        };
        match node.peer_limits.start_call(from) {
            Ok(_running) => node.serve(request, cancel, from),
            Err(busy) => InvokeResponse::refused(busy, Default::default()),
        }
    }

    /// Runs a forwarded call right here when it is a function that can reach no ability
    /// and its module is loaded: it cannot block on a provider or the compiler, and
    /// should it overrun [`INLINE_BUDGET`], running it again on the blocking pool is
    /// harmless. (Its Wasm stack, 512 KiB at most, fits the daemon's worker threads.)
    fn invoke_now(&self, request: CallRequest, from: PeerId) -> InvokeNow {
        let Some(node) = self.node.upgrade() else {
            return InvokeNow::Later(request);
        };
        let pure_and_loaded = node
            .runtime
            .loaded_manifest(&request.function.module)
            .is_some_and(|manifest| node.reach(&manifest, &request.function).is_empty());
        if !pure_and_loaded
            || self
                .overruns
                .sends_to_pool(&request.function.module, Instant::now())
        {
            return InvokeNow::Later(request);
        }
        let _span = remote_span(&request, from).entered();
        let running = match node.peer_limits.start_call(from) {
            Ok(running) => running,
            Err(busy) => {
                return InvokeNow::Answered(InvokeResponse::refused(busy, Default::default()));
            }
        };
        let budget = Instant::now() + INLINE_BUDGET;
        if request.deadline <= budget {
            return InvokeNow::Answered(node.serve(request, Cancel::never(), from));
        }
        let inline = CallRequest {
            deadline: budget,
            ..request.clone()
        };
        let response = node.serve(inline, Cancel::never(), from);
        let overran = response
            .result
            .as_ref()
            .is_err_and(|failure| failure.kind == ErrorKind::Timeout);
        if overran {
            tracing::debug!("overran the inline budget of {INLINE_BUDGET:?}; rerun on the pool");
            self.overruns
                .record(request.function.module, Instant::now());
            // Counted again where it reruns.
            node.peer_limits.refund(running);
            return InvokeNow::Later(request);
        }
        InvokeNow::Answered(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_goes_to_the_pool_after_two_overruns_close_together_and_comes_back_later() {
        let overruns = Overruns::default();
        let module = Hash::of(b"module");
        let start = Instant::now();
        overruns.record(module, start);
        assert!(
            !overruns.sends_to_pool(&module, start),
            "one overrun is a hiccup"
        );

        let again = start + OVERRUN_WINDOW / 2;
        overruns.record(module, again);
        assert!(overruns.sends_to_pool(&module, again));
        assert!(!overruns.sends_to_pool(&Hash::of(b"other"), again));

        let later = again + OVERRUN_WINDOW;
        assert!(
            !overruns.sends_to_pool(&module, later),
            "tried inline again"
        );
        overruns.record(module, later);
        assert!(
            !overruns.sends_to_pool(&module, later),
            "an overrun long after the last is a hiccup again"
        );
    }
}
