//! Compiles in flight: one per module and tier, each on a thread of its own, so that a
//! caller waits for it only until its deadline (or not at all, for a Cranelift compile
//! in the background), and callers of the same module share it.
//!
//! A compile outlives the callers that gave up on it (within its own time limit): the
//! artifact it stores serves the next call. One Cranelift compile runs at a time, since
//! each uses every core and up to the memory limit. Winch compiles do not wait for it:
//! they are what keeps a first call quick, and they are short and linear in the
//! module's size. A module a compiler refused, or that went over a compile limit, is
//! remembered for the life of the process and not compiled again by that compiler: the
//! same bytes under the same settings give the same answer.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use spore_core::{Cancel, Hash, Tier};
use spore_store::Codebase;
use wasmtime::Module;

use crate::child::{self, ChildFailure, CodeSettings};
use crate::engine::Built;
use crate::{CompileLimit, CompileLimits, Compiler, LoadError};

/// How often a caller waiting for a compile looks at its cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(20);

#[derive(Default)]
pub(crate) struct Compiles {
    jobs: Mutex<HashMap<(Hash, Tier), Arc<Job>>>,
    refused: Mutex<HashMap<(Hash, Tier), Refusal>>,
    /// Held by the Cranelift compile that is running.
    turn: Mutex<()>,
}

/// Why this process will not compile a module again.
#[derive(Debug, Clone)]
enum Refusal {
    Rejected(String),
    Limit(CompileLimit),
}

#[derive(Debug, Clone)]
enum Failure {
    Refused(Refusal),
    /// Not the module's fault (the compiler could not run); the next load tries again.
    Failed(String),
}

/// One compile, shared by everyone who needs its module.
#[derive(Default)]
pub(crate) struct Job {
    outcome: Mutex<Option<Result<Module, Failure>>>,
    done: Condvar,
}

/// Everything a compile needs, owned, for its thread.
pub(crate) struct Request {
    /// The engine the module is compiled for, and so the tier.
    pub built: Built,
    pub codebase: Codebase,
    /// Where the compiler runs.
    pub compiler: Compiler,
    pub limits: CompileLimits,
    pub settings: CodeSettings,
}

/// How long a caller may wait.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Wait<'a> {
    pub deadline: Option<Instant>,
    pub cancel: Option<&'a Cancel>,
}

impl Compiles {
    /// The module compiled from `bytes` for `tier`: from the compile in flight for
    /// `hash`, or from one started now. Returns when it is done, or when `wait` says to
    /// stop waiting.
    pub(crate) fn compile(
        self: &Arc<Self>,
        hash: Hash,
        tier: Tier,
        bytes: &[u8],
        request: impl FnOnce() -> Result<Request, LoadError>,
        wait: Wait<'_>,
    ) -> Result<Module, LoadError> {
        let started = Instant::now();
        let job = self.start(hash, tier, bytes, request)?;
        match job.wait(wait) {
            Some(outcome) => outcome.map_err(|failure| failure.to_error(hash)),
            None if wait.cancel.is_some_and(Cancel::is_cancelled) => {
                Err(LoadError::Cancelled { module: hash })
            }
            None => Err(LoadError::Timeout {
                module: hash,
                waited: started.elapsed(),
            }),
        }
    }

    /// The compile of `hash` for `tier` in flight, or one started now, without waiting
    /// for it. Fails at once if that compiler refused the module before.
    pub(crate) fn start(
        self: &Arc<Self>,
        hash: Hash,
        tier: Tier,
        bytes: &[u8],
        request: impl FnOnce() -> Result<Request, LoadError>,
    ) -> Result<Arc<Job>, LoadError> {
        if let Some(refusal) = lock(&self.refused).get(&(hash, tier)) {
            return Err(refusal.to_error(hash));
        }
        let mut jobs = lock(&self.jobs);
        if let Some(job) = jobs.get(&(hash, tier)) {
            return Ok(job.clone());
        }
        let request = request()?;
        debug_assert_eq!(request.built.tier, tier);
        let job = Arc::new(Job::default());
        let (compiles, runner, bytes) = (self.clone(), job.clone(), bytes.to_vec());
        // The thread removes the job when done, which waits for this lock: the job is in
        // the map by then.
        std::thread::Builder::new()
            .name("spore-compile".into())
            .spawn(move || compiles.run(hash, &bytes, request, &runner))
            .map_err(|e| LoadError::Compiler {
                module: hash,
                message: format!("cannot start a compile thread: {e}"),
            })?;
        jobs.insert((hash, tier), job.clone());
        Ok(job)
    }

    /// The compile thread: compiles, checks the artifact against the running engine,
    /// tells every waiter, and stores the artifact. The job leaves the map only once the
    /// artifact is stored, so that whoever finds neither has to compile again.
    fn run(&self, hash: Hash, bytes: &[u8], request: Request, job: &Job) {
        let tier = request.built.tier;
        let outcome = match tier {
            Tier::Optimized => {
                let _turn = lock(&self.turn);
                compile_module(hash, bytes, &request)
            }
            Tier::Baseline => compile_module(hash, bytes, &request),
        };
        if let Err(Failure::Refused(refusal)) = &outcome {
            tracing::info!(module = %hash, ?tier, reason = %refusal.to_error(hash), "module refused");
            lock(&self.refused).insert((hash, tier), refusal.clone());
        }
        let module = outcome.as_ref().ok().cloned();
        *lock(&job.outcome) = Some(outcome);
        job.done.notify_all();
        // After the waiters: storing (two fsyncs) took 16 ms of a 125 ms first call on
        // Winch's code, measured on this busy 2-core VM.
        if let Some(module) = module {
            store(hash, &module, &request);
        }
        lock(&self.jobs).remove(&(hash, tier));
    }

    /// Returns once no compile of `hash` is running or storing its artifact. Polled: it
    /// serves publishing, which waits for a whole compile anyway.
    pub(crate) fn wait_stored(&self, hash: &Hash) {
        while lock(&self.jobs).keys().any(|(job, _)| job == hash) {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// How many compiles are running or storing their artifact.
    pub(crate) fn in_flight(&self) -> usize {
        lock(&self.jobs).len()
    }
}

#[tracing::instrument(skip_all, fields(module = %hash.short(12), bytes = bytes.len(), tier = ?request.built.tier))]
fn compile_module(hash: Hash, bytes: &[u8], request: &Request) -> Result<Module, Failure> {
    let started = Instant::now();
    let engine = &request.built.engine;
    let module = match &request.compiler {
        Compiler::InProcess => Module::new(engine, bytes)
            .map_err(|e| Failure::Refused(Refusal::Rejected(format!("{e:#}"))))?,
        Compiler::Program { program, args } => {
            let artifact = child::compile(program, args, request.settings, bytes, request.limits)
                .map_err(|failure| match failure {
                ChildFailure::Refused(message) => Failure::Refused(Refusal::Rejected(message)),
                ChildFailure::OverTime => {
                    Failure::Refused(Refusal::Limit(CompileLimit::Time(request.limits.time)))
                }
                ChildFailure::OverMemory => Failure::Refused(Refusal::Limit(CompileLimit::Memory(
                    request.limits.memory_bytes,
                ))),
                ChildFailure::Failed(message) => Failure::Failed(message),
            })?;
            // SAFETY: the artifact was made just now by this node's own compiler, from
            // these bytes, under these settings. Deserializing also checks the module
            // against the engine's instance pool (memory and table sizes).
            unsafe { Module::deserialize(engine, &artifact) }
                .map_err(|e| Failure::Refused(Refusal::Rejected(format!("{e:#}"))))?
        }
    };
    tracing::info!(elapsed = ?started.elapsed(), "compiled");
    Ok(module)
}

/// Stores `module`'s artifact in the codebase, for the next process.
fn store(hash: Hash, module: &Module, request: &Request) {
    let fingerprint = &request.built.fingerprint;
    match module.serialize() {
        Ok(artifact) => {
            let stored = match request.built.tier {
                Tier::Optimized => request.codebase.put_artifact(&hash, fingerprint, &artifact),
                Tier::Baseline => {
                    request
                        .codebase
                        .put_interim_artifact(&hash, fingerprint, &artifact)
                }
            };
            if let Err(error) = stored {
                // The module still runs; only the next process compiles it again.
                tracing::warn!(module = %hash.short(12), %error, "could not store the compiled module");
            }
        }
        Err(error) => {
            tracing::warn!(module = %hash.short(12), %error, "could not serialize the compiled module")
        }
    }
}

impl Job {
    /// The compiled module once the compile is done, else `None`; the error says why
    /// it gave none.
    pub(crate) fn outcome(&self, hash: Hash) -> Option<Result<Module, LoadError>> {
        let outcome = lock(&self.outcome);
        let outcome = outcome.as_ref()?;
        Some(outcome.clone().map_err(|failure| failure.to_error(hash)))
    }

    fn wait(&self, wait: Wait<'_>) -> Option<Result<Module, Failure>> {
        let mut outcome = lock(&self.outcome);
        loop {
            if let Some(outcome) = &*outcome {
                return Some(outcome.clone());
            }
            if wait.cancel.is_some_and(Cancel::is_cancelled) {
                return None;
            }
            let now = Instant::now();
            let mut slice = match wait.deadline {
                Some(deadline) if now >= deadline => return None,
                Some(deadline) => deadline - now,
                None => Duration::MAX,
            };
            if wait.cancel.is_some() {
                slice = slice.min(CANCEL_POLL);
            }
            outcome = if slice == Duration::MAX {
                self.done.wait(outcome).unwrap_or_else(|e| e.into_inner())
            } else {
                self.done
                    .wait_timeout(outcome, slice)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            };
        }
    }
}

impl Failure {
    fn to_error(&self, module: Hash) -> LoadError {
        match self {
            Failure::Refused(refusal) => refusal.to_error(module),
            Failure::Failed(message) => LoadError::Compiler {
                module,
                message: message.clone(),
            },
        }
    }
}

impl Refusal {
    fn to_error(&self, module: Hash) -> LoadError {
        match self {
            Refusal::Rejected(message) => LoadError::Compile {
                module,
                message: message.clone(),
            },
            Refusal::Limit(limit) => LoadError::CompileLimit {
                module,
                limit: *limit,
            },
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
