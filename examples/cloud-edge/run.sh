#!/usr/bin/env bash
# Three spore nodes on loopback, members of one mesh (docs/security.md):
#   cloud       makes the mesh; binds kv for the edges (and declares the sensor
#               ability without binding it)
#   sensor-edge binds the custom `sensor` ability to an external provider process, for
#               the edges; its certificate lets it serve `sensor` to the mesh
#   plain-edge  binds neither
# and a stranger, in no mesh, that tries to use them and is refused.
# The cloud publishes `telemetry` and `sensors` under names signed by its `release` key,
# which every node trusts for `telemetry.*` and `sensors.*`. The plain edge invokes
# telemetry.collect by its mesh name, which reads the sensor (so runs on the sensor
# edge) and stores the reading through kv (so on the cloud, whose kv runs only code the
# release key signed). The code names no address: placement follows the abilities.
# The --explain path shows where each step ran.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown
cargo build --release --quiet --bin spore
spore="$root/target/release/spore"

work=$(mktemp -d "${TMPDIR:-/tmp}/spore-cloud-edge.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

without_kv() { grep -v -e '^\[abilities.kv\]' -e '^provider = "kv"' -e '^namespace = "default"' -e '^max_value_bytes' ; }

# Fresh homes with their default configuration, then each node's own bindings.
for node in cloud sensor-edge plain-edge stranger; do
  mkdir -p "$work/$node"
  "$spore" --home "$work/$node" abilities >/dev/null
done

echo "== making the mesh: the cloud holds its key and admits the edges"
"$spore" --home "$work/cloud" mesh init --role cloud --serves kv | head -1
admit() { # name, roles and abilities as flags...
  local name=$1; shift
  "$spore" --home "$work/cloud" mesh admit "$("$spore" --home "$work/$name" node id | head -1)" "$@" \
    | "$spore" --home "$work/$name" mesh join - | head -1
}
admit sensor-edge --role edge --serves sensor
admit plain-edge --role edge

echo "== the cloud's release key signs the names every node believes"
release=$("$spore" --home "$work/cloud" key new release)
echo "release    $release"
for node in cloud sensor-edge plain-edge; do
  cat >> "$work/$node/config.toml" <<TOML

[trust.names]
"telemetry.*" = ["$release"]
"sensors.*" = ["$release"]
TOML
done

# The cloud's kv and the sensor edge's sensor serve the edges' calls.
awk -v key="$release" '{print} /^\[abilities.kv\]$/ {print "callers = [\"role:edge\"]"; print "publishers = [\"" key "\"]"}' "$work/cloud/config.toml" \
  > "$work/cloud/config.new"
mv "$work/cloud/config.new" "$work/cloud/config.toml"
cat >> "$work/cloud/config.toml" <<TOML

[abilities.sensor]
operations = ["read"]
TOML
without_kv < "$work/sensor-edge/config.toml" > "$work/sensor-edge/config.new"
mv "$work/sensor-edge/config.new" "$work/sensor-edge/config.toml"
cat >> "$work/sensor-edge/config.toml" <<TOML

[abilities.sensor]
provider = "process"
operations = ["read"]
command = ["python3", "$root/examples/sensor-provider/sensor.py"]
callers = ["role:edge"]
TOML
without_kv < "$work/plain-edge/config.toml" > "$work/plain-edge/config.new"
mv "$work/plain-edge/config.new" "$work/plain-edge/config.toml"

start() { # name, bootstrap addresses...
  local name=$1; shift
  local args=(--home "$work/$name" node run --no-mdns --api 127.0.0.1:0 --listen /ip4/127.0.0.1/tcp/0)
  for peer in "$@"; do args+=(--bootstrap "$peer"); done
  "$spore" "${args[@]}" 2>"$work/$name.log" &
  pids+=($!)
  for _ in $(seq 1 300); do [ -f "$work/$name/node.json" ] && break; sleep 0.1; done
  [ -f "$work/$name/node.json" ] || { echo "$name did not start:"; cat "$work/$name.log"; exit 1; }
}
tcp_addr() { python3 -c "import json,sys; print(next(a for a in json.load(open(sys.argv[1]))['listen'] if '/tcp/' in a))" "$work/$1/node.json"; }
peer_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['peer_id'])" "$work/$1/node.json"; }

echo "== starting three nodes on loopback"
start cloud
cloud_addr=$(tcp_addr cloud)
start sensor-edge "$cloud_addr"
start plain-edge "$cloud_addr"
for node in cloud sensor-edge plain-edge; do printf '%-12s %s\n' "$node" "$(peer_of $node)"; done

echo "== publishing on the cloud, the names signed by the release key"
telemetry=$("$spore" --home "$work/cloud" build codebase/telemetry --name telemetry --sign release 2>/dev/null | tail -n 1)
sensors=$("$spore" --home "$work/cloud" build codebase/sensors --name sensors --sign release 2>/dev/null | tail -n 1)
echo "telemetry  $telemetry"
echo "sensors    $sensors"

echo "== the plain edge's names: mesh names, and who signed them"
for _ in $(seq 1 100); do
  "$spore" --home "$work/plain-edge" names ls | grep -q '^telemetry.collect' && break
  sleep 0.1
done
"$spore" --home "$work/plain-edge" names ls | sed 's/   */  /g'

echo "== invoking telemetry.collect by its mesh name on the plain edge"
"$spore" --home "$work/plain-edge" invoke telemetry.collect \
  '"sensors.read"' '"telemetry.store"' '"attic"' '"readings/attic"' --explain

echo "== the reading is in the cloud's kv"
"$spore" --home "$work/cloud" invoke telemetry.load '"readings/attic"' --local

echo "== the plain edge's own, unsigned code may not use the cloud's kv"
visits=$("$spore" --home "$work/plain-edge" build codebase/visits 2>/dev/null | tail -n 1)
if "$spore" --home "$work/plain-edge" invoke "$visits:hit" '"attic"' 2>"$work/visits.err"; then
  echo "unsigned code used the cloud's kv: this must not happen"; exit 1
fi
echo "refused: $(head -c 300 "$work/visits.err")"

echo "== a stranger (no certificate) joins through the cloud and tries the same"
start stranger "$cloud_addr"
"$spore" --home "$work/stranger" node info | grep '^mesh'
if "$spore" --home "$work/stranger" invoke "$telemetry:load" '"readings/attic"' --timeout 5s 2>"$work/stranger.err"; then
  echo "the stranger was served: this must not happen"; exit 1
fi
echo "the stranger's call failed: $(head -c 300 "$work/stranger.err")"
echo "what the cloud logged:"
grep -h "refused" "$work/cloud.log" | sed 's/^/  /' | head -3
