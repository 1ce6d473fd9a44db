//! One call: a fresh instance, the arguments in, the result out, every limit enforced.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ciborium::Value;
use spore_core::abi::{self, Status};
use spore_core::{FunctionRef, value};
use wasmtime::{Extern, Memory, ResourceLimiter, Store, Trap, TypedFunc, WasmBacktrace};

use crate::ability::{AbilityContext, Bindings, Provider};
use crate::error::TrapDetail;
use crate::{InvokeError, Limits, LoadSource, LoadedModule, Runtime};

/// Where a call runs: the abilities bound for it and how deep in `call`s it is.
#[derive(Debug, Clone, Default)]
pub struct CallEnv {
    pub bindings: Arc<Bindings>,
    pub depth: u32,
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
}

/// Where the time went in one call.
#[derive(Debug, Clone, Copy)]
pub struct CallStats {
    pub load_source: LoadSource,
    pub load_time: Duration,
    pub instantiate_time: Duration,
    pub run_time: Duration,
    /// Linear memory at the end of the call, in bytes.
    pub memory_bytes: u64,
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

/// Enforces the call's memory limit and remembers a refused growth, so that the trap
/// that follows (Rust aborts when allocation fails) is reported as the limit it was.
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
            return Ok(false);
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
    /// Calls `function` with `args` under `limits`, in a fresh instance, with the
    /// abilities `env` binds. A function needing an ability `env` does not bind is
    /// refused before it is instantiated.
    #[tracing::instrument(skip_all, fields(function = %function, depth = env.depth))]
    pub fn invoke(
        &self,
        function: &FunctionRef,
        args: &[Value],
        limits: &Limits,
        env: &CallEnv,
    ) -> Result<Invocation, InvokeError> {
        let started = Instant::now();
        let (loaded, load_source, load_time) = self.load(&function.module)?;
        let export = loaded.manifest.resolve_export(function.export.as_ref())?;
        let function = FunctionRef::new(function.module, export);
        let mut providers = Vec::new();
        let mut missing = Vec::new();
        for ability in loaded.manifest.abilities() {
            match env.bindings.get(ability) {
                Some(provider) => providers.push(provider.clone()),
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
        let context = Arc::new(AbilityContext {
            function: function.clone(),
            invocation: INVOCATIONS.fetch_add(1, Ordering::Relaxed),
            deadline: started + limits.deadline,
            depth: env.depth,
            effects: Arc::new(AtomicBool::new(false)),
        });
        let args = value::encode_canonical(&Value::Array(args.to_vec())).map_err(|e| {
            InvokeError::BadArguments {
                function: function.clone(),
                message: e.to_string(),
            }
        })?;
        let mut call = Call {
            runtime: self,
            loaded: &loaded,
            function,
            limits: *limits,
        };
        let (value, instantiate_time, run_time, memory_bytes) =
            call.run(&args, providers, context.clone())?;
        Ok(Invocation {
            function: call.function,
            value,
            effectful: context.effects.load(Ordering::Relaxed),
            stats: CallStats {
                load_source,
                load_time,
                instantiate_time,
                run_time,
                memory_bytes,
            },
        })
    }
}

struct Call<'a> {
    runtime: &'a Runtime,
    loaded: &'a LoadedModule,
    function: FunctionRef,
    limits: Limits,
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
            &self.runtime.engine,
            CallState {
                limiter: MemoryCap {
                    limit: usize::try_from(self.limits.memory_bytes).unwrap_or(usize::MAX),
                    refused: None,
                },
                providers,
                context,
                memory: None,
                alloc: None,
            },
        );
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(self.deadline_ticks());

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

    fn deadline_ticks(&self) -> u64 {
        let tick = self.runtime.config.epoch_tick.as_nanos().max(1);
        // One extra tick: the current epoch may be about to advance.
        (self.limits.deadline.as_nanos().div_ceil(tick) as u64).saturating_add(1)
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
        let value =
            value::decode(payload).map_err(|e| self.abi(&format!("result is not CBOR: {e}")))?;
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
                    Value::Text(text) => text,
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
                limit_bytes: self.limits.memory_bytes,
                requested_bytes: requested as u64,
            };
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => InvokeError::Timeout {
                function,
                deadline: self.limits.deadline,
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
        store.set_epoch_deadline(self.deadline_ticks());
        let packed = func.call(&mut *store, ()).ok()?;
        if packed == 0 {
            return None;
        }
        let memory = match instance.get_module_export(&mut *store, &self.loaded.memory) {
            Some(Extern::Memory(memory)) => memory,
            _ => return None,
        };
        let bytes = read_buffer(&memory, store, packed)?;
        Some(String::from_utf8_lossy(bytes).into_owned())
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
