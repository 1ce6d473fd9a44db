//! The built-in ability providers: `log`, `clock`, `random`, `kv`, `http`, and
//! external provider processes for any ability (`spec/abilities.md`).
//!
//! Each provider implements `spore_runtime::Provider` and is configured by a plain
//! settings struct. This crate must not know about configuration files, names,
//! placement or how functions are invoked: the node builds providers from its
//! configuration, and the providers that call functions (`call`, Wasm handlers) live in
//! the node.

mod basic;
pub mod http;
mod kv;
pub mod process;

pub use basic::{ClockProvider, ConfigProvider, LogProvider, RandomProvider};
pub use http::{HttpProvider, HttpSettings};
pub use kv::{KvProvider, KvSettings};
pub use process::{ProcessProvider, ProcessSettings};

/// The built-in shapes: each ability's operations, as `spec/abilities.md` lists them.
pub const BUILTIN_SHAPES: &[(&str, &[&str])] = &[
    ("call", &["invoke"]),
    ("clock", &["now"]),
    ("config", &["get"]),
    ("http", &["request"]),
    ("kv", &["cas", "delete", "get", "list", "put"]),
    ("log", &["debug", "error", "info", "warn"]),
    ("random", &["bytes"]),
];
