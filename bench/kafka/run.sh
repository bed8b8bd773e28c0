#!/usr/bin/env bash
# Kafka-layer benchmark: consume-then-produce pass-through of 1 KB and 50 KB messages, on the
# embedded broker and on noida-db, while a feeder produces into the input topic the whole time
# (so the embedded broker's 5 MB-per-partition trimming never bites). Baselines in the same run,
# on the same broker and data: a Python confluent-kafka loop, and kcat's raw consume rate.
#
# Usage: bench/kafka/run.sh [--duration SECONDS] [--sizes "1024 51200"] [--brokers "embedded noida"]
# Output: a table on stdout, and JSON lines in bench/results/kafka-<time>.jsonl.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
source scripts/lib/noida.sh

DURATION=30
SIZES="1024 51200"
BROKERS="embedded noida"
while (($#)); do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --sizes) SIZES="$2"; shift 2 ;;
        --brokers) BROKERS="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

bash scripts/install-deps.sh
echo "[bench] building release binaries" >&2
swift build -c release --product postclassd >&2
swift build -c release --product kafka-bench >&2
BIN="$(swift build -c release --show-bin-path)"
PY=/usr/bin/python3   # Debian's python3, which has python3-confluent-kafka
mkdir -p bench/results
RESULTS="bench/results/kafka-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
WORK="$(mktemp -d)"

BROKER_PID=""
cleanup() {
    local jobs; jobs="$(jobs -p)"
    [[ -n "$jobs" ]] && kill $jobs 2>/dev/null
    [[ -n "$BROKER_PID" ]] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null
    noida_stop
    rm -rf "$WORK"
}
trap cleanup EXIT

# topics for every (size, system) run, so no run reads another's data
TOPICS=""
PARTITIONS=24
for size in $SIZES; do
    for sys in swift python kcat; do TOPICS+="in-$sys-$size:$PARTITIONS,out-$sys-$size:$PARTITIONS,"; done
done
TOPICS="${TOPICS%,}"

start_broker() {
    case "$1" in
        embedded)
            local file; file="$(mktemp -u)"
            "$BIN/postclassd" broker --topics "$TOPICS" --bootstrap-file "$file" --log-level warning >/dev/null &
            BROKER_PID=$!
            for _ in $(seq 1 100); do [[ -s "$file" ]] && break; sleep 0.1; done
            BOOTSTRAP="$(cat "$file")" ;;
        noida)
            noida_start
            BOOTSTRAP="$NOIDA_BOOTSTRAP"
            "$BIN/kafka-bench" create-topics --brokers "$BOOTSTRAP" --topics "$TOPICS" ;;
    esac
}

stop_broker() {
    [[ -n "$BROKER_PID" ]] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
    noida_stop
}

# kcat's raw consume rate. kcat commits too rarely for the paced feeder, so it drains instead:
# fill every partition once with as much as the embedded broker keeps (4 MB), then time kcat
# reading exactly that back, again and again until DURATION seconds of draining are summed.
run_kcat() {
    local in="$1" size="$2" per=$((4000000 / $2)) drained=0 count=0 n seconds
    "$BIN/kafka-bench" feed --brokers "$BOOTSTRAP" --topic "$in" --partitions "$PARTITIONS" --per-partition "$per" \
        --size "$size" >/dev/null
    while "$PY" -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$drained" "$DURATION"; do
        read -r n seconds < <(kcat -C -b "$BOOTSTRAP" -t "$in" -o "-$per" -e -q -f '%S\n' 2>/dev/null | "$PY" bench/kafka/count_stream.py)
        drained="$("$PY" -c "import sys; print(float(sys.argv[1]) + float(sys.argv[2]))" "$drained" "$seconds")"
        count=$((count + n))
    done
    echo "{\"messages\": $count, \"bytes\": $((count * size)), \"seconds\": $drained}"
}

# run_one BROKER SIZE SYSTEM: feed the input topic for the whole window while SYSTEM consumes it.
run_one() {
    local broker="$1" size="$2" sys="$3" in="in-$3-$2" out="out-$3-$2" result
    if [[ "$sys" == kcat ]]; then
        result="$(run_kcat "$in" "$size")"
        report "$broker" "$size" "$sys" "$result"
        return
    fi
    "$BIN/kafka-bench" feed --brokers "$BOOTSTRAP" --topic "$in" --partitions "$PARTITIONS" --group "g-$in" \
        --size "$size" --duration "$((DURATION + 5))" >/dev/null &
    local feeder=$!
    case "$sys" in
        swift) result="$("$BIN/kafka-bench" passthrough --brokers "$BOOTSTRAP" --input "$in" --output "$out" --group "g-$in" --duration "$DURATION")" ;;
        python) result="$("$PY" bench/kafka/passthrough.py --brokers "$BOOTSTRAP" --input "$in" --output "$out" --group "g-$in" --duration "$DURATION")" ;;
    esac
    wait "$feeder" || true
    report "$broker" "$size" "$sys" "$result"
}

# report BROKER SIZE SYSTEM JSON: adds rates and appends one JSON line to the results.
report() {
    echo "$4" | "$PY" -c '
import json, sys
r = json.loads(sys.stdin.read()); b, size, sys_ = sys.argv[1:4]
r.update(broker=b, size=int(size), system=sys_)
s = r["seconds"] or 1
r["msgs_per_s"] = r["messages"] / s
r["mb_per_s"] = r["bytes"] / s / 1e6
print(json.dumps(r))' "$1" "$2" "$3" | tee -a "$RESULTS" >&2
}

# A fresh broker for every run: noida keeps everything in memory, and gigabytes from earlier
# runs would slow or stop it.
for broker in $BROKERS; do
    for size in $SIZES; do
        for sys in kcat python swift; do
            start_broker "$broker"
            run_one "$broker" "$size" "$sys"
            stop_broker
        done
    done
done

"$PY" bench/kafka/report.py "$RESULTS"
