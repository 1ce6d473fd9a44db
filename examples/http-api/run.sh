#!/usr/bin/env bash
# A URL shortener served by one spore node (examples/http-api/README.md): HTTP routes to
# the functions of codebase/links, kv for the links, a topic announcing each new link to
# a subscriber, and a schedule that expires old links.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown
cargo build --release --quiet --bin spore
spore="$root/target/release/spore"

work=$(mktemp -d "${TMPDIR:-/tmp}/spore-http-api.XXXXXX")
node=""
cleanup() {
  [ -n "$node" ] && kill -TERM "$node" 2>/dev/null && wait "$node" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export SPORE_HOME="$work/home"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

step "A fresh home, with the routes, the topic, the subscription and the schedule"
"$spore" abilities >/dev/null
cat examples/http-api/config.toml >> "$SPORE_HOME/config.toml"
"$spore" routes ls

step "Build and publish the functions under the name links"
"$spore" build codebase/links --name links 2>"$work/build.log" | tail -n 1 \
  || { cat "$work/build.log"; exit 1; }
"$spore" inspect links.shorten | grep -E 'shorten|follow|stats' || true

step "Run the node, serving the routes on a port of its own"
"$spore" node run --listen /ip4/127.0.0.1/tcp/0 --http 127.0.0.1:0 2>"$work/node.log" &
node=$!
for _ in $(seq 100); do
  http=$( { json '["http"]' < "$SPORE_HOME/node.json"; } 2>/dev/null) && break
  sleep 0.1
done
[ -n "${http:-}" ] || { cat "$work/node.log"; exit 1; }
echo "routes on http://$http"

step "POST /links: shorten a URL"
link=$(curl -sS -X POST -H 'content-type: application/json' \
  -d '{"url": "https://example.org/a/rather/long/path?with=query"}' "http://$http/links")
echo "$link"
id=$(echo "$link" | json '["id"]')

step "GET /l/$id: the redirect (twice, so two visits)"
curl -sS -o /dev/null -w '%{http_code} location: %{redirect_url}\n' "http://$http/l/$id"
curl -sS -o /dev/null -w '%{http_code}\n' "http://$http/l/$id"

step "GET /links/$id: the link and its visits"
curl -sS "http://$http/links/$id"; echo

step "GET /recent: kept by the subscriber of links.created"
sleep 0.5
curl -sS "http://$http/recent"; echo

step "Mistakes have their status"
curl -sS -w '  (%{http_code})\n' -X POST -H 'content-type: application/json' \
  -d '{"url": "ftp://example.org"}' "http://$http/links"
curl -sS -w '  (%{http_code})\n' "http://$http/l/nosuchid"
curl -sS -w '  (%{http_code})\n' -X POST "http://$http/links"

step "What the node did: spore node status, and its log with the guest's lines"
"$spore" node status
"$spore" logs -n 4
