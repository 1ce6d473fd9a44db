//! The node in process: real homes, the real runtime, real meshes on loopback, with no
//! CLI in between, so that placement and memoization are tested where they are decided.

mod common;
mod handler;
mod memo;
mod mesh_names;
mod placement;
