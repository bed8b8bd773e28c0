#!/usr/bin/env python3
"""One cell of bench/e2e: starts one system (postclassd or the Python baseline) on its own input
and output topics, feeds it posts, and measures it from the outside the same way for both:

1. saturated window (--duration s): the feeder keeps the input about two seconds of the system's
   own pace ahead of its committed offsets (at least 8 batches + 64 records, so that postclassd's
   workers, which take records as soon as they arrive, always find full batches; at most --backlog per
   partition, so that the embedded broker's ~5 MB per partition is never trimmed away unread):
   the system never starves, and the backlog drains in a few seconds afterwards.
   posts/s = output records read per second.
   Stage times and the process's CPU seconds are sampled at the window's edges.
2. drain: the feeder stops and the backlog is let through.
3. paced window (--latency-duration s) at --rate posts/s: end-to-end latency of every output
   record = the moment the bench's reader gets it - the input record's Kafka timestamp (its
   CreateTime, taken from the output's source.timestamp). Both systems are measured by the same
   reader, so its fetch delay (fetch.wait.max.ms=10) is in both.

Prints one JSON row and appends it to --results.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.append("/usr/lib/python3/dist-packages")  # python3-confluent-kafka (apt)
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))
from kafkapoll import take_available  # noqa: E402  (KafkaConsumer.poll's logic, shared by the benches)

ROOT = Path(__file__).resolve().parents[2]

TEXTS = [
    "my morning coffee, best part of the day",
    "love waiting 3 hours at the airport for a delayed flight #not",
    "oh great, another monday. just what i needed",
    "the sunset over the lake tonight was unreal",
    "new running shoes arrived and they fit perfectly",
    "wow, the printer jammed again right before my deadline, how wonderful",
    "finally finished the marathon! legs are jelly but so happy",
    "nothing says relaxing weekend like doing taxes",
    "our dog learned to open the fridge. we are doomed",
    "fresh bread from the bakery around the corner, still warm",
    "thanks for the amazing customer service, only took 45 minutes on hold",
    "the kids built a fort out of every blanket in the house",
    "traffic on the bridge again, i just love spending my life in the car",
    "cooked pasta from scratch for the first time and it actually worked",
    "what a surprise, the train is late. never happened before",
    "spring flowers are finally out in the park",
    "my phone died at 40 percent battery, technology is so reliable",
    "concert last night was loud, sweaty and absolutely perfect",
    "can't wait to sit in another meeting that could have been an email",
    "a cup of espresso and a good book on a rainy afternoon",
    "the new update moved every button i use. brilliant design",
    "hiking up the hill this morning with the whole family, views were worth it",
    "so glad my neighbour decided to start drilling at 7am on a sunday",
    "homemade pizza night, we put pineapple on half of it and nobody complained",
]


def post_values(kind: str, count: int = len(TEXTS)) -> list[tuple[bytes, bytes]]:
    """(id prefix-free) JSON bodies without the id, to be completed per record."""
    image = base64.b64encode((ROOT / "models/test-images/coffee_1200x900_q85.jpg").read_bytes()).decode()
    out = []
    for t in TEXTS[:count]:
        body = {"text": t, "lang": "en"}
        if kind == "image":
            body["image"] = image
        out.append(json.dumps(body, separators=(",", ":"))[1:].encode())  # without the leading '{'
    return out


class Feeder(threading.Thread):
    """Writes posts round-robin over the partitions, either keeping each partition at most `backlog`
    records ahead of the group's committed offset, or (rate > 0) at a fixed rate."""

    def __init__(self, brokers, topic, partitions, group, kind, backlog, rate=0.0, start_id=0, min_total=64):
        super().__init__(daemon=True)
        self.brokers, self.topic, self.partitions, self.group = brokers, topic, partitions, group
        self.backlog, self.rate, self.next_id, self.min_total = backlog, rate, start_id, min_total
        self.bodies = post_values(kind)
        self.stop_event = threading.Event()
        self.delivered = 0
        self.failed = 0

    def _delivered(self, err, msg):
        if err is None:
            self.delivered += 1
        else:
            self.failed += 1

    def run(self):
        producer = Producer({"bootstrap.servers": self.brokers, "linger.ms": 5, "message.max.bytes": 10 << 20,
                             "queue.buffering.max.kbytes": 256 << 10})
        watcher = Consumer({"bootstrap.servers": self.brokers, "group.id": self.group, "enable.auto.commit": False})
        tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        sent = [0] * self.partitions
        try:
            for tp in watcher.committed(tps, timeout=10):
                sent[tp.partition] = max(tp.offset, 0)  # topics are reused only after a full drain
        except Exception:  # noqa: BLE001 - a fresh group has nothing committed
            pass
        committed = list(sent)
        started, produced, last_check, p = time.monotonic(), 0, 0.0, 0
        pace, pace_at, pace_total = 0.0, None, 0
        allowed = self.backlog if self.rate > 0 else -(-self.min_total // self.partitions)
        while not self.stop_event.is_set():
            now = time.monotonic()
            if self.rate > 0 and produced >= (now - started) * self.rate:
                producer.poll(0)
                time.sleep(min(0.005, (produced + 1) / self.rate - (now - started)))
                continue
            if self.rate <= 0 and now - last_check > 0.05:
                last_check = now
                try:
                    for tp in watcher.committed(tps, timeout=2):
                        if tp.offset >= 0:
                            committed[tp.partition] = tp.offset
                except Exception:  # noqa: BLE001 - a slow broker answer: keep the last view
                    pass
                # About two seconds of the system's own pace (commits per second, smoothed) ahead.
                total = sum(committed)
                if pace_at is not None and now > pace_at:
                    pace = 0.8 * pace + 0.2 * (total - pace_total) / (now - pace_at)
                pace_at, pace_total = now, total
                allowed = min(self.backlog, -(-max(self.min_total, int(2 * pace)) // self.partitions))
            sent_any = False
            for _ in range(self.partitions):
                p = (p + 1) % self.partitions
                if sent[p] - committed[p] < allowed:
                    self._send(producer, p)
                    sent[p] += 1
                    produced += 1
                    sent_any = True
                    if self.rate > 0:
                        break
            producer.poll(0)
            if not sent_any:
                time.sleep(0.002)
        producer.flush(30)
        watcher.close()

    def _send(self, producer, partition):
        ident = f"p-{self.next_id}"
        body = self.bodies[self.next_id % len(self.bodies)]
        self.next_id += 1
        value = b'{"id":"' + ident.encode() + b'",' + body
        while True:
            try:
                producer.produce(self.topic, key=ident.encode(), value=value, partition=partition, on_delivery=self._delivered)
                return
            except BufferError:
                producer.poll(0.01)




class Reader(threading.Thread):
    """Reads the output topic from its end at start (rounds reuse the topics, so what earlier
    rounds wrote is not counted); keeps (arrival time, latency) per record."""
    STAMP = re.compile(rb'"timestamp":(\d+)\}\}$')

    def __init__(self, brokers, topic, partitions):
        super().__init__(daemon=True)
        self.consumer = Consumer({"bootstrap.servers": brokers, "group.id": f"bench-reader-{topic}-{os.getpid()}-{time.time()}",
                                  "enable.auto.commit": False, "fetch.wait.max.ms": 10})
        ends = [TopicPartition(topic, p, self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
                for p in range(partitions)]
        self.consumer.assign(ends)
        self.arrivals: list[tuple[float, float]] = []
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            # What is queued, blocking for the first record only: consume(1000, 0.05) would wait
            # up to 50 ms for a full batch and add that to every latency at a paced rate.
            for m in take_available(self.consumer, 1000, 0.05):
                if m.error() or m.value() is None:
                    continue
                now = time.time()
                match = self.STAMP.search(m.value())
                self.arrivals.append((now, now - int(match.group(1)) / 1000 if match else float("nan")))
        self.consumer.close()

    def count(self):
        return len(self.arrivals)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def daemon_stages(s: dict[str, float]) -> dict:
    stages = {}
    for k, v in s.items():
        m = re.match(r'postclassd_stage_duration_seconds_(sum|count)\{stage="([^"]+)"\}', k)
        if m:
            stages.setdefault(m.group(2), {})[m.group(1)] = v
    return {"stages": {k: v.get("sum", 0.0) for k, v in stages.items()},
            "batches": s.get("postclassd_batch_size_count", 0.0), "posts": s.get("postclassd_batch_size_sum", 0.0),
            "e2e_buckets": {k: v for k, v in s.items() if k.startswith("postclassd_end_to_end_latency_seconds_bucket")}}


def histogram_quantile(q, before, after):
    def parse(d):
        out = []
        for k, v in d.items():
            le = re.search(r'le="([^"]+)"', k).group(1)
            out.append((float("inf") if le == "+Inf" else float(le), v))
        return sorted(out)
    b0 = dict(parse(before))
    deltas = [(le, c - b0.get(le, 0.0)) for le, c in parse(after)]
    total = deltas[-1][1] if deltas else 0
    if total <= 0:
        return None
    rank, prev_le, prev_c = q * total, 0.0, 0.0
    for le, c in deltas:
        if c >= rank:
            return prev_le if le == float("inf") else prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1e-9)
        prev_le, prev_c = le, c
    return None


def percentile(values, q):
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--system", choices=["postclassd", "python"], required=True)
    ap.add_argument("--kind", choices=["text", "image"], required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--bin", type=Path, help="postclassd's folder (swift build --show-bin-path)")
    ap.add_argument("--python", default=str(ROOT / "models/.venv/bin/python"))
    ap.add_argument("--model", type=Path, default=ROOT / "models/default")
    ap.add_argument("--batch-wait-ms", type=int, default=20)
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--latency-duration", type=float, default=10)
    ap.add_argument("--rate", type=float, default=0, help="posts/s of the paced window (0: half the saturated rate)")
    ap.add_argument("--backlog", type=int, help="records per partition ahead of the commits (default: 250 text, 16 image)")
    ap.add_argument("--kafka", action="append", default=[], help="librdkafka key=value for both systems (repeatable)")
    ap.add_argument("--variant", default="", help="a name for a variant (--env, --py-args; part of the topic names)")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE in the system's environment (repeatable)")
    ap.add_argument("--py-args", default="", help="more pyservice.py options, space-separated (the Python variants: --workers, --threads, --spinning)")
    ap.add_argument("--round", type=int, default=1, help="the bench round, recorded in the row")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--results", type=Path, required=True)
    a = ap.parse_args()

    name = f"{a.system}{'-' + a.variant if a.variant else ''}-{a.kind}-{a.batch}"
    topic_in, topic_out, group = f"in-{name}", f"out-{name}", f"g-{name}"
    backlog = a.backlog or (2000 if a.kind == "text" else 16)
    phases = {}

    def phase(label):
        phases[label] = round(time.monotonic() - started, 1)
        print(f"[cell {name}] {label} at {phases[label]} s", file=sys.stderr)
    log = open(a.work / f"{name}.log", "w")
    stats_file = a.work / f"{name}.stats.json"
    common = ["--brokers", a.brokers, "--input-topics", topic_in, "--output-topic", topic_out, "--dlq-topic", "dlq",
              "--group-id", group, "--batch-size", str(a.batch), "--batch-wait-ms", str(a.batch_wait_ms), "--model", str(a.model)]
    for prop in ["auto.commit.interval.ms=100", *a.kafka]:  # the feeder paces itself on commits
        common += ["--kafka", prop]
    if a.system == "postclassd":
        cmd = [str(a.bin / "postclassd"), "run", *common, "--metrics-address", "127.0.0.1:0", "--log-level", "info"]
    else:
        cmd = [a.python, str(ROOT / "bench/e2e/pyservice.py"), *common, "--stats", str(stats_file),
               *a.py_args.split()]
    started = time.monotonic()
    env = dict(os.environ, **dict(kv.split("=", 1) for kv in a.env))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env)
    reader = Reader(a.brokers, topic_out, a.partitions)
    reader.start()

    def stage_snapshot():
        if a.system == "postclassd":
            return daemon_stages(scrape(port))
        s = json.loads(stats_file.read_text())
        return {"stages": s["stages"], "batches": s["batches"], "posts": s["posts"]}

    port = None
    try:
        feeder = Feeder(a.brokers, topic_in, a.partitions, group, a.kind, backlog, min_total=8 * a.batch + 64)
        feeder.start()
        deadline = time.monotonic() + 300
        while reader.count() == 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{name}: no output (exit {proc.poll()}); see {log.name}")
            time.sleep(0.1)
        ready_s = time.monotonic() - started
        phase("first output")
        if a.system == "postclassd":
            port = int(re.search(r"http://127\.0\.0\.1:(\d+)/metrics", (a.work / f"{name}.log").read_text()).group(1))
        time.sleep(3)  # past the start-up burst
        s0, c0, cpu0, t0 = stage_snapshot(), reader.count(), cpu_seconds(proc.pid), time.monotonic()
        time.sleep(a.duration)
        s1, c1, cpu1, t1 = stage_snapshot(), reader.count(), cpu_seconds(proc.pid), time.monotonic()
        window = t1 - t0
        posts = c1 - c0
        saturated = posts / window
        phase("saturated window done")
        feeder.stop_event.set()
        feeder.join()
        drain_deadline = time.monotonic() + 120
        while reader.count() < feeder.delivered and time.monotonic() < drain_deadline:
            time.sleep(0.1)
        drained = reader.count() >= feeder.delivered
        phase("drained" if drained else "NOT drained")

        rate = max(a.rate or saturated / 2, 1.0)
        paced = Feeder(a.brokers, topic_in, a.partitions, group, a.kind, backlog=10**9, rate=rate, start_id=feeder.next_id)
        paced.start()
        time.sleep(3)
        e0 = stage_snapshot() if a.system == "postclassd" else None
        l0 = time.time()
        time.sleep(a.latency_duration)
        l1 = time.time()
        e1 = stage_snapshot() if a.system == "postclassd" else None
        phase("paced window done")
        paced.stop_event.set()
        paced.join()
        latencies = [lat * 1000 for at, lat in reader.arrivals if l0 <= at < l1]

        busy = {k: s1["stages"].get(k, 0.0) - s0["stages"].get(k, 0.0) for k in s1["stages"]}
        batches, batch_posts = s1["batches"] - s0["batches"], s1["posts"] - s0["posts"]
        row = {"system": a.system, "variant": a.variant, "env": a.env, "py_args": a.py_args, "round": a.round, "kind": a.kind, "batch": a.batch, "ready_s": round(ready_s, 1),
               "window_s": round(window, 2), "posts_per_s": saturated, "drained": drained,
               "cpu_ms_per_post": 1000 * (cpu1 - cpu0) / max(posts, 1), "cpu_cores_busy": (cpu1 - cpu0) / window,
               "mean_batch": batch_posts / max(batches, 1),
               "stage_ms_per_post": {k: 1000 * v / max(batch_posts, 1) for k, v in busy.items()},
               "stage_share_of_wall": {k: v / window for k, v in busy.items()},
               "latency_rate": rate, "latency_achieved_rate": len(latencies) / (l1 - l0),
               "p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99),
               "max_ms": max(latencies) if latencies else None, "phases_s": phases}
        if a.system == "postclassd":
            # Which kernel bodies and text-encoder precision ran, as the daemon logged them at start.
            said = re.search(r"inference kernels: ([^;]+); (?:text )?encoder products: ([^;]+);", (a.work / f"{name}.log").read_text())
            if said:
                row["kernels"], row["text_encoder_products"] = said.group(1), said.group(2)
        if e0 and e1:
            row["daemon_histogram_p50_ms"] = 1000 * (histogram_quantile(0.5, e0["e2e_buckets"], e1["e2e_buckets"]) or 0)
            row["daemon_histogram_p99_ms"] = 1000 * (histogram_quantile(0.99, e0["e2e_buckets"], e1["e2e_buckets"]) or 0)
        print(json.dumps(row))
        with open(a.results, "a") as f:
            f.write(json.dumps(row) + "\n")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        reader.stop_event.set()
        reader.join(10)


if __name__ == "__main__":
    main()
