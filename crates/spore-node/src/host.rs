//! The node as the mesh sees it: the modules it holds, and calls peers forward to it,
//! run within this node's own limits for forwarded calls, whatever the caller asked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use spore_core::{CallRequest, Cancel, ErrorKind, Failure, Hash};
use spore_mesh::{InvokeNow, InvokeResponse, MeshHost, PeerId};

use crate::placement::returned;
use crate::{Called, Node};

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

    /// Runs a call a peer forwarded, within this node's limits; stopped when `cancel` is
    /// set (the peer stopped waiting).
    fn serve(&self, request: CallRequest, cancel: Cancel) -> InvokeResponse {
        match self.admit(request) {
            Ok(request) => answer(self.call_cancellable(request, cancel)),
            Err(refusal) => InvokeResponse {
                result: Err(refusal),
                path: Default::default(),
            },
        }
    }
}

/// A finished call as the peer that forwarded it receives it.
fn answer(called: Called) -> InvokeResponse {
    InvokeResponse {
        result: match &called.result {
            Ok(outcome) => returned(outcome),
            Err(error) => Err(error.to_failure()),
        },
        path: called.path,
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

    fn invoke(&self, request: CallRequest, from: PeerId, cancel: Cancel) -> InvokeResponse {
        let _span = remote_span(&request, from).entered();
        match self.node.upgrade() {
            Some(node) => node.serve(request, cancel),
            None => InvokeResponse::error(ErrorKind::Unavailable, "the node is shutting down"),
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
        let budget = Instant::now() + INLINE_BUDGET;
        if request.deadline <= budget {
            return InvokeNow::Answered(node.serve(request, Cancel::never()));
        }
        let inline = CallRequest {
            deadline: budget,
            ..request.clone()
        };
        let response = node.serve(inline, Cancel::never());
        let overran = response
            .result
            .as_ref()
            .is_err_and(|failure| failure.kind == ErrorKind::Timeout);
        if overran {
            tracing::debug!("overran the inline budget of {INLINE_BUDGET:?}; rerun on the pool");
            self.overruns
                .record(request.function.module, Instant::now());
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
