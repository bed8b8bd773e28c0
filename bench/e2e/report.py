#!/usr/bin/env python3
"""The bench/e2e report (markdown) from its results file: throughput and latency side by side with
the Swift/Python ratios and issue 8's bar, CPU per post, and where the time goes per stage.

The Python baseline of a cell is its best variant (highest posts/s) in each round, named in the
table, because a baseline that is not the best Python service one could write flatters postclassd.
Ratios are taken within a round (both systems on the same machine state) and the table shows the
median of those per-round ratios; rates and latencies are medians over rounds. Latencies count
only runs paced at the cell's common rate (postclassd's), so both sides carry the same load."""
import collections
import json
import statistics
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
meta = {k: v for r in rows if r.get("meta") for k, v in r.items()}
runs = [r for r in rows if not r.get("meta")]
for r in runs:  # results from before issue 29 have no round and one unnamed Python variant
    r.setdefault("round", 1)
    if r["system"] == "python" and not r.get("variant"):
        r["variant"] = "loop"
keys = sorted({(r["kind"], r["batch"]) for r in runs}, key=lambda x: (x[0] != "text", x[1]))


def f(v, digits=1):
    """A number with `digits` decimals, or "-" for none."""
    return "-" if v is None else f"{v:.{digits}f}"


def median(values):
    """The median of the values that are not None, or None."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def of(kind, batch, system, variant=""):
    """The cell's runs of one system (and variant), by round."""
    return {r["round"]: r for r in runs if (r["kind"], r["batch"], r["system"], r.get("variant") or "") == (kind, batch, system, variant)}


def best_python(kind, batch):
    """Per round, the Python run with the highest posts/s."""
    best = {}
    for r in runs:
        if (r["kind"], r["batch"], r["system"]) == (kind, batch, "python"):
            if r["round"] not in best or r["posts_per_s"] > best[r["round"]]["posts_per_s"]:
                best[r["round"]] = r
    return best


def at_common_rate(run, swift_runs):
    """Whether a run's paced window was at the cell's common rate (postclassd's)."""
    rates = {round(s["latency_rate"], 6) for s in swift_runs.values()}
    return round(run["latency_rate"], 6) in rates


def median_row(by_round):
    """The run whose posts/s is the median over rounds (for the stage tables)."""
    ordered = sorted(by_round.values(), key=lambda r: r["posts_per_s"])
    return ordered[(len(ordered) - 1) // 2] if ordered else None


print("# bench/e2e: postclassd vs Python baseline, default bundle\n")
print(f"Commit {meta.get('commit', '?')}, {meta.get('cores', '?')} cores; load average at start "
      f"{' '.join(meta.get('loadavg_start', []))}, at end {' '.join(meta.get('loadavg_end', []))}.\n")
ran = sorted({(r.get("variant") or "default", r["kernels"], r["text_encoder_products"]) for r in runs if r.get("kernels")})
for variant, kernels, products in ran:
    print(f"postclassd ({variant}): inference kernels {kernels}; encoder products {products}.")
if ran:
    print()
print("Throughput: saturated window. Latency: Kafka timestamp of the input to the bench's reader getting the output, "
      "at the same paced rate for both (half the best Python variant's saturated rate in round 1). Python: the best "
      "variant of each round (rounds' winners in the last column); Swift/Python: median of the per-round ratios.\n")
print("| posts | batch | postclassd posts/s | Python posts/s | Swift/Python (rounds) | latency at posts/s | postclassd p50 / p99 ms | Python p50 / p99 ms | bar: >=2x and p99 <= | best Python variant |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
for kind, batch in keys:
    s, p = of(kind, batch, "postclassd"), best_python(kind, batch)
    if not s or not p:
        continue
    ratios = [s[n]["posts_per_s"] / p[n]["posts_per_s"] for n in sorted(s) if n in p and p[n]["posts_per_s"]]
    ratio = median(ratios)
    p_lat = [r for r in p.values() if at_common_rate(r, s)]
    s50, s99 = median(r["p50_ms"] for r in s.values()), median(r["p99_ms"] for r in s.values())
    p50, p99 = median(r["p50_ms"] for r in p_lat), median(r["p99_ms"] for r in p_lat)
    met = ratio is not None and ratio >= 2 and s99 is not None and p99 is not None and s99 <= p99
    winners = collections.Counter(r["variant"] for r in p.values())
    print(f"| {kind} | {batch} | {f(median(r['posts_per_s'] for r in s.values()))} "
          f"| {f(median(r['posts_per_s'] for r in p.values()))} "
          f"| {f(ratio, 2)}x ({', '.join(f'{x:.2f}' for x in ratios)}) "
          f"| {f(median(r['latency_rate'] for r in s.values()))} | {f(s50)} / {f(s99)} | {f(p50)} / {f(p99)} "
          f"| {'yes' if met else 'no'} | {', '.join(f'{v} x{n}' for v, n in winners.most_common())} |")

print("\n## Python variants\n")
print("Medians over rounds; p50 / p99 only from runs at the common rate (- where none was).\n")
print("| posts | batch | variant | options | posts/s | CPU ms/post | cores busy | p50 / p99 ms |")
print("|---|---:|---|---|---:|---:|---:|---:|")
for kind, batch in keys:
    swift = of(kind, batch, "postclassd")
    for variant in sorted({r["variant"] for r in runs if (r["kind"], r["batch"], r["system"]) == (kind, batch, "python")}):
        v = of(kind, batch, "python", variant)
        lat = [r for r in v.values() if at_common_rate(r, swift)]
        print(f"| {kind} | {batch} | {variant} | `{next(iter(v.values())).get('py_args', '')}` "
              f"| {f(median(r['posts_per_s'] for r in v.values()))} | {f(median(r['cpu_ms_per_post'] for r in v.values()), 2)} "
              f"| {f(median(r['cpu_cores_busy'] for r in v.values()), 2)} "
              f"| {f(median(r['p50_ms'] for r in lat))} / {f(median(r['p99_ms'] for r in lat))} |")

print("\nCPU per post (all threads of the process, saturated window; medians over rounds, Python: each round's best) and "
      "cores kept busy; postclassd's own end-to-end histogram at the paced rate (bucket-interpolated) as a cross-check.\n")
print("| posts | batch | postclassd CPU ms/post | Python CPU ms/post | postclassd cores | Python cores | mean batch S / P | postclassd histogram p50 / p99 ms |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for kind, batch in keys:
    s, p = of(kind, batch, "postclassd"), best_python(kind, batch)
    if not s or not p:
        continue
    m = lambda runs_, k: median(r.get(k) for r in runs_.values())  # noqa: E731
    print(f"| {kind} | {batch} | {f(m(s, 'cpu_ms_per_post'), 2)} | {f(m(p, 'cpu_ms_per_post'), 2)} | {f(m(s, 'cpu_cores_busy'), 2)} "
          f"| {f(m(p, 'cpu_cores_busy'), 2)} | {f(m(s, 'mean_batch'))} / {f(m(p, 'mean_batch'))} "
          f"| {f(m(s, 'daemon_histogram_p50_ms'))} / {f(m(s, 'daemon_histogram_p99_ms'))} |")

SWIFT_STAGES = ["decode", "tokenize", "text_encoder", "image_encoder", "heads", "classify"]
PY_STAGES = ["poll", "decode", "image_decode", "tokenize", "text_encoder", "image_encoder", "heads", "output"]
for system, stages, pick, note in [
        ("postclassd", SWIFT_STAGES, lambda k, b: of(k, b, "postclassd"),
         "from /metrics (postclassd_stage_duration_seconds, per batch, summed over the "
         "window's batches). `decode` is JSON decoding plus JPEG decode and preprocessing; `classify` is the sum of the "
         "others; the output record and produce are not timed. Shares are of wall time: with 2 workers they can add to 2."),
        ("python (best variant)", PY_STAGES, best_python,
         "timed in pyservice.py. `poll` is the polling thread's time in poll; the other stages are summed over the "
         "threads running batches (with worker threads they can add to more than 100%); `decode` is JSON + base64; "
         "`output` is building and producing the records.")]:
    print(f"\n## Where the time goes: {system}\n\nms per post (share of wall time), saturated window, the round with "
          f"the median posts/s; {note}\n")
    print("| posts | batch | " + " | ".join(stages) + " |")
    print("|---|---:|" + "---:|" * len(stages))
    for kind, batch in keys:
        r = median_row(pick(kind, batch))
        if not r:
            continue
        ms, share = r["stage_ms_per_post"], r["stage_share_of_wall"]
        print(f"| {kind} | {batch} | " + " | ".join(
            f"{ms[st]:.2f} ({100 * share[st]:.0f}%)" if st in ms else "-" for st in stages) + " |")

VARIANTS = {
    "blas1": ("postclassd with OPENBLAS_NUM_THREADS=1",
              "`postclassd run` leaves OpenBLAS at its default (one thread per core) while it runs `--workers` "
              "(= cores) batches at once, so each worker's products fan out again."),
    "fp32": ("postclassd with --precision fp32",
             "The default `--precision auto` takes bf16 products for the text encoder and EfficientNet's "
             "wider 1x1 convolutions where the CPU runs them fast (AMX tiles, or a fast AVX512-BF16); "
             "this variant holds every product to fp32."),
}
for variant, (title, why) in VARIANTS.items():
    cells = [(k, b) for k, b in keys if of(k, b, "postclassd", variant)]
    if not cells:
        continue
    print(f"\n## Variant: {title}\n")
    print(why + " Same cell, same paced rate, medians over rounds (ratio: median of per-round default / variant):\n")
    print("| posts | batch | posts/s default / variant | ratio (rounds) | CPU ms/post default / variant | p50 ms default / variant | p99 ms default / variant |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for kind, batch in cells:
        s, d = of(kind, batch, "postclassd"), of(kind, batch, "postclassd", variant)
        m = lambda runs_, k: median(r.get(k) for r in runs_.values())  # noqa: E731
        ratios = [s[n]["posts_per_s"] / d[n]["posts_per_s"] for n in sorted(s) if n in d and d[n].get("posts_per_s")]
        ratio_text = f"{median(ratios):.2f}x ({', '.join(f'{x:.2f}' for x in ratios)})" if ratios else "-"
        print(f"| {kind} | {batch} | {f(m(s, 'posts_per_s'))} / {f(m(d, 'posts_per_s'))} | {ratio_text} | {f(m(s, 'cpu_ms_per_post'), 2)} / "
              f"{f(m(d, 'cpu_ms_per_post'), 2)} | {f(m(s, 'p50_ms'))} / {f(m(d, 'p50_ms'))} | {f(m(s, 'p99_ms'))} / {f(m(d, 'p99_ms'))} |")
