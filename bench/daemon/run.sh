#!/usr/bin/env bash
# Whole-daemon pass-through benchmark: `postclassd run --model passthrough` on 1 KB posts at
# batch sizes 1, 8 and 32, against the bare Kafka layer's pass-through (kafka-bench) measured in
# the same run on the same broker, with the same paced feeder. Reports posts/s at saturation, and
# end-to-end latency (p50, p99; from each record's Kafka timestamp to its output's delivery, read
# from the daemon's own histogram) in a second window fed at half that rate, so the latency is
# the pipeline's and not a backlog's.
#
# Rounds repeat the whole sequence (fresh topics each round) so that the shares are quoted as
# medians over rounds, each round's daemon rate against that round's Kafka layer.
#
# On noida-db the runs also include exactly-once delivery (eos-MS: batch 8, --delivery
# exactly-once, --transaction-interval MS for 10, 100 and 1000 ms), beside daemon-8, its
# at-least-once twin, in the same rounds. Not on the embedded broker: librdkafka 2.0.2's mock
# cluster keeps no offsets committed in transactions (its TxnOffsetCommit only answers), so the
# feeder, which paces on the group's commits, would stall. The latency of an eos run is to the
# output's delivery, as for the others; a read_committed reader sees it once its transaction
# commits, up to one interval plus the commit later.
#
# Usage: bench/daemon/run.sh [--duration SECONDS] [--rounds N] [--first-round K] [--broker embedded|noida] [--runs "daemon-8 eos-100 ..."]
# --first-round K numbers the rounds from K (their order of runs rotates by round number): to
# complete an interrupted run, then report both files together (bench/daemon/report.py A B).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
source scripts/lib/noida.sh
DURATION=30
ROUNDS=3
BROKER=embedded
SIZE=1024
# The embedded broker (librdkafka's mock cluster) holds every Fetch for the whole fetch.wait.max.ms
# (500 ms by default), even when data arrives: a caught-up consumer then waits ~250 ms per fetch
# on average. Both the daemon and the Kafka layer's loop get 10 ms, as in bench/kafka and
# bench/e2e; on a real broker that only makes idle fetches more frequent.
FETCH_WAIT_MS=10
RUNS_GIVEN=""
FIRST_ROUND=1
while (($#)); do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --broker) BROKER="$2"; shift 2 ;;
        --runs) RUNS_GIVEN="$2"; shift 2 ;;
        --first-round) FIRST_ROUND="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
LAST_ROUND=$((FIRST_ROUND + ROUNDS - 1))
bash scripts/install-deps.sh
swift build -c release --product postclassd >&2
swift build -c release --product kafka-bench >&2
BIN="$(swift build -c release --show-bin-path)"
PY=python3
mkdir -p bench/results
RESULTS="bench/results/daemon-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
PARTITIONS=24
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    # Only these: a bare `wait` would also wait for noida-db, which runs until noida_stop.
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    noida_stop
    rm -rf "$WORK"
}
trap cleanup EXIT

RUNS="kafka-layer daemon-1 daemon-8 daemon-32"
[[ "$BROKER" == noida ]] && RUNS+=" eos-10 eos-100 eos-1000"
if [[ -n "$RUNS_GIVEN" ]]; then
    RUNS="$RUNS_GIVEN"
    if [[ "$BROKER" != noida && "$RUNS" == *eos-* ]]; then
        echo "[bench] eos runs need --broker noida: the embedded broker keeps no offsets committed in transactions" >&2
        exit 2
    fi
fi
# round_topics ROUND: the topics of one round's runs (the dead-letter topic not included).
round_topics() {
    local run topics=""
    for run in $RUNS; do topics+="in-$run-r$1:$PARTITIONS,out-$run-r$1:$PARTITIONS,"; done
    echo "${topics%,}"
}
if [[ "$BROKER" == embedded ]]; then
    TOPICS=""
    for round in $(seq "$FIRST_ROUND" "$LAST_ROUND"); do TOPICS+="$(round_topics "$round"),"; done
    "$BIN/postclassd" broker --topics "${TOPICS}dlq:1" --bootstrap-file "$WORK/bootstrap" --log-level warning >/dev/null &
    PIDS+=($!)
    # Creating the topics of many rounds (48 partitions a run) takes the mock cluster a while.
    for _ in $(seq 1 1200); do [[ -s "$WORK/bootstrap" ]] && break; sleep 0.1; done
    [[ -s "$WORK/bootstrap" ]] || { echo "[bench] the embedded broker did not start within 120 s" >&2; exit 1; }
    BOOTSTRAP="$(cat "$WORK/bootstrap")"
    echo "[bench] embedded broker at $BOOTSTRAP" >&2
fi

# noida_round ROUND: a fresh noida-db holding that round's topics. noida-db keeps every record
# in memory and gives little back: one broker for 3 rounds grew past 19 GB and was killed for
# memory at 24 GB, even with retention. So each round gets its own, and each partition keeps
# 8 MiB in 2 MiB segments: more than the daemon lags behind the feed (the feeder holds that to
# 4 MB), and never read back (the rates come from the daemon's metrics).
noida_round() {
    noida_stop
    noida_start
    BOOTSTRAP="$NOIDA_BOOTSTRAP"
    "$BIN/kafka-bench" create-topics --brokers "$BOOTSTRAP" --topics "$(round_topics "$1"),dlq:1" \
        --config retention.bytes=8388608 --config segment.bytes=2097152
    echo "[bench] round $1: noida-db at $BOOTSTRAP" >&2
}

# rotated N WORD...: the words starting at the N-th (mod their count), wrapping around.
rotated() {
    local n="$1"; shift
    local words=("$@") i
    for ((i = 0; i < ${#words[@]}; i++)); do echo "${words[(n + i) % ${#words[@]}]}"; done
}

# The order of the runs rotates from round to round, so the Kafka layer is not always first.
for round in $(seq "$FIRST_ROUND" "$LAST_ROUND"); do
[[ "$BROKER" == noida ]] && noida_round "$round"
# shellcheck disable=SC2086
for run in $(rotated "$((round - 1))" $RUNS); do
    echo "[bench] round $round of $FIRST_ROUND-$LAST_ROUND: $run" >&2
    in="in-$run-r$round" out="out-$run-r$round" group="g-$run-r$round"
    "$BIN/kafka-bench" feed --brokers "$BOOTSTRAP" --topic "$in" --partitions "$PARTITIONS" --group "$group" \
        --size "$SIZE" --posts --duration "$((DURATION + 8))" >/dev/null &
    feeder=$!
    if [[ "$run" == kafka-layer ]]; then
        "$BIN/kafka-bench" passthrough --brokers "$BOOTSTRAP" --input "$in" --output "$out" --group "$group" \
            --duration "$DURATION" --consumer-property "fetch.wait.max.ms=$FETCH_WAIT_MS" > "$WORK/result.json"
        "$PY" - "$WORK/result.json" "$RESULTS" "$round" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
row = {"run": "kafka-layer", "round": int(sys.argv[3]), "posts_per_s": r["messages"] / (r["seconds"] or 1)}
print(json.dumps(row)); open(sys.argv[2], "a").write(json.dumps(row) + "\n")
PY
    else
        if [[ "$run" == eos-* ]]; then
            batch=8
            delivery=(--delivery exactly-once --transaction-interval "${run#eos-}" --transactional-id "bench-$run-r$round")
        else
            batch="${run#daemon-}"
            delivery=(--kafka auto.commit.interval.ms=100)
        fi
        "$BIN/postclassd" run --brokers "$BOOTSTRAP" --model passthrough --batch-size "$batch" --input-topics "$in" \
            --output-topic "$out" --dlq-topic dlq --group-id "$group" --metrics-address 127.0.0.1:0 \
            "${delivery[@]}" --kafka "fetch.wait.max.ms=$FETCH_WAIT_MS" --log-level info 2> "$WORK/daemon.log" >/dev/null &
        daemon=$!
        for _ in $(seq 1 100); do grep -q "metrics, health" "$WORK/daemon.log" && break; sleep 0.1; done
        port="$(grep -o 'http://127.0.0.1:[0-9]*/metrics' "$WORK/daemon.log" | head -1 | sed 's/.*:\([0-9]*\)\/metrics/\1/')"
        # Saturated window for throughput.
        "$PY" bench/daemon/measure.py --port "$port" --topic "$out" --duration "$DURATION" --run "$run" --results "$WORK/saturated.jsonl"
        wait "$feeder" || true
        rate="$("$PY" -c "import json,sys; print(int(json.loads(open(sys.argv[1]).read().splitlines()[-1])['posts_per_s'] / 2))" "$WORK/saturated.jsonl")"
        # Half-rate window for latency.
        "$BIN/kafka-bench" feed --brokers "$BOOTSTRAP" --topic "$in" --partitions "$PARTITIONS" --group "$group" \
            --size "$SIZE" --posts --rate "$rate" --duration "$((DURATION + 8))" >/dev/null &
        feeder=$!
        # The saturated feed leaves a backlog of up to 4 MB per partition: the window starts once it is gone.
        "$PY" bench/daemon/measure.py --port "$port" --topic "$out" --duration "$DURATION" --run "$run" --results "$WORK/paced.jsonl" --settle 4
        "$PY" - "$WORK/saturated.jsonl" "$WORK/paced.jsonl" "$RESULTS" "$rate" "$round" <<'PY'
import json, sys
sat = json.loads(open(sys.argv[1]).read().splitlines()[-1]); paced = json.loads(open(sys.argv[2]).read().splitlines()[-1])
row = {"run": sat["run"], "round": int(sys.argv[5]), "posts_per_s": sat["posts_per_s"], "latency_at_rate": int(sys.argv[4]),
       "p50_ms": paced["p50_ms"], "p99_ms": paced["p99_ms"]}
print(json.dumps(row)); open(sys.argv[3], "a").write(json.dumps(row) + "\n")
PY
        kill -TERM "$daemon"; wait "$daemon" || true
    fi
    wait "$feeder" || true
done
done
"$PY" bench/daemon/report.py "$RESULTS"
