//! Integration tests: the real `spore` binary on temporary homes, with the real
//! modules of `codebase/` (built for wasm32 by `spore-test-programs`).

mod codebase;
mod corruption;
mod invoke;
mod limits;
mod names;
mod publish;
mod support;
