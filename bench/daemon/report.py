#!/usr/bin/env python3
"""The whole-daemon benchmark table, each daemon run as a share of the bare Kafka layer's rate."""
import json, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
base = next((r["posts_per_s"] for r in rows if r["run"] == "kafka-layer"), None)
print(f"{'run':12} {'posts/s':>10} {'vs kafka layer':>15} {'p50 ms':>8} {'p99 ms':>8}  (latency at half the saturated rate)")
for r in rows:
    share = f"{100 * r['posts_per_s'] / base:.0f}%" if base else "-"
    p50 = f"{r['p50_ms']:.1f}" if "p50_ms" in r else "-"
    p99 = f"{r['p99_ms']:.1f}" if "p99_ms" in r else "-"
    print(f"{r['run']:12} {r['posts_per_s']:>10.0f} {share:>15} {p50:>8} {p99:>8}")
