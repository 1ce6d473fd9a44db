//! Where a call runs (`spec/wire.md`, "Placement"): here when this node binds every
//! ability the function needs, else on a peer that advertises them; code that is not
//! here is fetched from the mesh, verified and kept. Every step is recorded in the
//! call's path, for `--explain`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_core::{FunctionRef, Hash, Manifest, RefText, value};
use spore_mesh::{InvokeRequest, InvokeResponse, Mesh, MeshHost, PathStep, PeerId, WireError};
use spore_runtime::{CallEnv, InvokeError};

use crate::{ErrorKind, InvokeOptions, Node, NodeError, Outcome};

/// How many times a call may be forwarded before it must run or fail.
pub const MAX_HOPS: u32 = 4;

/// Abilities every node has, so they are never a reason to move a call.
const EVERYWHERE: [&str; 5] = ["call", "clock", "config", "log", "random"];

/// Where a call may run.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// Never forward: run here or fail naming what is missing.
    pub local_only: bool,
    /// Run on this peer.
    pub on: Option<PeerId>,
    /// How many times the call has already been forwarded to get here.
    pub hops: u32,
}

/// A call's outcome and the path it took.
#[derive(Debug, Clone)]
pub struct Placed {
    pub outcome: Outcome,
    pub path: Vec<PathStep>,
}

/// The node's link to the mesh, set when a long-lived node joins it.
pub(crate) struct MeshLink {
    pub(crate) mesh: Mesh,
    pub(crate) runtime: tokio::runtime::Handle,
}

impl MeshLink {
    /// Runs a mesh operation from the node's (synchronous) code. That code runs on
    /// blocking threads, except short pure calls served on the mesh's own workers
    /// ([`NodeHost`]'s `invoke_now`), which never reach the mesh; should one, moving off
    /// the worker first keeps it from stalling the runtime (`block_on` on a worker
    /// would panic).
    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.runtime.block_on(future))
            }
            _ => self.runtime.block_on(future),
        }
    }
}

thread_local! {
    /// Steps of `call`s made by the function running on this thread. A nested call runs
    /// synchronously on its caller's thread (inside the host function), so this collects
    /// them for the caller's path without threading a journal through the runtime.
    static NESTED: std::cell::RefCell<Vec<PathStep>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Adds the path of a nested call to the path of the function that made it.
pub(crate) fn record_nested(path: Vec<PathStep>) {
    NESTED.with(|nested| nested.borrow_mut().extend(path));
}

fn step(node: &str, started: Instant, step: String) -> PathStep {
    PathStep {
        node: node.to_owned(),
        step,
        micros: started.elapsed().as_micros() as u64,
    }
}

impl Node {
    /// Joins the mesh: advertises what this node serves and announces what it holds.
    pub fn attach_mesh(self: &Arc<Self>, mesh: Mesh, runtime: tokio::runtime::Handle) {
        let _ = self.mesh.set(MeshLink { mesh, runtime });
    }

    pub fn mesh(&self) -> Option<&Mesh> {
        self.mesh.get().map(|link| &link.mesh)
    }

    /// The abilities this node serves for others: bound here and not everywhere anyway.
    pub fn served_abilities(&self) -> Vec<String> {
        self.bindings
            .iter()
            .map(|(ability, _)| ability.to_owned())
            .filter(|ability| !EVERYWHERE.contains(&ability.as_str()))
            .collect()
    }

    fn me(&self) -> String {
        self.mesh()
            .map_or_else(|| "local".to_owned(), |mesh| mesh.peer_id().to_string())
    }

    /// Resolves a reference like [`Node::resolve`], fetching the module from the mesh
    /// when a full hash is not held here.
    pub fn resolve_anywhere(
        &self,
        text: &str,
        deadline: Instant,
        path: &mut Vec<PathStep>,
    ) -> Result<FunctionRef, NodeError> {
        match self.resolve(text) {
            Err(error) if error.kind() == ErrorKind::NotFound => {
                let Ok(RefText::Hash { prefix, export }) = text.parse::<RefText>() else {
                    return Err(error);
                };
                let (Some(hash), Some(_)) = (prefix.as_full(), self.mesh.get()) else {
                    return Err(error);
                };
                self.fetch(&hash, deadline, path)?;
                let manifest = self.manifest(&hash)?;
                Ok(FunctionRef::new(
                    hash,
                    manifest.resolve_export(export.as_ref())?,
                ))
            }
            resolved => resolved,
        }
    }

    /// Makes sure module `hash` is here, fetching it from the mesh if it is not.
    fn fetch(
        &self,
        hash: &Hash,
        deadline: Instant,
        path: &mut Vec<PathStep>,
    ) -> Result<(), NodeError> {
        if self.codebase.has_module(hash)? {
            return Ok(());
        }
        let link =
            self.mesh
                .get()
                .ok_or(NodeError::Store(spore_store::StoreError::ModuleNotFound(
                    *hash,
                )))?;
        let started = Instant::now();
        let fetched = link
            .block_on(
                link.mesh
                    .fetch(*hash, tokio::time::Instant::from_std(deadline)),
            )
            .map_err(|e| NodeError::Mesh {
                kind: ErrorKind::NotFound,
                message: format!("cannot fetch {hash}: {e}"),
            })?;
        // The mesh verified every byte against the hash; the manifest is derived here,
        // never taken from a peer.
        let manifest = Manifest::derive(&fetched.bytes)?;
        self.codebase.put_module(&fetched.bytes, &manifest)?;
        let sources: Vec<String> = fetched
            .sources
            .iter()
            .map(|(peer, bytes)| format!("{bytes} bytes from {peer}"))
            .collect();
        path.push(step(
            &self.me(),
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

    /// Runs `function` where placement says, recording the path.
    pub fn invoke_placed(
        &self,
        function: &FunctionRef,
        args: &[Value],
        options: &InvokeOptions,
        placement: &Placement,
        env: &CallEnv,
        path: &mut Vec<PathStep>,
    ) -> Result<Outcome, NodeError> {
        let deadline = Instant::now() + options.limits.deadline;
        self.fetch(&function.module, deadline, path)?;
        let manifest = self.runtime.manifest(&function.module)?;
        let needed: Vec<String> = manifest
            .abilities()
            .into_iter()
            .filter(|a| !EVERYWHERE.contains(a))
            .map(str::to_owned)
            .collect();
        let missing: Vec<String> = needed
            .iter()
            .filter(|a| self.bindings.get(a).is_none())
            .cloned()
            .collect();
        let pinned_elsewhere = placement
            .on
            .is_some_and(|peer| self.mesh().is_none_or(|m| m.peer_id() != peer));
        if (missing.is_empty() && !pinned_elsewhere)
            || placement.local_only
            || self.mesh.get().is_none()
        {
            return self.run_here(function, args, options, env, path);
        }
        if placement.hops >= MAX_HOPS {
            return Err(NodeError::Mesh {
                kind: ErrorKind::Unavailable,
                message: format!(
                    "{function} was forwarded {} times without finding a node that binds {}",
                    placement.hops,
                    missing.join(", ")
                ),
            });
        }
        let link = self.mesh.get().expect("checked above");
        let peers = match placement.on {
            Some(peer) => vec![peer],
            None => {
                let started = Instant::now();
                let peers = link
                    .block_on(
                        link.mesh
                            .find_ability_peers(&needed, tokio::time::Instant::from_std(deadline)),
                    )
                    .map_err(|e| NodeError::Mesh {
                        kind: ErrorKind::NotFound,
                        message: e.to_string(),
                    })?;
                path.push(step(
                    &self.me(),
                    started,
                    format!(
                        "needs {} (not bound here): found {} peer(s) advertising them",
                        missing.join(", "),
                        peers.len()
                    ),
                ));
                peers
            }
        };
        if peers.is_empty() {
            return Err(NodeError::Mesh {
                kind: ErrorKind::NotFound,
                message: format!(
                    "{function} needs {}, which neither this node nor any peer in the mesh binds",
                    missing.join(", ")
                ),
            });
        }
        let request = InvokeRequest {
            function: function.to_string(),
            args: value::encode_canonical(&Value::Array(args.to_vec())).map_err(|e| {
                NodeError::Mesh {
                    kind: ErrorKind::BadRequest,
                    message: e.to_string(),
                }
            })?,
            trace: format!("{:016x}", rand_trace()),
            deadline_ms: deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64,
            hops: placement.hops + 1,
        };
        // A pure function may be retried on another peer; an effectful one may already
        // have acted, so it is never sent twice.
        let retry = manifest.imports.is_empty();
        let mut last_error = None;
        for peer in peers {
            let started = Instant::now();
            match link.block_on(link.mesh.invoke(
                peer,
                request.clone(),
                tokio::time::Instant::from_std(deadline),
            )) {
                Ok(response) => {
                    path.push(step(
                        &self.me(),
                        started,
                        format!("forwarded {function} to {peer}"),
                    ));
                    path.extend(response.path);
                    return remote_outcome(function, response.result);
                }
                Err(error) => {
                    path.push(step(
                        &self.me(),
                        started,
                        format!("forwarding to {peer} failed: {error}"),
                    ));
                    last_error = Some(NodeError::Mesh {
                        kind: ErrorKind::Unavailable,
                        message: format!("{peer} did not complete {function}: {error}"),
                    });
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(last_error.expect("at least one peer was tried"))
    }

    fn run_here(
        &self,
        function: &FunctionRef,
        args: &[Value],
        options: &InvokeOptions,
        env: &CallEnv,
        path: &mut Vec<PathStep>,
    ) -> Result<Outcome, NodeError> {
        let started = Instant::now();
        let outer = NESTED.with(|nested| std::mem::take(&mut *nested.borrow_mut()));
        let outcome = self.invoke_in(function, args, options, env);
        let inner = NESTED.with(|nested| std::mem::replace(&mut *nested.borrow_mut(), outer));
        path.extend(inner);
        let what = match &outcome {
            Ok(outcome) => match outcome.stats {
                Some(stats) => format!(
                    "ran {function} ({:?} load {} us, instantiate {} us, run {} us)",
                    stats.load_source,
                    stats.load_time.as_micros(),
                    stats.instantiate_time.as_micros(),
                    stats.run_time.as_micros()
                ),
                None => format!("answered {function} from the memo"),
            },
            Err(error) => format!("ran {function}: failed ({})", error),
        };
        path.push(step(&self.me(), started, what));
        outcome
    }

    /// Serves a call a peer forwarded, running it for at most `deadline`.
    fn serve_remote(&self, request: &InvokeRequest, deadline: Duration) -> InvokeResponse {
        let mut path = Vec::new();
        let result = (|| {
            let function: FunctionRef = request.function.parse().map_err(NodeError::Reference)?;
            let args = match value::decode(&request.args) {
                Ok(Value::Array(args)) => args,
                _ => {
                    return Err(NodeError::Mesh {
                        kind: ErrorKind::BadRequest,
                        message: "the arguments are not a CBOR array".into(),
                    });
                }
            };
            let options = InvokeOptions {
                limits: spore_runtime::Limits {
                    deadline,
                    memory_bytes: self.config.memory_bytes,
                },
                memo: true,
            };
            let env = CallEnv {
                bindings: self.bindings.clone(),
                depth: 0,
            };
            let placement = Placement {
                hops: request.hops,
                ..Placement::default()
            };
            self.invoke_placed(&function, &args, &options, &placement, &env, &mut path)
        })();
        let result = result
            .and_then(|outcome| {
                value::encode_canonical(&outcome.value).map_err(|e| NodeError::Mesh {
                    kind: ErrorKind::Internal,
                    message: e.to_string(),
                })
            })
            .map_err(|error| wire_error(&error));
        InvokeResponse { result, path }
    }
}

fn rand_trace() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// How a failure travels back to the peer that forwarded the call: its kind as it is.
fn wire_error(error: &NodeError) -> WireError {
    let value = match error {
        NodeError::Invoke(InvokeError::Guest { error, .. }) => value::encode_canonical(error).ok(),
        _ => None,
    };
    WireError {
        kind: error.kind(),
        message: error.to_string(),
        value,
    }
}

/// The caller's view of a remote result: a returned error stays a guest error (with its
/// value); other failures keep their kind.
fn remote_outcome(
    function: &FunctionRef,
    result: Result<Vec<u8>, WireError>,
) -> Result<Outcome, NodeError> {
    match result {
        Ok(bytes) => Ok(Outcome {
            function: function.clone(),
            value: value::decode(&bytes).map_err(|e| NodeError::Mesh {
                kind: ErrorKind::Internal,
                message: format!("the remote result is not CBOR: {e}"),
            })?,
            memo: crate::MemoUse::Skipped,
            stats: None,
            effectful: true,
        }),
        Err(error) if error.kind == ErrorKind::GuestError => {
            Err(NodeError::Invoke(InvokeError::Guest {
                function: function.clone(),
                error: error
                    .value
                    .as_deref()
                    .and_then(|v| value::decode(v).ok())
                    .unwrap_or(Value::Text(error.message)),
            }))
        }
        Err(error) => Err(NodeError::Mesh {
            kind: error.kind,
            message: error.message,
        }),
    }
}

/// How long a forwarded call may run on the mesh's own thread ([`MeshHost::invoke_now`]);
/// the runtime's deadlines are rounded up to its epoch tick, so it may run one tick
/// (5 ms) longer. Plenty for a short function, and the mesh is never held up for long.
const INLINE_BUDGET: Duration = Duration::from_millis(5);

fn remote_span(request: &InvokeRequest, from: PeerId) -> tracing::Span {
    tracing::info_span!(
        "remote invoke",
        function = %request.function,
        trace = %request.trace,
        %from
    )
}

/// The node as the mesh sees it.
pub struct NodeHost {
    node: Weak<Node>,
    /// Modules one of whose functions once overran [`INLINE_BUDGET`]: their calls go
    /// to the blocking pool from then on.
    overran: Mutex<HashSet<Hash>>,
}

impl NodeHost {
    pub fn new(node: &Arc<Node>) -> NodeHost {
        NodeHost {
            node: Arc::downgrade(node),
            overran: Mutex::new(HashSet::new()),
        }
    }

    fn overran(&self) -> MutexGuard<'_, HashSet<Hash>> {
        self.overran.lock().unwrap_or_else(|e| e.into_inner())
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

    fn invoke(&self, request: InvokeRequest, from: PeerId) -> InvokeResponse {
        let _span = remote_span(&request, from).entered();
        match self.node.upgrade() {
            // The caller's remaining deadline: the callee never runs longer.
            Some(node) => node.serve_remote(&request, Duration::from_millis(request.deadline_ms)),
            None => InvokeResponse {
                result: Err(WireError::new(
                    ErrorKind::Unavailable,
                    "the node is shutting down",
                )),
                path: Vec::new(),
            },
        }
    }

    /// Runs a forwarded call right here when it is a function that can do nothing but
    /// compute and is loaded: it cannot block on a provider or the compiler, and should
    /// it overrun [`INLINE_BUDGET`], running it again on the blocking pool is harmless.
    /// (Its Wasm stack, 512 KiB at most, fits the daemon's worker threads.)
    fn invoke_now(
        &self,
        request: InvokeRequest,
        from: PeerId,
    ) -> Result<InvokeResponse, InvokeRequest> {
        let Some(node) = self.node.upgrade() else {
            return Err(request);
        };
        let Ok(function) = request.function.parse::<FunctionRef>() else {
            return Err(request);
        };
        let pure_and_loaded = node
            .runtime
            .loaded_manifest(&function.module)
            .is_some_and(|manifest| manifest.imports.is_empty());
        if !pure_and_loaded || self.overran().contains(&function.module) {
            return Err(request);
        }
        let _span = remote_span(&request, from).entered();
        let requested = Duration::from_millis(request.deadline_ms);
        let budget = INLINE_BUDGET.min(requested);
        let response = node.serve_remote(&request, budget);
        let overran = response
            .result
            .as_ref()
            .is_err_and(|error| error.kind == ErrorKind::Timeout);
        if overran && budget < requested {
            tracing::debug!(
                "overran the inline budget of {INLINE_BUDGET:?}; \
                 it runs on the blocking pool from now on"
            );
            self.overran().insert(function.module);
            return Err(request);
        }
        Ok(response)
    }
}
