#!/usr/bin/env bash
# The test job: every test of the workspace, on a fresh machine included (the
# wasm32 target is installed by the build of spore-test-programs when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown
cargo test --workspace --locked "$@"
# The codebase functions keep their pure logic in plain functions, tested natively.
(cd codebase && cargo test --locked --quiet)
