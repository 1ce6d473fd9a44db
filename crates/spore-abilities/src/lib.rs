//! The built-in ability providers: `log`, `clock`, `random`, `kv`, `http`, `topic` on
//! NATS JetStream, and external provider processes for any ability
//! (`spec/abilities.md`).
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
pub mod topic;

pub use basic::{ClockProvider, ConfigProvider, LogProvider, RandomProvider};
pub use http::{HttpProvider, HttpSettings};
pub use kv::{KvProvider, KvSettings};
pub use process::{ProcessProvider, ProcessSettings};

/// A built-in ability: its name, its operations as `spec/abilities.md` lists them, and
/// whether every node serves it (then it is never a reason to run a call elsewhere).
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    pub name: &'static str,
    pub operations: &'static [&'static str],
    /// `call`, `clock`, `config`, `log` and `random` are bound on every node by default,
    /// and what they give is local to the node; `kv` and `http` reach state or networks
    /// that only some nodes have.
    pub everywhere: bool,
}

/// Every built-in ability: the one list spore's other parts derive theirs from.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "call",
        operations: &["invoke"],
        everywhere: true,
    },
    Builtin {
        name: "clock",
        operations: &["now"],
        everywhere: true,
    },
    Builtin {
        name: "config",
        operations: &["get"],
        everywhere: true,
    },
    Builtin {
        name: "http",
        operations: &["request"],
        everywhere: false,
    },
    Builtin {
        name: "kv",
        operations: &["cas", "delete", "get", "list", "put"],
        everywhere: false,
    },
    Builtin {
        name: "log",
        operations: &["debug", "error", "info", "warn"],
        everywhere: true,
    },
    Builtin {
        name: "random",
        operations: &["bytes"],
        everywhere: true,
    },
    Builtin {
        name: "topic",
        operations: &["publish"],
        everywhere: false,
    },
];

/// The built-in ability called `name`, if there is one.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|builtin| builtin.name == name)
}

/// Whether every node serves ability `name`, so that needing it never moves a call.
pub fn is_everywhere(name: &str) -> bool {
    builtin(name).is_some_and(|builtin| builtin.everywhere)
}
