//! Integration tests: the real `spore` binary on temporary homes, with the real
//! modules of `codebase/` (built for wasm32 by `spore-test-programs`).

mod abilities;
mod api;
mod assemblyscript;
mod cli_conventions;
mod cli_output;
mod codebase;
mod corruption;
mod costs;
mod crash;
mod damage;
mod dev;
mod housekeeping;
mod http_api_example;
mod http_server;
mod invoke;
mod limits;
mod logs;
mod mesh;
mod mesh_names;
mod metrics;
mod names;
mod netns;
mod new;
mod placement;
mod publish;
mod rejoin;
mod reproducible;
mod routes;
mod schedules;
mod status;
mod support;
mod test_mesh;
mod topics;
mod traces;
mod trust_cli;
