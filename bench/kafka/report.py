#!/usr/bin/env python3
"""Prints the Kafka-layer benchmark table from its JSON lines, with the Swift loop's rate as a
ratio of the Python loop's and of kcat's raw consume, measured in the same run."""
import json, sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
by = {(r["broker"], r["size"], r["system"]): r for r in rows}
print(f"{'broker':9} {'size':>6} {'system':7} {'msgs/s':>10} {'MB/s':>8} {'vs python':>10} {'vs kcat':>8}")
for (broker, size, system), r in sorted(by.items()):
    py = by.get((broker, size, "python"))
    kc = by.get((broker, size, "kcat"))
    vs_py = f"{r['msgs_per_s'] / py['msgs_per_s']:.2f}x" if py and py["msgs_per_s"] else "-"
    vs_kc = f"{100 * r['msgs_per_s'] / kc['msgs_per_s']:.0f}%" if kc and kc["msgs_per_s"] else "-"
    print(f"{broker:9} {size:>6} {system:7} {r['msgs_per_s']:>10.0f} {r['mb_per_s']:>8.1f} {vs_py:>10} {vs_kc:>8}")
