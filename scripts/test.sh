#!/usr/bin/env bash
# The test job: every test of the workspace, on a fresh machine included (the
# wasm32 target is installed by the build of spore-test-programs when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown
exec cargo test --workspace --locked "$@"
