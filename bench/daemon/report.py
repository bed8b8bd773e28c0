#!/usr/bin/env python3
"""The whole-daemon benchmark table: each daemon run as a share of the bare Kafka layer's rate.

Each round's daemon rates are divided by that round's Kafka-layer rate (measured minutes apart on
the same broker), and the table quotes the median over rounds of rates, shares and latencies,
with every round's share listed so the spread is visible.
"""
import json
import statistics
import sys
from collections import defaultdict

# One results file, or several (an interrupted run completed with --first-round).
rows = [json.loads(l) for path in sys.argv[1:] for l in open(path) if l.strip()]
base = {r.get("round", 1): r["posts_per_s"] for r in rows if r["run"] == "kafka-layer"}
by_run = defaultdict(list)
for r in rows:
    by_run[r["run"]].append(r)


def median(values):
    return statistics.median(values) if values else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


rounds = len(base)
print(f"median of {rounds} round(s); latency at half the saturated rate")
print(f"{'run':12} {'posts/s':>10} {'vs kafka layer':>15} {'per round':>22} {'p50 ms':>8} {'p99 ms':>8}")
for run, rs in by_run.items():
    shares = [100 * r["posts_per_s"] / base[r.get("round", 1)] for r in rs if base.get(r.get("round", 1))]
    share = fmt(median(shares), ".0f") + "%" if shares else "-"
    per_round = " ".join(f"{s:.0f}%" for s in shares)
    print(f"{run:12} {median([r['posts_per_s'] for r in rs]):>10.0f} {share:>15} {per_round:>22} "
          f"{fmt(median([r['p50_ms'] for r in rs if 'p50_ms' in r]), '.1f'):>8} "
          f"{fmt(median([r['p99_ms'] for r in rs if 'p99_ms' in r]), '.1f'):>8}")
