//! External provider processes against real child processes: small Python 3 providers
//! written into a temporary directory, whose behaviour is chosen by their argument.
//!
//! Calls go through `ProcessProvider::call_until`, which is `Provider::call` without
//! an `AbilityContext` (the runtime is the only place that makes one).

mod calls;
mod common;
mod crashes;
mod first_use;
mod output;
mod provider;
mod shutdown;
mod start;
