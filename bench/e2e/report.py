#!/usr/bin/env python3
"""The bench/e2e report (markdown) from its results file: throughput and latency side by side with
the Swift/Python ratios and issue 8's bar, CPU per post, and where the time goes per stage."""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
meta = {k: v for r in rows if r.get("meta") for k, v in r.items()}
cells = {(r["kind"], r["batch"], r["system"] + ("+" + r["variant"] if r.get("variant") else "")): r
         for r in rows if not r.get("meta")}
keys = sorted({(k, b) for k, b, _ in cells}, key=lambda x: (x[0] != "text", x[1]))


def f(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


print(f"# bench/e2e: postclassd vs Python baseline, default bundle\n")
print(f"Commit {meta.get('commit', '?')}, {meta.get('cores', '?')} cores; load average at start "
      f"{' '.join(meta.get('loadavg_start', []))}, at end {' '.join(meta.get('loadavg_end', []))}.\n")
print("Throughput: saturated window. Latency: Kafka timestamp of the input to the bench's reader getting the output, "
      "at the same paced rate for both (half the Python baseline's saturated rate).\n")
print("| posts | batch | postclassd posts/s | Python posts/s | Swift/Python | latency at posts/s | postclassd p50 / p99 ms | Python p50 / p99 ms | bar: >=2x and p99 <= |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
for kind, batch in keys:
    s, p = cells.get((kind, batch, "postclassd")), cells.get((kind, batch, "python"))
    if not s or not p:
        continue
    ratio = s["posts_per_s"] / p["posts_per_s"] if p["posts_per_s"] else None
    met = ratio is not None and ratio >= 2 and s["p99_ms"] is not None and p["p99_ms"] is not None and s["p99_ms"] <= p["p99_ms"]
    print(f"| {kind} | {batch} | {f(s['posts_per_s'])} | {f(p['posts_per_s'])} | {f(ratio, 2)}x | {f(s['latency_rate'])} "
          f"(got {f(s['latency_achieved_rate'])} / {f(p['latency_achieved_rate'])}) | {f(s['p50_ms'])} / {f(s['p99_ms'])} "
          f"| {f(p['p50_ms'])} / {f(p['p99_ms'])} | {'yes' if met else 'no'} |")

print("\nCPU per post (all threads of the process, saturated window) and cores kept busy; "
      "postclassd's own end-to-end histogram at the paced rate (bucket-interpolated) as a cross-check.\n")
print("| posts | batch | postclassd CPU ms/post | Python CPU ms/post | postclassd cores | Python cores | mean batch S / P | postclassd histogram p50 / p99 ms |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for kind, batch in keys:
    s, p = cells.get((kind, batch, "postclassd")), cells.get((kind, batch, "python"))
    if not s or not p:
        continue
    print(f"| {kind} | {batch} | {f(s['cpu_ms_per_post'], 2)} | {f(p['cpu_ms_per_post'], 2)} | {f(s['cpu_cores_busy'], 2)} "
          f"| {f(p['cpu_cores_busy'], 2)} | {f(s['mean_batch'])} / {f(p['mean_batch'])} "
          f"| {f(s.get('daemon_histogram_p50_ms'))} / {f(s.get('daemon_histogram_p99_ms'))} |")

SWIFT_STAGES = ["decode", "tokenize", "text_encoder", "image_encoder", "heads", "classify"]
PY_STAGES = ["poll", "decode", "image_decode", "tokenize", "text_encoder", "image_encoder", "heads", "output"]
for system, stages, note in [
        ("postclassd", SWIFT_STAGES, "from /metrics (postclassd_stage_duration_seconds, per batch, summed over the "
         "window's batches). `decode` is JSON decoding plus JPEG decode and preprocessing; `classify` is the sum of the "
         "others; the output record and produce are not timed. Shares are of wall time: with 2 workers they can add to 2."),
        ("python", PY_STAGES, "timed in pyservice.py (one thread; image decode fans out to a pool). `poll` is waiting "
         "for records and for a batch to fill; `decode` is JSON + base64; `output` is building and producing the records.")]:
    print(f"\n## Where the time goes: {system}\n\nms per post (share of wall time), saturated window; {note}\n")
    print("| posts | batch | " + " | ".join(stages) + " |")
    print("|---|---:|" + "---:|" * len(stages))
    for kind, batch in keys:
        r = cells.get((kind, batch, system))
        if not r:
            continue
        ms, share = r["stage_ms_per_post"], r["stage_share_of_wall"]
        print(f"| {kind} | {batch} | " + " | ".join(
            f"{ms[st]:.2f} ({100 * share[st]:.0f}%)" if st in ms else "-" for st in stages) + " |")

diag = [(k, b) for k, b in keys if (k, b, "postclassd+blas1") in cells]
if diag:
    print("\n## Diagnostic: postclassd with OPENBLAS_NUM_THREADS=1\n")
    print("`postclassd run` leaves OpenBLAS at its default (one thread per core) while it runs `--workers` "
          "(= cores) batches at once, so each worker's products fan out again. Same cell, same paced rate:\n")
    print("| posts | batch | posts/s default / BLAS 1 | CPU ms/post default / BLAS 1 | p50 ms default / BLAS 1 | p99 ms default / BLAS 1 |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, batch in diag:
        s, d = cells.get((kind, batch, "postclassd")), cells[(kind, batch, "postclassd+blas1")]
        if not s:
            continue
        print(f"| {kind} | {batch} | {f(s['posts_per_s'])} / {f(d['posts_per_s'])} | {f(s['cpu_ms_per_post'], 2)} / "
              f"{f(d['cpu_ms_per_post'], 2)} | {f(s['p50_ms'])} / {f(d['p50_ms'])} | {f(s['p99_ms'])} / {f(d['p99_ms'])} |")
