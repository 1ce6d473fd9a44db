use std::time::Duration;

use ciborium::Value;
use spore_core::{ErrorKind, ExportError, FunctionRef, Hash};
use spore_store::StoreError;

/// Why a module could not be made ready to run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error(
        "cannot start the WebAssembly engine with {instances} instance slots of {memory_bytes} bytes each ({reserve_bytes} bytes of address space, reserved up front): {message}. If the address space is limited (`ulimit -v`), allow fewer instances or less memory per call"
    )]
    Engine {
        message: String,
        instances: u32,
        memory_bytes: u64,
        reserve_bytes: u64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The compiler refused the module: this engine cannot run it (a memory or table
    /// larger than it allows, a construct Cranelift does not support).
    #[error("module {module} does not compile: {message}")]
    Compile { module: Hash, message: String },
    /// Compiling the module cost more than this node allows; it was stopped.
    #[error("module {module} was refused: {limit}")]
    CompileLimit { module: Hash, limit: CompileLimit },
    /// The compiler failed for a reason of its own (it could not be started, it crashed).
    #[error("cannot compile module {module}: {message}")]
    Compiler { module: Hash, message: String },
    /// The caller's deadline passed while the module was compiling (or waiting to).
    #[error("the deadline passed after {waited:?} while module {module} was compiling")]
    Timeout { module: Hash, waited: Duration },
    /// The caller went away while the module was compiling.
    #[error("the caller went away while module {module} was compiling")]
    Cancelled { module: Hash },
}

/// The limit a compile went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileLimit {
    #[error("compiling it took longer than this node's limit of {0:?}, and it was stopped")]
    Time(Duration),
    #[error(
        "compiling it needed more than this node's limit of {0} bytes of address space, and it was stopped"
    )]
    Memory(u64),
}

/// Every way a call can fail. Each names the function, so that an error read far
/// from where it happened still says what failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("{function} needs abilities that are not bound here: {}; bind them in {origin}", missing.join(", "))]
    UnboundAbilities {
        function: FunctionRef,
        missing: Vec<String>,
        /// Where the bindings in force come from (the node's configuration file).
        origin: String,
    },
    #[error("{function} refused its arguments: {message}")]
    BadArguments {
        function: FunctionRef,
        message: String,
    },
    #[error("{function} returned an error: {}", spore_core::value::to_json(error))]
    Guest { function: FunctionRef, error: Value },
    #[error("{function} trapped: {reason}{detail}")]
    Trap {
        function: FunctionRef,
        reason: String,
        detail: Box<TrapDetail>,
    },
    #[error("{function} ran past its deadline and was stopped after {ran:?}")]
    Timeout {
        function: FunctionRef,
        /// How long it had run (or been compiling) when it was stopped.
        ran: Duration,
    },
    #[error(
        "{function} tried to grow its memory to {requested_bytes} bytes, over its limit of {limit_bytes} bytes, and was stopped"
    )]
    MemoryLimit {
        function: FunctionRef,
        limit_bytes: u64,
        requested_bytes: u64,
    },
    #[error("{function} overflowed its stack (limit {limit_bytes} bytes) and was stopped")]
    StackOverflow {
        function: FunctionRef,
        limit_bytes: usize,
    },
    #[error("{function} was stopped: whoever waited for it is gone")]
    Cancelled { function: FunctionRef },
    #[error(
        "{function} was asked to run with {requested_bytes} bytes of memory, over this node's most of {max_bytes} bytes"
    )]
    MemoryOverMax {
        function: FunctionRef,
        requested_bytes: u64,
        max_bytes: u64,
    },
    #[error("cannot start {function}: {message}")]
    Instantiate {
        function: FunctionRef,
        message: String,
    },
    #[error("{function} broke the spore ABI: {reason}")]
    AbiViolation {
        function: FunctionRef,
        reason: String,
    },
}

/// What a trap left behind for the report: kept apart because it is rarely present and
/// large, and errors travel by value on every call's return path.
#[derive(Debug, Default)]
pub struct TrapDetail {
    /// The message of the Rust panic that caused the trap, when the guest recorded one.
    pub panic: Option<String>,
    /// The innermost Wasm frames.
    pub backtrace: Option<String>,
}

impl std::fmt::Display for TrapDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(panic) = &self.panic {
            write!(f, "\n  panic: {panic}")?;
        }
        if let Some(backtrace) = &self.backtrace {
            write!(f, "\n  wasm backtrace:\n{backtrace}")?;
        }
        Ok(())
    }
}

impl From<StoreError> for InvokeError {
    fn from(error: StoreError) -> Self {
        InvokeError::Load(LoadError::Store(error))
    }
}

impl LoadError {
    /// The kind of failure (`spec/errors.md`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            LoadError::Engine { .. } => ErrorKind::Unavailable,
            LoadError::Store(store) => store.kind(),
            LoadError::Compile { .. } => ErrorKind::InvalidModule,
            LoadError::CompileLimit { .. } => ErrorKind::TooLarge,
            LoadError::Compiler { .. } => ErrorKind::Internal,
            LoadError::Timeout { .. } => ErrorKind::Timeout,
            LoadError::Cancelled { .. } => ErrorKind::Unavailable,
        }
    }
}

impl InvokeError {
    /// The kind of failure (`spec/errors.md`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            InvokeError::Load(load) => load.kind(),
            InvokeError::Export(export) => export_kind(export),
            InvokeError::UnboundAbilities { .. } => ErrorKind::Unbound,
            InvokeError::BadArguments { .. } => ErrorKind::BadRequest,
            InvokeError::Guest { .. } => ErrorKind::GuestError,
            InvokeError::Trap { .. } | InvokeError::AbiViolation { .. } => ErrorKind::Trap,
            InvokeError::Timeout { .. } => ErrorKind::Timeout,
            InvokeError::MemoryLimit { .. } => ErrorKind::MemoryLimit,
            InvokeError::MemoryOverMax { .. } => ErrorKind::TooLarge,
            InvokeError::StackOverflow { .. } => ErrorKind::StackOverflow,
            InvokeError::Instantiate { .. } | InvokeError::Cancelled { .. } => {
                ErrorKind::Unavailable
            }
        }
    }
}

/// The kind of a reference that picks out no function: naming no export of a module
/// with several is a malformed request, naming one it lacks is not found.
pub fn export_kind(error: &ExportError) -> ErrorKind {
    match error {
        ExportError::Unspecified { .. } => ErrorKind::BadRequest,
        _ => ErrorKind::NotFound,
    }
}
