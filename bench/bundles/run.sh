#!/usr/bin/env bash
# Whole-bundle throughput: `postclassd classify` (release build) on the same text-only posts with
# each bundle given, in rounds whose order rotates, medians quoted; the first bundle is the baseline of the
# ratios. Each round also times one post, and posts/s is (POSTS - 1) / (t(POSTS) - t(1)), so that
# loading the bundle (GloVe alone takes a second) is not counted as inference. Measures what a head costs beside its quality (e.g. a fine-tuned sarcasm head's adapted
# encoder layers, or a larger encoder).
#
# Usage: [ROUNDS=5] [POSTS=512] [THREADS=2] bench/bundles/run.sh BUNDLE [BUNDLE...]
#   e.g. bench/bundles/run.sh models/default models/sarcasm-default
# Posts: iSarcasmEval's training tweets (../shared/data/isarcasmeval), repeated to POSTS.
# Results: bench/results/bundles-<timestamp>.json and a table; the CPU's kernel body is printed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
ROUNDS="${ROUNDS:-5}"
POSTS="${POSTS:-512}"
THREADS="${THREADS:-2}"
[[ $# -ge 1 ]] || { sed -n '2,10p' "$0" >&2; exit 2; }
for bundle in "$@"; do
    [[ -f "$bundle/manifest.json" ]] || { echo "[bench] $bundle has no manifest.json: pass bundle folders" >&2; exit 2; }
done
DATA="$ROOT/../shared/data/isarcasmeval/train.En.csv"
[[ -f "$DATA" ]] || { echo "[bench] missing $DATA (../shared beside the repository)" >&2; exit 1; }

echo "[bench] building postclassd (release)" >&2
swift build -c release --product postclassd >&2
BIN="$ROOT/.build/release/postclassd"
mkdir -p bench/results
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
python3 - "$DATA" "$POSTS" > "$WORK/posts.jsonl" <<'PYEOF'
import csv, json, sys
rows = [r["tweet"] for r in csv.DictReader(open(sys.argv[1], newline=""))]
for i in range(int(sys.argv[2])):
    print(json.dumps({"id": f"p{i}", "text": rows[i % len(rows)]}))
PYEOF
head -1 "$WORK/posts.jsonl" > "$WORK/one.jsonl"

# Seconds of one classify run: timed FILE BUNDLE
timed() {
    local start end
    start=$(date +%s.%N)
    "$BIN" classify "$1" --model "$2" --threads "$THREADS" > /dev/null 2> "$WORK/err"
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
declare -A SECONDS_OF
BUNDLES=("$@")
for round in $(seq 1 "$ROUNDS"); do
    # The order rotates each round, so no bundle always runs first (or on a warmer cache).
    shift_by=$(( (round - 1) % ${#BUNDLES[@]} ))
    for bundle in "${BUNDLES[@]:$shift_by}" "${BUNDLES[@]:0:$shift_by}"; do
        one=$(timed "$WORK/one.jsonl" "$bundle")
        all=$(timed "$WORK/posts.jsonl" "$bundle")
        SECONDS_OF["$bundle"]+="$(echo "$all - $one" | bc) "
        [[ $round == 1 ]] && echo "[bench] $bundle: $(tail -1 "$WORK/err")" >&2
    done
done

python3 - "$POSTS" "$ROUNDS" "$THREADS" "$(date -u +%Y%m%dT%H%M%SZ)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)" "$@" <<PYEOF
import json, statistics, sys
posts, rounds, threads, stamp, cpu = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
bundles = sys.argv[6:]
times = {$(for b in "$@"; do printf '"%s": [%s], ' "$b" "$(echo ${SECONDS_OF[$b]} | tr ' ' ',')"; done)}
base = statistics.median(times[bundles[0]])
print(f"{'bundle':40} {'median s':>9} {'posts/s':>9} {'vs first':>9}   ({posts} posts less one, {rounds} rounds in rotating order, {threads} threads, {cpu})")
rows = []
for b in bundles:
    m = statistics.median(times[b])
    rows.append({"bundle": b, "seconds": times[b], "median_seconds": m, "posts_per_second": (posts - 1) / m})
    print(f"{b:40} {m:9.2f} {(posts - 1) / m:9.1f} {base / m:9.2f}x")
out = f"bench/results/bundles-{stamp}.json"
json.dump({"posts": posts, "rounds": rounds, "threads": threads, "cpu": cpu, "results": rows}, open(out, "w"), indent=2)
print(f"written {out}")
PYEOF
