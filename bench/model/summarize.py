"""Joins the rounds of bench/model/run.sh: writes the JSON and prints a table.

Arguments: OUT, then per round the Swift JSON and the baselines JSON. Engines alternate within a
round, so a ratio is taken within each round (Swift against the baseline measured next to it)
and the table quotes the median over rounds: of each engine's rate, of each ratio, and of the
share of that round's compute peak. The per-round ratios are printed too, since this machine
is shared and single rounds move by tens of percent.

"of peak" is against the CPU's compute peak (bench/kernels/fma_peak.c on the same threads: a loop
of independent FMAs with the widest body, AVX-512 or AVX2 + FMA). The OpenBLAS sgemm column is
kept for reference only: with OPENBLAS_CORETYPE=Haswell it runs AVX2 kernels while ours run
AVX-512, so it is no peak, and shares of it above 100% were not a sign of anything.
"""
import json
import statistics
import sys

out, rounds = sys.argv[1], sys.argv[2:]
swift_runs = [json.loads(x) for x in rounds[0::2]]
base_runs = [json.loads(x) for x in rounds[1::2]]
with open(out, "w") as f:
    json.dump({"swift": swift_runs, "baselines": base_runs}, f, indent=1)


def by_batch(rows):
    return {r["batch"]: r for r in rows}


swift = [by_batch(s["results"]) for s in swift_runs]
ort = [by_batch(b["engines"]["onnxruntime"]) for b in base_runs]
pt = [by_batch(b["engines"]["pytorch"]) for b in base_runs]
sgemm = [s["sgemm_peak_gflops"] for s in swift_runs]
# Rounds from before issue 29 have no FMA peak: their share of it is left out.
peaks = [s["fma_peak"]["gflops"] if "fma_peak" in s else None for s in swift_runs]
bodies = sorted({s["fma_peak"]["body"] for s in swift_runs if "fma_peak" in s})
med = statistics.median


def med_known(values):
    """The median of the values that are not None, or None."""
    values = [v for v in values if v is not None]
    return med(values) if values else None


first = swift_runs[0]
fma = med_known(peaks)
print(f"all-MiniLM-L6-v2, {first['length']} tokens, {first['threads']} threads, {len(swift_runs)} rounds, medians over rounds; "
      f"Swift kernels: {first.get('kernels', '?')}")
if fma is not None:
    per_core = med_known(s["fma_peak"]["gflops_per_core"] if "fma_peak" in s else None for s in swift_runs)
    print(f"compute peak {fma:.1f} GFLOP/s on {first['threads']} threads ({per_core:.1f} per core, FMA loop, {'/'.join(bodies)} body)")
print(f"OpenBLAS sgemm {med(sgemm):.1f} GFLOP/s (best of sizes 1024-2048; reference only, not a peak: see summarize.py)")
print(f"numpy reference vs transformers max abs diff: {base_runs[0]['numpy_reference_vs_transformers_max_abs']:.2e}")
# Rounds from before issue 29 part 2 have no int8 baseline, and only PRECISION_AB=bf16 runs a bf16 variant.
int8 = [by_batch(b["engines"]["onnxruntime-int8"]) if "onnxruntime-int8" in b["engines"] else None for b in base_runs]
has_int8 = all(r is not None for r in int8)
has_bf16 = all("variant" in r and "precision" in r["variant"] for s in swift for r in s.values())
if has_int8:
    b0 = base_runs[0]
    print(f"ONNX Runtime int8 (dynamic quantization) against fp32 ORT, token states of {b0.get('onnxruntime_int8_accuracy_sentences', '?')} tweets: "
          f"cosine min {b0['onnxruntime_int8_token_cosine_min']:.4f}, mean {b0.get('onnxruntime_int8_token_cosine_mean', float('nan')):.4f}, "
          f"{100 * b0.get('onnxruntime_int8_token_cosine_below_0999', float('nan')):.1f}% of tokens below 0.999; "
          f"sentence vectors (mean of tokens) cosine min {b0.get('onnxruntime_int8_sentence_cosine_min', float('nan')):.4f}")
if has_bf16:
    bf16_bodies = sorted({r["variant"]["bf16_body"] for s in swift for r in s.values()})
    print(f"Swift bf16: the same encoder with bf16 products ({'/'.join(bf16_bodies)} body), passes alternated with fp32")
header = f"{'batch':>5} {'swift sent/s':>12} {'ORT sent/s':>10} {'torch sent/s':>12} {'vs ORT':>7} {'vs torch':>8} {'GFLOP/s':>8} {'of peak':>7} {'of sgemm':>8}"
if has_int8:
    header += f" {'ORT int8':>9} {'vs int8':>7}"
if has_bf16:
    header += f" {'bf16 sent/s':>11} {'bf16/fp32':>9} {'bf16 vs ORT':>11}" + (f" {'bf16 vs int8':>12}" if has_int8 else "")
print(header + "  vs ORT per round")
for b in sorted(swift[0]):
    s = [r[b]["sentences_per_s"] for r in swift]
    o = [r[b]["sentences_per_s"] for r in ort]
    p = [r[b]["sentences_per_s"] for r in pt]
    vs_ort = [x / y for x, y in zip(s, o)]
    vs_pt = [x / y for x, y in zip(s, p)]
    gflops = [r[b]["gflops"] for r in swift]
    of_peak = med_known(g / k if k else None for g, k in zip(gflops, peaks))
    of_sgemm = med(g / k for g, k in zip(gflops, sgemm))
    rounds_text = " ".join(f"{x:.2f}x" for x in vs_ort)
    peak_text = "-" if of_peak is None else f"{of_peak:.0%}"
    line = (f"{b:>5} {med(s):>12.1f} {med(o):>10.1f} {med(p):>12.1f} {med(vs_ort):>6.2f}x {med(vs_pt):>7.2f}x "
            f"{med(gflops):>8.1f} {peak_text:>7} {of_sgemm:>8.0%}")
    if has_int8:
        q = [r[b]["sentences_per_s"] for r in int8]
        line += f" {med(q):>9.1f} {med(x / y for x, y in zip(s, q)):>6.2f}x"
    if has_bf16:
        h = [r[b]["variant"]["sentences_per_s"] for r in swift]
        line += (f" {med(h):>11.1f} {med(r[b]['variant']['speedup_over_fp32'] for r in swift):>8.2f}x"
                 f" {med(x / y for x, y in zip(h, o)):>10.2f}x")
        if has_int8:
            line += f" {med(x / y for x, y in zip(h, q)):>11.2f}x"
    print(line + "  " + rounds_text)
print(f"(every round in {out})")
