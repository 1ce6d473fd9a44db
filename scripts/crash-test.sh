#!/usr/bin/env bash
# The crash-safety figures of docs/durability.md: real `spore` processes SIGKILLed at
# random moments (a CLI command at a time; a node under concurrent HTTP writes), and
# bytes flipped across a home's files. Prints, per mode: kills, bricked homes,
# acknowledged writes lost; and for the flips: unopenable homes, items silently wrong
# or gone.
#
#   scripts/crash-test.sh [crash|damage]...     (default: both)
#
#   SPORE_CRASH_KILLS    kills per mode (default 2000)
#   SPORE_CRASH_SECONDS  wall time per mode, if sooner (default: no limit)
#   SPORE_DAMAGE_FLIPS   flipped bytes (default 600)
#   SPORE_CRASH_SEED, SPORE_DAMAGE_SEED   repeat a run's choices (each run prints its seed)
set -uo pipefail
cd "$(dirname "$0")/.."
export SPORE_CRASH_KILLS="${SPORE_CRASH_KILLS:-2000}"
export SPORE_DAMAGE_FLIPS="${SPORE_DAMAGE_FLIPS:-600}"

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(crash damage)
tests=()
for part in "${parts[@]}"; do
  case "$part" in
    crash) tests+=(crash::thousands_of_cli_commands_killed crash::thousands_of_node_kills) ;;
    damage) tests+=(damage::hundreds_of_flipped_bytes) ;;
    *) echo "usage: $0 [crash|damage]..." >&2; exit 2 ;;
  esac
done

cargo test --workspace --locked --test all --no-run || exit 1
log="$(mktemp)"
status=0
for test in "${tests[@]}"; do
  echo "== $test"
  cargo test --workspace --locked --test all -q -- --ignored --exact --nocapture \
    --test-threads=1 "$test" 2>&1 | tee -a "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
echo
echo "== figures (SPORE_CRASH_KILLS=$SPORE_CRASH_KILLS SPORE_CRASH_SECONDS=${SPORE_CRASH_SECONDS:-} SPORE_DAMAGE_FLIPS=$SPORE_DAMAGE_FLIPS)"
grep -E '^(seed |crash figures|damage figures)' "$log"
rm -f "$log"
exit "$status"
