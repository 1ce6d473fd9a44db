//! The version this binary reports, written once: `spore --version`, and the running
//! node's `GET /v1/info` (`version`), so that a client can tell which build answers it.

/// `0.1.0 (0123456789ab 2026-11-30)`: the package version, then the commit and its
/// date as `build.rs` found them (or `SPORE_BUILD_COMMIT`, or `unknown commit`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("SPORE_COMMIT"), ")");
