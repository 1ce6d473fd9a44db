//! One call: a fresh instance, the arguments in, the result out, every limit enforced.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_core::abi::{self, Status};
use spore_core::{CallRequest, CallStats, Cancel, FunctionRef, Path, value};
use wasmtime::{
    Extern, Memory, ResourceLimiter, Store, Trap, TypedFunc, UpdateDeadline, WasmBacktrace,
};

use crate::ability::{AbilityContext, Bindings, Provider};
use crate::compile::Wait;
use crate::error::TrapDetail;
use crate::{InvokeError, LoadError, LoadedModule, Runtime};

/// Where a call runs: the abilities bound for it, how deep in `call`s it is, and the
/// flag that stops it when its caller is gone.
#[derive(Debug, Clone, Default)]
pub struct CallEnv {
    pub bindings: Arc<Bindings>,
    pub depth: u32,
    pub cancel: Cancel,
    /// What the calls made for the same party (a peer) may still log, together.
    pub log_budget: Option<Arc<crate::LogBudget>>,
}

/// A finished call: the value the function returned and what it cost.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The function that ran, with its export resolved.
    pub function: FunctionRef,
    pub value: Value,
    pub stats: CallStats,
    /// Whether the call used an ability whose result is not a function of its inputs
    /// (anything but `call`s of pure functions). Only calls that were not may be memoized.
    pub effectful: bool,
    /// The paths of the calls it made through `call`, in order.
    pub nested: Path,
}

/// What the host keeps for one call's store.
pub(crate) struct CallState {
    limiter: MemoryCap,
    /// The providers for the module's abilities, in the order of `Manifest::abilities`.
    pub(crate) providers: Vec<Arc<dyn Provider>>,
    pub(crate) context: Arc<AbilityContext>,
    /// Set once the instance exists, for ability imports to reach guest memory.
    pub(crate) memory: Option<Memory>,
    pub(crate) alloc: Option<TypedFunc<i32, i32>>,
}

static INVOCATIONS: AtomicU64 = AtomicU64::new(1);

/// Enforces the call's memory limit: growing past it ends the call (`spec/abi.md`,
/// "Limits"), rather than making `memory.grow` fail, so that no result can depend on the
/// cap a call ran under. The refused size is kept for the report.
struct MemoryCap {
    limit: usize,
    refused: Option<usize>,
}

/// Rust modules need one table; anything past this is a runaway `table.grow`.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.refused = Some(desired);
            wasmtime::bail!("memory growth to {desired} bytes is over the call's cap");
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

impl Runtime {
    /// Runs `request` in a fresh instance, with the abilities `env` binds, until its
    /// deadline or until `env.cancel` is set. A function needing an ability `env` does
    /// not bind is refused before it is instantiated.
    #[tracing::instrument(skip_all, fields(function = %request.function, trace = %request.trace, depth = env.depth, tier = tracing::field::Empty))]
    pub fn invoke(&self, request: &CallRequest, env: &CallEnv) -> Result<Invocation, InvokeError> {
        // The slots of the instance pool are this large: a call may not ask for more.
        if request.memory_bytes > self.config.max_memory_bytes {
            return Err(InvokeError::MemoryOverMax {
                function: request.function.clone(),
                requested_bytes: request.memory_bytes,
                max_bytes: self.config.max_memory_bytes,
            });
        }
        // Compiling counts against the call's deadline: the caller stops waiting for it
        // at its deadline (the compile goes on, for the calls after it).
        let wait = Wait {
            deadline: Some(request.deadline),
            cancel: Some(&env.cancel),
        };
        let (loaded, load_source, load_time) = match self.load(&request.function.module, wait) {
            Ok(loaded) => loaded,
            Err(LoadError::Timeout { waited, .. }) => {
                return Err(InvokeError::Timeout {
                    function: request.function.clone(),
                    ran: waited,
                });
            }
            Err(LoadError::Cancelled { .. }) => {
                return Err(InvokeError::Cancelled {
                    function: request.function.clone(),
                });
            }
            Err(other) => return Err(other.into()),
        };
        tracing::Span::current().record("tier", tracing::field::debug(loaded.tier));
        let export = loaded
            .manifest
            .resolve_export(request.function.export.as_ref())?;
        let function = FunctionRef::new(request.function.module, export);
        // Loading may have used up the deadline; a call that can no longer finish in
        // time does not start.
        if request.remaining().is_zero() {
            return Err(InvokeError::Timeout {
                function,
                ran: load_time,
            });
        }
        // Deny by default, per function: every ability the function can reach must be
        // bound. An import only its neighbours reach is linked to a provider that refuses,
        // which the function's code cannot call (`spec/manifest.md`, "Reach").
        let reach = loaded
            .manifest
            .reach(function.export.as_ref().expect("resolved"));
        let mut providers = Vec::new();
        let mut missing = Vec::new();
        for ability in loaded.manifest.abilities() {
            match env.bindings.get(ability) {
                Some(provider) => providers.push(provider.clone()),
                None if !reach.iter().any(|reached| reached == ability) => {
                    providers.push(Arc::new(crate::ability::Unbound))
                }
                None => missing.push(ability.to_owned()),
            }
        }
        if !missing.is_empty() {
            return Err(InvokeError::UnboundAbilities {
                function,
                missing,
                origin: env.bindings.origin().to_owned(),
            });
        }
        let context = Arc::new(AbilityContext::for_call(
            function.clone(),
            INVOCATIONS.fetch_add(1, Ordering::Relaxed),
            request,
            env,
        ));
        let mut call = Call {
            runtime: self,
            loaded: &loaded,
            function,
            request,
            cancel: env.cancel.clone(),
            started: Instant::now(),
        };
        let (value, instantiate_time, run_time, memory_bytes) =
            call.run(request.args.as_bytes(), providers, context.clone())?;
        Ok(Invocation {
            function: call.function,
            value,
            effectful: context.is_effectful(),
            nested: context.take_nested(),
            stats: CallStats {
                load_source,
                load_time,
                instantiate_time,
                run_time,
                memory_bytes,
                tier: loaded.tier,
            },
        })
    }
}

struct Call<'a> {
    runtime: &'a Runtime,
    loaded: &'a LoadedModule,
    function: FunctionRef,
    request: &'a CallRequest,
    cancel: Cancel,
    /// When the instance started being made: what a timeout reports having run for.
    started: Instant,
}

impl Call<'_> {
    fn run(
        &mut self,
        args: &[u8],
        providers: Vec<Arc<dyn Provider>>,
        context: Arc<AbilityContext>,
    ) -> Result<(Value, Duration, Duration, u64), InvokeError> {
        let started = Instant::now();
        let mut store = Store::new(
            self.loaded.pre.module().engine(),
            CallState {
                limiter: MemoryCap {
                    limit: usize::try_from(self.request.memory_bytes).unwrap_or(usize::MAX),
                    refused: None,
                },
                providers,
                context,
                memory: None,
                alloc: None,
            },
        );
        store.limiter(|state| &mut state.limiter);
        self.watch_deadline(&mut store);

        let instance = self
            .loaded
            .pre
            .instantiate(&mut store)
            .map_err(|e| self.classify(&mut store, None, e))?;
        let memory = match instance.get_module_export(&mut store, &self.loaded.memory) {
            Some(Extern::Memory(memory)) => memory,
            _ => return Err(self.abi("`memory` is not a memory")),
        };
        let alloc: TypedFunc<i32, i32> = self.typed(&mut store, &instance, &self.loaded.alloc)?;
        let entry = self
            .loaded
            .functions
            .get(self.function.export.as_ref().expect("resolved"));
        let entry: TypedFunc<(i32, i32), i64> =
            self.typed(&mut store, &instance, entry.expect("manifest lists it"))?;
        store.data_mut().memory = Some(memory);
        store.data_mut().alloc = Some(alloc.clone());
        let instantiate_time = started.elapsed();

        let run_started = Instant::now();
        let len = i32::try_from(args.len()).map_err(|_| self.abi("arguments over 2 GiB"))?;
        let ptr = alloc
            .call(&mut store, len)
            .map_err(|e| self.classify(&mut store, Some(&instance), e))?;
        memory
            .write(&mut store, ptr as u32 as usize, args)
            .map_err(|_| self.abi("`spore_alloc` returned a buffer outside memory"))?;
        let packed = entry
            .call(&mut store, (ptr, len))
            .map_err(|e| self.classify(&mut store, Some(&instance), e))?;
        let output = read_buffer(&memory, &store, packed)
            .ok_or_else(|| self.abi("the result buffer lies outside memory"))?;
        let run_time = run_started.elapsed();
        let memory_bytes = memory.data_size(&store) as u64;
        let value = self.decode_output(output)?;
        Ok((value, instantiate_time, run_time, memory_bytes))
    }

    /// Looks at the clock and the cancel flag at every epoch tick. Counting ticks instead
    /// would stretch the deadline whenever the ticker thread runs late (measured: a 5 s
    /// deadline took 7.2 s with both cores busy); reading the clock keeps the overrun to
    /// one tick after the deadline, however late the ticks come.
    fn watch_deadline(&self, store: &mut Store<CallState>) {
        let deadline = self.request.deadline;
        let cancel = self.cancel.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if cancel.is_cancelled() || Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
    }

    fn typed<P, R>(
        &self,
        store: &mut Store<CallState>,
        instance: &wasmtime::Instance,
        export: &wasmtime::ModuleExport,
    ) -> Result<TypedFunc<P, R>, InvokeError>
    where
        P: wasmtime::WasmParams,
        R: wasmtime::WasmResults,
    {
        match instance.get_module_export(&mut *store, export) {
            Some(Extern::Func(func)) => func
                .typed(&*store)
                .map_err(|e| self.abi(&format!("an export has the wrong type: {e}"))),
            _ => Err(self.abi("an export is not a function")),
        }
    }

    fn decode_output(&self, output: &[u8]) -> Result<Value, InvokeError> {
        let (status, payload) = abi::split_output(output).map_err(|e| self.abi(&e.to_string()))?;
        let value = value::decode(payload)
            .map_err(|e| self.abi(&format!("the result is not a spore value: {e}")))?;
        let function = self.function.clone();
        match status {
            Status::Ok => Ok(value),
            Status::Err => Err(InvokeError::Guest {
                function,
                error: value,
            }),
            Status::BadArguments => Err(InvokeError::BadArguments {
                function,
                message: match value {
                    Value::Text(text) => {
                        spore_core::text::printable(&text, spore_core::text::MAX_MESSAGE_BYTES)
                            .into_owned()
                    }
                    other => value::to_json(&other).to_string(),
                },
            }),
        }
    }

    /// Turns a wasmtime error into the typed error that says what really happened.
    fn classify(
        &self,
        store: &mut Store<CallState>,
        instance: Option<&wasmtime::Instance>,
        error: wasmtime::Error,
    ) -> InvokeError {
        let function = self.function.clone();
        if let Some(requested) = store.data().limiter.refused {
            return InvokeError::MemoryLimit {
                function,
                limit_bytes: self.request.memory_bytes,
                requested_bytes: requested as u64,
            };
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) if self.cancel.is_cancelled() => {
                InvokeError::Cancelled { function }
            }
            Some(Trap::Interrupt) => InvokeError::Timeout {
                function,
                ran: self.started.elapsed(),
            },
            Some(Trap::StackOverflow) => InvokeError::StackOverflow {
                function,
                limit_bytes: self.runtime.config.max_stack_bytes,
            },
            Some(trap) => InvokeError::Trap {
                function,
                reason: trap.to_string(),
                detail: Box::new(TrapDetail {
                    panic: instance.and_then(|instance| self.panic_message(store, instance)),
                    backtrace: error.downcast_ref::<WasmBacktrace>().map(format_backtrace),
                }),
            },
            None if instance.is_none() => InvokeError::Instantiate {
                function,
                message: format!("{error:#}"),
            },
            None => InvokeError::Trap {
                function,
                reason: format!("{error:#}"),
                detail: Box::default(),
            },
        }
    }

    /// Asks the trapped instance for the panic message the guest SDK recorded.
    fn panic_message(
        &self,
        store: &mut Store<CallState>,
        instance: &wasmtime::Instance,
    ) -> Option<String> {
        let export = self.loaded.panic_message.as_ref()?;
        let func: TypedFunc<(), i64> = self.typed(store, instance, export).ok()?;
        // Within the call's own deadline: asking a trapped guest for its message must not
        // buy it more time (the epoch callback set in `run` still applies).
        if self.request.remaining().is_zero() {
            return None;
        }
        let packed = func.call(&mut *store, ()).ok()?;
        if packed == 0 {
            return None;
        }
        let memory = match instance.get_module_export(&mut *store, &self.loaded.memory) {
            Some(Extern::Memory(memory)) => memory,
            _ => return None,
        };
        let bytes = read_buffer(&memory, store, packed)?;
        let message = String::from_utf8_lossy(bytes);
        Some(
            spore_core::text::printable(&message, spore_core::text::MAX_MESSAGE_BYTES).into_owned(),
        )
    }

    fn abi(&self, reason: &str) -> InvokeError {
        InvokeError::AbiViolation {
            function: self.function.clone(),
            reason: reason.to_owned(),
        }
    }
}

fn read_buffer<'m>(memory: &Memory, store: &'m Store<CallState>, packed: i64) -> Option<&'m [u8]> {
    let (ptr, len) = abi::unpack(packed);
    let start = ptr as usize;
    memory
        .data(store)
        .get(start..start.checked_add(len as usize)?)
}

fn format_backtrace(backtrace: &WasmBacktrace) -> String {
    backtrace
        .frames()
        .iter()
        .take(12)
        .map(|frame| {
            let name = frame.func_name().unwrap_or("<unnamed>");
            format!("    {name}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}
