//! Compiling in a child process that can be stopped ([`crate::Compiler::Program`]).
//!
//! The parent writes a request on the child's stdin and reads the compiled artifact from
//! its stdout. The child runs under an address-space limit (`RLIMIT_AS`), so a compile
//! that needs more fails there instead of taking this process's memory, and the parent
//! kills it at the time limit. It dies with the thread that started it (and so with this
//! process): a compile nobody waits for does not run on.
//!
//! The request is [`MAGIC`], the two settings the compiled code depends on as
//! little-endian u64 (the Wasm stack limit and the memory reservation), then the module.
//! The child exits 0 having written the artifact, [`REFUSED`] or [`OUT_OF_MEMORY`] with
//! the reason on stderr.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::CompileLimits;

const MAGIC: &[u8] = b"spore-compile/1\n";
const HEADER: usize = MAGIC.len() + 16;

/// The compiler refused the module.
const REFUSED: u8 = 2;
/// The compiler ran out of address space.
const OUT_OF_MEMORY: u8 = 3;
/// The request was not one.
const BAD_REQUEST: u8 = 4;

/// How much of the child's stderr is kept for a message.
const MAX_STDERR: usize = 16 << 10;

/// What the engine's code depends on, as the parent's engine has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CodeSettings {
    pub max_stack_bytes: usize,
    pub max_memory_bytes: u64,
}

/// Why a compile in a child gave no artifact.
#[derive(Debug)]
pub(crate) enum ChildFailure {
    /// The compiler refused the module; its message.
    Refused(String),
    OverTime,
    OverMemory,
    /// The child could not be run, or failed for a reason of its own.
    Failed(String),
}

/// Compiles `module` by running `program` with `args`, within `limits`.
pub(crate) fn compile(
    program: &Path,
    args: &[OsString],
    settings: CodeSettings,
    module: &[u8],
    limits: CompileLimits,
) -> Result<Vec<u8>, ChildFailure> {
    let started = Instant::now();
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let memory = limits.memory_bytes;
    // SAFETY: `limit_this_process` makes only async-signal-safe system calls.
    unsafe { command.pre_exec(move || limit_this_process(memory)) };
    let mut child = command.spawn().map_err(|e| {
        ChildFailure::Failed(format!(
            "cannot start the compiler {}: {e}",
            program.display()
        ))
    })?;

    let mut request = Vec::with_capacity(HEADER + module.len());
    request.extend_from_slice(MAGIC);
    request.extend_from_slice(&(settings.max_stack_bytes as u64).to_le_bytes());
    request.extend_from_slice(&settings.max_memory_bytes.to_le_bytes());
    request.extend_from_slice(module);
    let mut stdin = child.stdin.take().expect("piped");
    // A child that dies early closes its stdin; the write fails and its status says why.
    let writer = thread::spawn(move || drop(stdin.write_all(&request)));
    let stderr = read_in_background(child.stderr.take().expect("piped"), MAX_STDERR);
    let (done, artifact) = mpsc::channel();
    let mut stdout = child.stdout.take().expect("piped");
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = done.send(stdout.read_to_end(&mut bytes).map(|_| bytes));
    });

    // The artifact is complete when the child closes its stdout, which it does by exiting.
    let remaining = limits.time.saturating_sub(started.elapsed());
    let artifact = match artifact.recv_timeout(remaining) {
        Ok(read) => read,
        Err(mpsc::RecvTimeoutError::Timeout) => return Err(stop(child, ChildFailure::OverTime)),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(io::Error::other("the thread reading it stopped"))
        }
    };
    let Some(status) = wait_until(&mut child, started + limits.time) else {
        return Err(stop(child, ChildFailure::OverTime));
    };
    let _ = writer.join();
    let stderr = stderr.recv().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&stderr).trim().to_owned();
    match (status.code(), artifact) {
        (Some(0), Ok(artifact)) => Ok(artifact),
        (Some(0), Err(error)) => Err(ChildFailure::Failed(format!(
            "cannot read the compiled module from the compiler: {error}"
        ))),
        (Some(code), _) if code == i32::from(REFUSED) => Err(ChildFailure::Refused(stderr)),
        (Some(code), _) if code == i32::from(OUT_OF_MEMORY) => Err(ChildFailure::OverMemory),
        _ if out_of_memory(&stderr) => Err(ChildFailure::OverMemory),
        _ => Err(ChildFailure::Failed(format!(
            "the compiler {}: {}",
            describe(status),
            if stderr.is_empty() {
                "(no message)"
            } else {
                &stderr
            }
        ))),
    }
}

/// Runs in the child between `fork` and `exec`: only async-signal-safe calls.
fn limit_this_process(memory_bytes: u64) -> io::Result<()> {
    let check = |result: libc::c_int| {
        if result == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: plain system calls on this process, with valid pointers.
    unsafe {
        // Elsewhere a child whose parent died runs on until its compile ends.
        #[cfg(target_os = "linux")]
        check(libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
        ))?;
        let mut current = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        check(libc::getrlimit(libc::RLIMIT_AS, &mut current))?;
        // Only ever lowered: a process already under a tighter limit keeps it.
        let cap = memory_bytes.min(current.rlim_max);
        check(libc::setrlimit(
            libc::RLIMIT_AS,
            &libc::rlimit {
                rlim_cur: cap,
                rlim_max: cap,
            },
        ))?;
        // A compiler that aborts for want of memory leaves no core file behind.
        check(libc::setrlimit(
            libc::RLIMIT_CORE,
            &libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            },
        ))?;
    }
    Ok(())
}

fn read_in_background(
    mut from: impl Read + Send + 'static,
    keep: usize,
) -> mpsc::Receiver<Vec<u8>> {
    let (send, receive) = mpsc::channel();
    thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(n @ 1..) = from.read(&mut buffer) {
            let room = keep.saturating_sub(kept.len());
            kept.extend_from_slice(&buffer[..n.min(room)]);
        }
        let _ = send.send(kept);
    });
    receive
}

/// Waits for `child` to exit, until `deadline`.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => thread::sleep(pause),
            Err(_) => return child.wait().ok(),
        }
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn stop(mut child: Child, why: ChildFailure) -> ChildFailure {
    let _ = child.kill();
    let _ = child.wait();
    why
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// Whether a compiler's message says it ran out of memory: the allocator's abort
/// message, or an `mmap` that failed with `ENOMEM`.
fn out_of_memory(message: &str) -> bool {
    [
        "memory allocation of",
        "Cannot allocate memory",
        "out of memory",
    ]
    .iter()
    .any(|sign| message.contains(sign))
}

/// The child's half of [`crate::Compiler::Program`]: reads a request from `input`,
/// compiles the module with the engine settings it carries, and writes the artifact to
/// `output`, or the reason it was refused to `errors`. Returns the process's exit code.
///
/// A program that serves compiles calls this and exits with its result; the `spore`
/// binary does so as `spore __compile`.
pub fn serve_compile(
    input: &mut impl Read,
    output: &mut impl Write,
    errors: &mut impl Write,
) -> u8 {
    let mut request = Vec::new();
    if let Err(error) = input.read_to_end(&mut request) {
        let _ = writeln!(errors, "cannot read the compile request: {error}");
        return BAD_REQUEST;
    }
    let Some((settings, module)) = parse(&request) else {
        let _ = writeln!(
            errors,
            "not a compile request: it does not start with {MAGIC:?} and two settings"
        );
        return BAD_REQUEST;
    };
    let engine = match wasmtime::Engine::new(&crate::engine::code_config(
        settings.max_stack_bytes,
        settings.max_memory_bytes,
    )) {
        Ok(engine) => engine,
        Err(error) => {
            let message = format!("{error:#}");
            let _ = writeln!(errors, "cannot configure the compiler: {message}");
            return if out_of_memory(&message) {
                OUT_OF_MEMORY
            } else {
                BAD_REQUEST
            };
        }
    };
    match engine.precompile_module(module) {
        Ok(artifact) => match output.write_all(&artifact).and_then(|()| output.flush()) {
            Ok(()) => 0,
            Err(error) => {
                let _ = writeln!(errors, "cannot write the compiled module: {error}");
                BAD_REQUEST
            }
        },
        Err(error) => {
            let message = format!("{error:#}");
            let _ = writeln!(errors, "{message}");
            if out_of_memory(&message) {
                OUT_OF_MEMORY
            } else {
                REFUSED
            }
        }
    }
}

fn parse(request: &[u8]) -> Option<(CodeSettings, &[u8])> {
    let rest = request.strip_prefix(MAGIC)?;
    let stack = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    let memory = u64::from_le_bytes(rest.get(8..16)?.try_into().ok()?);
    Some((
        CodeSettings {
            max_stack_bytes: usize::try_from(stack).ok()?,
            max_memory_bytes: memory,
        },
        &rest[16..],
    ))
}
