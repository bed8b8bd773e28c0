#!/usr/bin/env python3
"""Samples a running daemon's /metrics over a window: posts/s from the produced counter, and
end-to-end latency percentiles from the histogram's bucket deltas over the same window
(interpolated within a bucket, as Prometheus' histogram_quantile does)."""
import argparse, json, re, time, urllib.request

def scrape(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    return samples

def produced(s, topic):
    return s.get(f'postclassd_messages_produced_total{{topic="{topic}"}}', 0.0)

def buckets(s):
    out = []
    for k, v in s.items():
        m = re.match(r'postclassd_end_to_end_latency_seconds_bucket\{le="([^"]+)"\}', k)
        if m:
            out.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), v))
    return sorted(out)

def quantile(q, before, after):
    b0 = dict(buckets(before)); b1 = buckets(after)
    deltas = [(le, c - b0.get(le, 0.0)) for le, c in b1]
    total = deltas[-1][1] if deltas else 0
    if total <= 0:
        return None
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in deltas:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_c) / max(c - prev_c, 1e-9))
        prev_le, prev_c = le, c
    return None

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--topic", required=True)
ap.add_argument("--duration", type=float, required=True)
ap.add_argument("--run", required=True)
ap.add_argument("--results", required=True)
ap.add_argument("--settle", type=float, default=1.0,
                help="seconds to wait after output starts, so the window leaves out the start-up burst (or a backlog)")
a = ap.parse_args()
deadline = time.monotonic() + 60
while time.monotonic() < deadline:  # wait for the group to join and output to start
    s = scrape(a.port)
    if produced(s, a.topic) > 0:
        break
    time.sleep(0.1)
time.sleep(a.settle)  # past the start-up burst
before, t0 = scrape(a.port), time.monotonic()
time.sleep(a.duration)
after, t1 = scrape(a.port), time.monotonic()
row = {"run": a.run, "posts_per_s": (produced(after, a.topic) - produced(before, a.topic)) / (t1 - t0),
       "p50_ms": (quantile(0.5, before, after) or 0) * 1000, "p99_ms": (quantile(0.99, before, after) or 0) * 1000}
print(json.dumps(row))
open(a.results, "a").write(json.dumps(row) + "\n")
