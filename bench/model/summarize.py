"""Joins the rounds of bench/model/run.sh: writes the JSON and prints a table.

Arguments: OUT, then per round the Swift JSON and the baselines JSON. For each engine and batch
size the table shows the best round's median (the machine may be shared; the best round is the
one least disturbed), and the ratios of those.
"""
import json
import sys

out, rounds = sys.argv[1], sys.argv[2:]
swift_runs = [json.loads(x) for x in rounds[0::2]]
base_runs = [json.loads(x) for x in rounds[1::2]]
with open(out, "w") as f:
    json.dump({"swift": swift_runs, "baselines": base_runs}, f, indent=1)


def best(rows_per_round):
    by_batch = {}
    for rows in rows_per_round:
        for r in rows:
            if r["batch"] not in by_batch or r["sentences_per_s"] > by_batch[r["batch"]]["sentences_per_s"]:
                by_batch[r["batch"]] = r
    return by_batch


swift = best([s["results"] for s in swift_runs])
ort = best([b["engines"]["onnxruntime"] for b in base_runs])
pt = best([b["engines"]["pytorch"] for b in base_runs])
peak = max(s["sgemm_peak_gflops"] for s in swift_runs)
first = swift_runs[0]
print(f"all-MiniLM-L6-v2, {first['length']} tokens, {first['threads']} threads, {len(swift_runs)} rounds (best round per engine); "
      f"OpenBLAS sgemm peak {peak:.1f} GFLOP/s (best of sizes 1024-2048)")
print(f"numpy reference vs transformers max abs diff: {base_runs[0]['numpy_reference_vs_transformers_max_abs']:.2e}")
print(f"{'batch':>5} {'swift sent/s':>12} {'ORT sent/s':>10} {'torch sent/s':>12} {'vs ORT':>7} {'vs torch':>8} {'GFLOP/s':>8} {'of peak':>7}")
for b in sorted(swift):
    r = swift[b]
    s, o, p = r["sentences_per_s"], ort[b]["sentences_per_s"], pt[b]["sentences_per_s"]
    print(f"{b:>5} {s:>12.1f} {o:>10.1f} {p:>12.1f} {s / o:>6.2f}x {s / p:>7.2f}x {r['gflops']:>8.1f} {r['gflops'] / peak:>6.0%}")
print(f"(medians; every round in {out})")
