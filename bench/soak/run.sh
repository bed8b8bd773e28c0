#!/usr/bin/env bash
# Soak: postclassd on the default model bundle under a steady mixed load for N minutes, with
# faults on a schedule (broker stopped ~30 s, kill -9 and restart, a second member joining and
# leaving, bursts of hostile records), then a full accounting of what came out. Not a test: it
# runs for minutes and reports; it exits non-zero only when a post was lost, a valid post was
# dead-lettered, or a daemon died on its own. See bench/soak/README.md.
#
# Usage: bench/soak/run.sh [--minutes 10] [--rate 20] [--bin PATH]
#   --minutes N   feed for N minutes (default 10); every fault happens once per ~10 minutes, and
#                 at least once (--minutes 2 is the quick run)
#   --rate R      valid posts per second (default 20: well under what 2 cores label, so a
#                 backlog left by a fault drains)
#   --bin PATH    a postclassd already built (skips the build)
#   other options go to bench/soak/soak.py (e.g. --no-workarounds, --quiet-timeout S)
# Environment: SOAK_SCRATCH (build folder, default .build-soak, apart from the usual .build so it
# does not collide with other builds), SOAK_BIN_DIR (where the binary is copied, default
# /tmp/soak-bin: a rebuild during the soak must not swap the binary under running daemons).
# Output: the report on stdout; logs, /metrics scrapes and report.json in bench/results/soak-<time>/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

MINUTES=10
RATE=20
BIN=""
SOAK_ARGS=()
while (($#)); do
    case "$1" in
        --minutes) MINUTES="$2"; shift 2 ;;
        --rate) RATE="$2"; shift 2 ;;
        --bin) BIN="$2"; shift 2 ;;
        *) SOAK_ARGS+=("$1"); shift ;;   # soak.py's own options, e.g. --no-workarounds
    esac
done

say() { printf '[soak] %s\n' "$*" >&2; }

bash scripts/install-deps.sh
bash scripts/setup-models.sh --no-goldens 2>&1 | sed 's/^/  /' >&2
if [[ -z "$BIN" ]]; then
    SCRATCH="${SOAK_SCRATCH:-.build-soak}"
    say "building postclassd (release, in $SCRATCH; a first build takes several minutes)"
    nice -n 10 swift build -c release --product postclassd --scratch-path "$SCRATCH" >&2
    BIN="$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)/postclassd"
fi
BIN_DIR="${SOAK_BIN_DIR:-/tmp/soak-bin}"
mkdir -p "$BIN_DIR"
cp "$BIN" "$BIN_DIR/postclassd.tmp" && mv "$BIN_DIR/postclassd.tmp" "$BIN_DIR/postclassd"

WORK="bench/results/soak-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$WORK"
say "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources Package.swift || echo ' (with uncommitted changes in Sources)'), CPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
say "logs in $WORK"
# Debian's python3, which has python3-confluent-kafka (as bench/kafka uses).
exec /usr/bin/python3 bench/soak/soak.py --minutes "$MINUTES" --rate "$RATE" --bin "$BIN_DIR/postclassd" \
    --model "$ROOT/models/default" --work "$WORK" "${SOAK_ARGS[@]}"
