#!/usr/bin/env bash
# The main job: build spore and the codebase functions, publish them into a fresh
# embedded home, invoke them, and print hashes and results; then the mesh demo
# (examples/cloud-edge): three nodes on loopback, placement by abilities; then a service
# on HTTP routes (examples/http-api).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown

cargo build --release --quiet --bin spore
spore=target/release/spore
home=$(mktemp -d "${TMPDIR:-/tmp}/spore-demo.XXXXXX")
trap 'rm -rf "$home"' EXIT
export SPORE_HOME="$home"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "A fresh home: $home (spore writes config.toml with the default bindings)"
$spore abilities >/dev/null
# This node also has a sensor, served by an external provider process.
cat >> "$home/config.toml" <<TOML

[abilities.sensor]
provider = "process"
operations = ["read"]
command = ["python3", "$PWD/examples/sensor-provider/sensor.py"]
TOML

step "Build and publish codebase/"
for module in arith words markdown reshape cpu faults visits sensors caller title; do
  hash=$($spore build "codebase/$module" --name "$module" 2>"$home/build.log" | tail -n 1) \
    || { cat "$home/build.log"; exit 1; }
  printf '%-9s %s\n' "$module" "$hash"
done

step "The hash is BLAKE3 of the bytes (b3sum prints the same)"
$spore hash codebase/target/wasm32-unknown-unknown/release/markdown.wasm

step "Modules"
$spore ls

step "Invoke by name, by prefix and by hash"
arith=$($spore inspect arith.add --json | sed -E 's/.*"module":"([0-9a-f]+)".*/\1/')
echo "arith.add 2 40              -> $($spore invoke arith.add 2 40)"
echo "${arith:0:8}:mul 6 7          -> $($spore invoke "${arith:0:8}:mul" 6 7)"
echo "words.top (text, 3)         -> $($spore invoke words.top '"the cat and the hat and the bat"' 3)"
echo "markdown '# Hello *spore*'  -> $($spore invoke markdown '"# Hello *spore*"')"
echo "reshape.flatten             -> $($spore invoke reshape.flatten '{"a":{"b":[1,{"c":2}]}}')"
echo "cpu.sha256 4 (MiB)          -> $($spore invoke cpu.sha256 4)"
echo "cpu.mandelbrot 200 200 256  -> $($spore invoke cpu.mandelbrot 200 200 256)"

step "Failures are typed, and the next call still works"
for call in "arith.div 1 0" "faults.spin --timeout 200ms" "faults.hog 512" "faults.boom \"oops\""; do
  set +e; out=$($spore invoke $call 2>&1); code=$?; set -e
  printf 'exit %s  %s\n' "$code" "$(echo "$out" | head -n 2 | tr '\n' ' ')"
done
echo "arith.add 1 1               -> $($spore invoke arith.add 1 1)"

step "Names keep their history"
$spore names set arith.add "$arith:sub" >/dev/null
$spore names set arith.add "$arith:add" >/dev/null
$spore names history arith.add

step "Abilities: effects are imports, bound per node ($home/config.toml)"
$spore abilities
echo "visits.hit home (kv)        -> $($spore invoke visits.hit '"home"')"
echo "visits.hit home (kv)        -> $($spore invoke visits.hit '"home"')"
echo "sensors.read attic (process)-> $($spore invoke sensors.read '"attic"')"
echo "caller.call_twice add 5     -> $($spore invoke caller.call_twice "\"$arith:add\"" 5)"

step "Deny by default: http is not bound on this node"
set +e; out=$($spore invoke title '"http://127.0.0.1:1/"' 2>&1); code=$?; set -e
printf 'exit %s  %s\n' "$code" "$out"

step "Pure functions are memoized"
for attempt in first second; do
  $spore --json invoke cpu.sha256 16 | python3 -c "import json,sys; r=json.load(sys.stdin); s=r['stats']; print('$attempt call: memo=%s run=%s' % (r['memo'], ('%.1f ms' % (s['run_us']/1000)) if s else 'not run'))"
done

step "The mesh: three nodes on loopback (examples/cloud-edge/run.sh)"
"$(dirname "$0")/../examples/cloud-edge/run.sh"

step "Serving traffic: a URL shortener on HTTP routes, a topic and a schedule (examples/http-api/run.sh)"
"$(dirname "$0")/../examples/http-api/run.sh"
