//! `Node::call`: one [`CallRequest`] in, its outcome and its path out, by value.
//!
//! The request arrives built (by the CLI, the HTTP API, the `call` ability, a handler or
//! a peer); placement (`placement.rs`) decides where it runs, and a call that runs here
//! is answered from the memo when the function can reach no ability, or run.

use std::time::Instant;

use ciborium::Value;
use spore_core::{CallRequest, CallStats, Cancel, FunctionRef, MemoUse, Path, PathStep, Tier};
use spore_runtime::{CallEnv, InvokeError};

use crate::{Node, NodeError, memo};

/// When traces are exported, joins a call's `span` to its trace: a call from a peer
/// (`parent` set) continues the trace it came with, and any other call takes the trace of
/// the span it runs under (its own, for a call made from outside), recorded in `trace`
/// and on the span: one id in the log, in the path and in the exporter.
fn join_exported_trace(
    span: &tracing::Span,
    trace: &mut spore_core::TraceId,
    parent: Option<spore_core::SpanId>,
) {
    let Some(bridge) = crate::trace_bridge::get() else {
        return;
    };
    match parent {
        Some(parent) => bridge.adopt(span, *trace, parent),
        None => {
            if let Some(exported) = bridge.trace_of(span) {
                *trace = exported;
                span.record("trace", tracing::field::display(exported));
            }
        }
    }
}

/// A finished call, run or answered from the memo, here or on a peer.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The function that ran, its export resolved.
    pub function: FunctionRef,
    pub value: Value,
    pub memo: MemoUse,
    /// Where the time went, when the function ran (`None` for a memo hit).
    pub stats: Option<CallStats>,
    /// Whether the call could have had effects (then it was not memoized).
    pub effectful: bool,
}

/// What a call gives back: its outcome, and the path it took whether it succeeded or not.
#[derive(Debug)]
pub struct Called {
    pub result: Result<Outcome, NodeError>,
    pub path: Path,
}

impl Node {
    /// Runs `request` where placement says, with this node's bindings.
    pub fn call(&self, request: CallRequest) -> Called {
        self.call_cancellable(request, Cancel::never())
    }

    /// Calls `function` (a name or a reference, resolved now, so that moving a name
    /// moves what runs) with `args`, within `timeout`, never from the memo: how the node
    /// runs what it calls on its own (schedules, subscriptions).
    pub fn call_on_own(
        &self,
        function: &str,
        args: &[Value],
        timeout: std::time::Duration,
        cancel: Cancel,
    ) -> Result<Outcome, NodeError> {
        let function = self.function_ref(function)?;
        let args = spore_core::Args::encode(args).map_err(|e| {
            NodeError::placement(
                spore_core::ErrorKind::BadRequest,
                format!("the arguments: {e}"),
            )
        })?;
        let request = CallRequest {
            deadline: Instant::now() + timeout,
            memo: false,
            ..self.request(function, args)
        };
        self.call_cancellable(request, cancel).result
    }

    /// [`Node::call`], stopped when `cancel` is set: an edge that can tell when its
    /// caller is gone (a closed connection) passes its flag here.
    pub fn call_cancellable(&self, request: CallRequest, cancel: Cancel) -> Called {
        let env = CallEnv {
            bindings: self.bindings.clone(),
            depth: 0,
            cancel,
            log_budget: None,
        };
        self.call_in(request, &env)
    }

    /// `request` answered from memory, or `None`: call it. Answered when the call may be
    /// memoized and is not pinned to a peer, its module is loaded here and the function
    /// can reach no ability but `call` (so it is pure, and runs here), and its result is
    /// remembered in memory. Nothing blocks: an async task (the HTTP gateway) asks this
    /// before it hands a call to a blocking thread, a hop that cost about as much as the
    /// rest of a routed request (`docs/performance.md`).
    pub fn answer_from_memory(&self, request: &CallRequest) -> Option<Outcome> {
        if !(request.memo && self.config.memo)
            || matches!(request.placement, spore_core::Placement::On(_))
            || request.memory_bytes > self.config.max_memory_bytes
        {
            return None;
        }
        let manifest = self.runtime.loaded_manifest(&request.function.module)?;
        let export = manifest
            .resolve_export(request.function.export.as_ref())
            .ok()?;
        let function = FunctionRef::new(request.function.module, export);
        if !self
            .reach(&manifest, &function)
            .iter()
            .all(|a| *a == "call")
        {
            return None;
        }
        let started = Instant::now();
        let entry = self
            .codebase
            .memo_get_hot(&memo::key_for(&function, request))?;
        // A remembered error is left to `call`, which reports it as errors are reported.
        let Some(Ok(value)) = memo::decode(&entry) else {
            return None;
        };
        let span = tracing::info_span!("call", %function, trace = %request.trace, memo = "hit");
        // Only the span is joined: an answer from memory goes on to no hop that would
        // carry the trace.
        join_exported_trace(&span, &mut request.trace.clone(), request.parent_span);
        let _entered = span.enter();
        self.metrics.call(&function, started.elapsed(), None, true);
        Some(Outcome {
            function,
            value,
            memo: MemoUse::Hit,
            stats: None,
            effectful: false,
        })
    }

    /// Runs `request` in `env` (a `call`'s or a handler's): the path is collected here.
    pub(crate) fn call_in(&self, mut request: CallRequest, env: &CallEnv) -> Called {
        let span = tracing::info_span!(
            "call",
            function = %request.function,
            trace = %request.trace,
            depth = env.depth,
            hops = request.hops
        );
        join_exported_trace(&span, &mut request.trace, request.parent_span);
        let _entered = span.enter();
        let mut path = Path::new();
        let result = self.place(request, env, &mut path);
        if let Err(error) = &result {
            tracing::debug!(kind = %error.kind(), "call failed: {error}");
        }
        Called { result, path }
    }

    /// Runs `request` (its export resolved) on this node: from the memo when the function
    /// is pure (`reach`: the abilities it can reach) and its result is memoized, else in
    /// the runtime.
    pub(crate) fn run_here(
        &self,
        request: &CallRequest,
        reach: &[&str],
        env: &CallEnv,
        path: &mut Path,
    ) -> Result<Outcome, NodeError> {
        let started = Instant::now();
        // Every instance slot is `limits.max_memory` large: no call here may have more.
        if request.memory_bytes > self.config.max_memory_bytes {
            return Err(NodeError::MemoryOverMax {
                function: request.function.to_string(),
                requested: request.memory_bytes,
                max: self.config.max_memory_bytes,
                config: self.config.file.display().to_string(),
            });
        }
        let running = self.metrics.running();
        let outcome = self.run_or_remember(request, reach, env, path);
        drop(running);
        let function = &request.function;
        self.metrics.call(
            function,
            started.elapsed(),
            outcome.as_ref().err().map(NodeError::kind),
            matches!(&outcome, Ok(Outcome { stats: None, .. })),
        );
        if let Ok(Outcome {
            stats: Some(stats), ..
        }) = &outcome
        {
            self.metrics.ran_on(stats.tier);
        }
        let what = match &outcome {
            Ok(Outcome {
                stats: Some(stats),
                function,
                ..
            }) => format!(
                "ran {function} ({:?} load {} us, instantiate {} us, run {} us{})",
                stats.load_source,
                stats.load_time.as_micros(),
                stats.instantiate_time.as_micros(),
                stats.run_time.as_micros(),
                match stats.tier {
                    Tier::Baseline => ", on Winch's code while Cranelift compiles",
                    Tier::Optimized => "",
                }
            ),
            Ok(Outcome { function, .. }) => format!("answered {function} from the memo"),
            Err(error) => format!("ran {function}: failed ({error})"),
        };
        path.push(self.step(started, what));
        outcome
    }

    fn run_or_remember(
        &self,
        request: &CallRequest,
        reach: &[&str],
        env: &CallEnv,
        path: &mut Path,
    ) -> Result<Outcome, NodeError> {
        let function = &request.function;
        // Only a function that can reach nothing but `call` may be memoized; whether a
        // given run was pure is known only after it (`Invocation::effectful`).
        let memo_key = (request.memo && self.config.memo && reach.iter().all(|a| *a == "call"))
            .then(|| memo::key(request));
        if let Some(key) = &memo_key
            && let Some(entry) = self.codebase.memo_get(key)?
            && let Some(remembered) = memo::decode(&entry)
        {
            tracing::debug!(%function, "memo hit");
            let function = function.clone();
            return match remembered {
                Ok(value) => Ok(Outcome {
                    function,
                    value,
                    memo: MemoUse::Hit,
                    stats: None,
                    effectful: false,
                }),
                Err(error) => Err(NodeError::Invoke(InvokeError::Guest { function, error })),
            };
        }
        let result = self.runtime.invoke(request, env);
        let remember = |outcome: Result<&Value, &Value>| -> Result<MemoUse, NodeError> {
            let Some(key) = &memo_key else {
                return Ok(MemoUse::Skipped);
            };
            match memo::encode(&outcome) {
                Some(entry) if entry.len() as u64 <= self.config.memo_max_result_bytes => {
                    self.codebase.memo_put(key, &function.module, &entry)?;
                    Ok(MemoUse::Stored)
                }
                _ => Ok(MemoUse::Skipped),
            }
        };
        match result {
            Ok(invocation) => {
                path.extend(invocation.nested);
                let memo = if invocation.effectful {
                    MemoUse::Skipped
                } else {
                    remember(Ok(&invocation.value))?
                };
                Ok(Outcome {
                    function: invocation.function,
                    value: invocation.value,
                    memo,
                    stats: Some(invocation.stats),
                    effectful: invocation.effectful,
                })
            }
            // A returned error is as deterministic as a result, but only a function that
            // can reach no ability at all is known to have been pure when it fails.
            Err(InvokeError::Guest { function, error }) => {
                if reach.is_empty() {
                    remember(Err(&error))?;
                }
                Err(NodeError::Invoke(InvokeError::Guest { function, error }))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// A step of a call's path taken by this node, begun at `started`.
    pub(crate) fn step(&self, started: Instant, step: String) -> PathStep {
        PathStep {
            node: self.me(),
            step,
            micros: started.elapsed().as_micros() as u64,
        }
    }
}
