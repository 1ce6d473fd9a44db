#!/usr/bin/env bash
# The test job: every test of the workspace, on a fresh machine included (the
# wasm32 target is installed by the build of spore-test-programs when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown
# The topic tests start a real `nats-server -js` (Debian's package installs it in /usr/sbin).
export PATH="$PATH:/usr/sbin"
if ! command -v nats-server >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq nats-server
fi
cargo test --workspace --locked "$@"
# The codebase functions keep their pure logic in plain functions, tested natively.
(cd codebase && cargo test --locked --quiet)
