#!/usr/bin/env bash
# The main job, on one machine: installs what is missing, builds postclassd, starts the daemon
# on its embedded broker, feeds demo posts, and prints each labelled record as it arrives.
# Ctrl-C stops it (the daemon drains, commits and exits).
#
# Usage: scripts/demo.sh [--bounded]
#   --bounded   exit once every demo post is labelled (for CI), instead of running until Ctrl-C.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BOUNDED=0
[[ "${1:-}" == "--bounded" ]] && BOUNDED=1

say() { printf '\033[1m[demo]\033[0m %s\n' "$*" >&2; }

say "checking system packages"
bash scripts/install-deps.sh
say "building postclassd (a first build takes a few minutes)"
swift build --product postclassd 2>&1 | grep -E "^(Build|Compiling|error|warning: unable)" | sed 's/^/  /' >&2 || true
BIN="$(swift build --show-bin-path)/postclassd"
[[ -x "$BIN" ]] || { echo "build failed; run 'swift build' to see why" >&2; exit 1; }

WORK="$(mktemp -d)"
DAEMON_PID=""
cleanup() {
    [[ -n "$DAEMON_PID" ]] && kill -TERM "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The rules model stands in until the default model bundle is in place: it labels sarcasm by
# hashtags and correlation by whether a post has an image.
say "starting the daemon on its embedded broker"
"$BIN" run --model rules --batch-wait-ms 50 --metrics-address 127.0.0.1:0 >"$WORK/daemon.out" 2>"$WORK/daemon.log" &
DAEMON_PID=$!
for _ in $(seq 1 100); do grep -q "embedded broker at" "$WORK/daemon.out" 2>/dev/null && break; sleep 0.1; done
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
        printf '{"id":"%s","text":"%s","image":"%s"}\n' "$id" "$text" "$(base64 -w0 "Tests/ModelTests/Fixtures/images/$image")"
    fi
    count=$((count + 1))
done < scripts/demo/posts.tsv > "$WORK/posts.jsonl"
printf 'not json at all\n' >> "$WORK/posts.jsonl"  # one bad record, to show the dead-letter topic
kcat -b "$BOOTSTRAP" -t posts -P -l "$WORK/posts.jsonl"

say "labelled records from topic labels (Ctrl-C to stop):"
if ((BOUNDED)); then
    timeout 60 kcat -b "$BOOTSTRAP" -G demo-reader -o beginning -c "$count" -q -f '%s\n' labels
    say "dead-letter records from topic posts.dlq:"
    timeout 30 kcat -b "$BOOTSTRAP" -G demo-dlq-reader -o beginning -c 1 -q -f 'error.code and message in headers: %h\n' posts.dlq
    say "done: $count posts labelled"
else
    kcat -b "$BOOTSTRAP" -G demo-reader -o beginning -q -f '%s\n' labels
fi
