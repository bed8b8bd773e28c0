#!/usr/bin/env bash
# Kafka-layer benchmark: consume-then-produce pass-through of 1 KB and 50 KB messages, on the
# embedded broker and on noida-db, while a feeder produces into the input topic the whole time
# (so the embedded broker's 5 MB-per-partition trimming never bites). Baselines in the same run,
# on the same broker and data: a Python confluent-kafka loop, and kcat's raw consume rate.
#
# Usage: bench/kafka/run.sh [--duration SECONDS] [--rounds N] [--sizes "1024 51200"] [--brokers "embedded noida"]
# Defaults: 30 s per run, 3 rounds; each round runs every system once per (broker, size), in an
# order that rotates from round to round, so no system always runs first on a fresh machine.
# Output: a table on stdout (medians over rounds, and the median of each round's ratios), and
# JSON lines in bench/results/kafka-<time>.jsonl.
#
# Two settings shape what the embedded broker (librdkafka's mock cluster) can serve, and both
# apply to every system alike:
# - The mock answers a Fetch with one stored producer batch per partition, so the input's batch
#   size caps any consumer's rate there. The feeder lingers FEED_LINGER_MS (50 ms, a common
#   throughput setting) so its batches fill up, as a busy real producer's do.
# - The mock holds an empty Fetch for the whole fetch.wait.max.ms (500 ms by default) without
#   waking when data arrives, stalling a consumer that has caught up. Both loops set
#   fetch.wait.max.ms=10 (LOOP_FETCH_WAIT_MS), and kcat gets the same (-X); on a real broker
#   that only makes idle fetches more frequent. postclassd itself sets no fetch.* property: these
#   are the only fetch settings any system here gets.
# The Python loop polls like the Swift one: block for the first message, then take what is
# already queued (bench/kafka/passthrough.py's take_available), not librdkafka's wait for a
# full batch.
# Both loops' producers linger LOOP_LINGER_MS (5 ms: librdkafka's default and postclassd's).
# On noida-db, which the pass-through loads three times per message (the feeder's produce, the
# loop's fetch and its produce) against kcat's once, a longer linger fills produce batches and cuts
# the broker's CPU per message: LOOP_LINGER_MS=50 is the knob for that comparison.
# Beside each run, the broker process's CPU seconds over it (broker us/msg and busy share in the
# table): every broker here shares the two cores with the loops, so it says when it is the limit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
source scripts/lib/noida.sh

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

DURATION=30
ROUNDS=3
FEED_LINGER_MS="${FEED_LINGER_MS:-50}"
LOOP_FETCH_WAIT_MS="${LOOP_FETCH_WAIT_MS:-10}"
LOOP_COMMIT_MS="${LOOP_COMMIT_MS:-100}"
LOOP_LINGER_MS="${LOOP_LINGER_MS:-5}"
FEED_CHECK_MS="${FEED_CHECK_MS:-50}"
SIZES="1024 51200"
BROKERS="embedded noida"
while (($#)); do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --sizes) SIZES="$2"; shift 2 ;;
        --brokers) BROKERS="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
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
PARTITIONS="${PARTITIONS:-24}"
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
            # noida-db keeps every record in memory: at 50 KB, 30 s of pass-through is over
            # 10 GB, enough to starve this 24 GB machine. Retention keeps each partition to
            # 64 MB, far behind where any loop reads (the feeder stays 4 MB ahead of commits).
            "$BIN/kafka-bench" create-topics --brokers "$BOOTSTRAP" --topics "$TOPICS" \
                --config retention.bytes=67108864 --config segment.bytes=8388608 ;;
    esac
}

stop_broker() {
    [[ -n "$BROKER_PID" ]] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
    noida_stop
}

# CPU seconds (user + system, all threads) the broker process has used so far: every broker here
# runs on the same two cores as the loops, so its busy share says when it is the limit.
# noida-db's launcher runs the server as its child, and the server is what does the work.
broker_pid() {
    if [[ -n "$BROKER_PID" ]]; then echo "$BROKER_PID"; return; fi
    local server; server="$(pgrep -P "$NOIDA_PID" | head -n 1 || true)"
    echo "${server:-$NOIDA_PID}"
}
broker_cpu() {
    "$PY" -c 'import os, sys
f = open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")", 1)[1].split()
print((int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"))' "$(broker_pid)"
}
now() { "$PY" -c 'import time; print(time.monotonic())'; }

# with_broker_cpu JSON CPU0 T0: JSON plus the broker's CPU seconds and the wall seconds since CPU0, T0.
with_broker_cpu() {
    "$PY" -c 'import json, sys
r = json.loads(sys.argv[1]); r["broker_cpu_seconds"] = float(sys.argv[2]) - float(sys.argv[3])
r["broker_wall_seconds"] = float(sys.argv[4]) - float(sys.argv[5]); print(json.dumps(r))' \
        "$1" "$(broker_cpu)" "$2" "$(now)" "$3"
}

# kcat's raw consume rate. kcat commits too rarely for the paced feeder, so it drains instead:
# fill every partition once with as much as the embedded broker keeps (4 MB), then time kcat
# reading exactly that back, again and again until DURATION seconds of draining are summed.
run_kcat() {
    local in="$1" size="$2" per=$((4000000 / $2)) drained=0 count=0 n seconds cpu0 t0
    "$BIN/kafka-bench" feed --brokers "$BOOTSTRAP" --topic "$in" --partitions "$PARTITIONS" --per-partition "$per" \
        --size "$size" --linger-ms "$FEED_LINGER_MS" >/dev/null
    # The broker's CPU over all the drains, kcat's start-ups between them included.
    cpu0="$(broker_cpu)"; t0="$(now)"
    while "$PY" -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$drained" "$DURATION"; do
        read -r n seconds < <(kcat -C -b "$BOOTSTRAP" -X "fetch.wait.max.ms=$LOOP_FETCH_WAIT_MS" -t "$in" -o "-$per" -e -q -f '%S\n' 2>/dev/null | "$PY" bench/kafka/count_stream.py)
        drained="$("$PY" -c "import sys; print(float(sys.argv[1]) + float(sys.argv[2]))" "$drained" "$seconds")"
        count=$((count + n))
    done
    with_broker_cpu "{\"messages\": $count, \"bytes\": $((count * size)), \"seconds\": $drained}" "$cpu0" "$t0"
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
        --size "$size" --linger-ms "$FEED_LINGER_MS" --check-interval-ms "$FEED_CHECK_MS" --duration "$((DURATION + 5))" >/dev/null &
    local feeder=$! cpu0 t0
    # The broker's CPU while the loop runs: the feeder's produce, the loop's fetches and produce.
    cpu0="$(broker_cpu)"; t0="$(now)"
    case "$sys" in
        swift) result="$("$BIN/kafka-bench" passthrough --brokers "$BOOTSTRAP" --input "$in" --output "$out" --group "g-$in" --duration "$DURATION" \
            --consumer-property "fetch.wait.max.ms=$LOOP_FETCH_WAIT_MS" --consumer-property "auto.commit.interval.ms=$LOOP_COMMIT_MS" \
            --producer-property "linger.ms=$LOOP_LINGER_MS")" ;;
        python) result="$("$PY" bench/kafka/passthrough.py --brokers "$BOOTSTRAP" --input "$in" --output "$out" --group "g-$in" --duration "$DURATION" \
            --consumer-property "fetch.wait.max.ms=$LOOP_FETCH_WAIT_MS" --consumer-property "auto.commit.interval.ms=$LOOP_COMMIT_MS" \
            --producer-property "linger.ms=$LOOP_LINGER_MS")" ;;
    esac
    result="$(with_broker_cpu "$result" "$cpu0" "$t0")"
    wait "$feeder" || true
    report "$broker" "$size" "$sys" "$result"
}

# report BROKER SIZE SYSTEM JSON: adds rates and appends one JSON line to the results.
report() {
    echo "$4" | "$PY" -c '
import json, sys
r = json.loads(sys.stdin.read()); b, size, sys_, round_ = sys.argv[1:5]
r.update(broker=b, size=int(size), system=sys_, round=int(round_))
s = r["seconds"] or 1
r["msgs_per_s"] = r["messages"] / s
r["mb_per_s"] = r["bytes"] / s / 1e6
print(json.dumps(r))' "$1" "$2" "$3" "$ROUND" | tee -a "$RESULTS" >&2
}

# rotated N WORD...: the words starting at the N-th (mod their count), wrapping around.
rotated() {
    local n="$1"; shift
    local words=("$@") i
    for ((i = 0; i < ${#words[@]}; i++)); do echo "${words[(n + i) % ${#words[@]}]}"; done
}

# A fresh broker for every run: noida keeps everything in memory, and gigabytes from earlier
# runs would slow or stop it. Rounds interleave the systems, and the order rotates each round
# (kcat python swift, then python swift kcat, ...), so a slow spell on this machine, or running
# first, falls on all of them.
for ROUND in $(seq 1 "$ROUNDS"); do
    for broker in $BROKERS; do
        for size in $SIZES; do
            for sys in $(rotated "$((ROUND - 1))" kcat python swift); do
                start_broker "$broker"
                run_one "$broker" "$size" "$sys"
                stop_broker
            done
        done
    done
done

"$PY" bench/kafka/report.py "$RESULTS"
