#!/usr/bin/env python3
"""The Python baseline of bench/e2e: a Kafka service doing postclassd's work with the default
bundle (bench/e2e/pymodel.py), the way one would write it in Python.

- confluent-kafka (the system python3-confluent-kafka, on the same librdkafka as postclassd);
- micro-batches like postclassd's batcher: up to --batch-size records, closed --batch-wait-ms
  after the batch's first record;
- two shapes, both in one process (--workers picks; bench/e2e/run.sh measures both and reports
  the best per cell):
  * --workers 0, the single loop: the polling thread runs each batch itself, images decoded on a
    thread pool (Pillow releases the GIL), the networks in ONNX Runtime with --threads intra-op
    threads (default: one per core), so every operation is split over the cores;
  * --workers N: the polling thread only polls and batches, and N worker threads (default: one
    per core) each run whole batches with one intra-op thread, as postclassd runs one batch per
    core. ONNX Runtime, Pillow and the tokenizer release the GIL, so the workers overlap;
  ONNX Runtime's spinning between ops is off unless --spinning;
- polls like postclassd's KafkaConsumer.poll: block (at most until the open batch is due, or
  100 ms) for the first record, then take what is already queued, never waiting for a full
  librdkafka batch (`consume(n, timeout)` alone waits the whole timeout below saturation);
- at-least-once like postclassd: offsets stored (enable.auto.offset.store=false) only once the
  output is delivered, as each partition's contiguous low watermark; auto-commit (every 100 ms in the bench: --kafka auto.commit.interval.ms=100, as for postclassd);
- output records as postclassd writes them (input members but the image, labels, model,
  source), same key, input headers plus source.topic / .partition / .offset; bad input goes to
  the dead-letter topic.

Stage times (seconds, cumulative) go to --stats as JSON every half second, so that the bench can
take the same before/after deltas it takes from postclassd's /metrics.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import collections
import json
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# numpy's own BLAS only runs the heads' small products: its threads would just fight ONNX
# Runtime's for the cores (measured: 10-50 ms per tiny product on a loaded 2-core machine).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

sys.path.append("/usr/lib/python3/dist-packages")  # python3-confluent-kafka (apt), not in the venv
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pymodel import Bundle  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))
from kafkapoll import take_available  # noqa: E402  (KafkaConsumer.poll's logic, shared by the benches)

STAGES = ["poll", "decode", "image_decode", "tokenize", "text_encoder", "image_encoder", "heads", "output"]


class Watermarks:
    """Per input partition, the offsets in flight; the next offset to commit is past the
    contiguous run of delivered ones (records can be delivered out of order across partitions)."""

    def __init__(self):
        self.pending: dict[tuple[str, int], collections.deque] = {}
        self.done: dict[tuple[str, int], set] = {}

    def track(self, tp, offset):
        self.pending.setdefault(tp, collections.deque()).append(offset)
        self.done.setdefault(tp, set())

    def finish(self, tp, offset):
        queue, done = self.pending.get(tp), self.done.get(tp)
        if queue is None:
            return None  # revoked meanwhile
        done.add(offset)
        last = None
        while queue and queue[0] in done:
            last = queue.popleft()
            done.discard(last)
        return None if last is None else last + 1

    def forget(self, partitions):
        """Drops revoked partitions: their records' deliveries no longer move any offset."""
        for p in partitions:
            self.pending.pop((p.topic, p.partition), None)
            self.done.pop((p.topic, p.partition), None)




class Batcher:
    """postclassd's Batcher (Sources/Daemon/Pipeline/Batcher.swift): a batch closes when it holds
    `size` records or when its first record has waited `wait` seconds, whichever comes first."""

    def __init__(self, size: int, wait: float):
        self.size, self.wait = size, wait
        self.current: list = []
        self.opened_at = 0.0

    def add(self, msgs, now: float) -> list[list]:
        """Adds records; returns the batches they completed."""
        full = []
        for m in msgs:
            if not self.current:
                self.opened_at = now
            self.current.append(m)
            if len(self.current) >= self.size:
                full.append(self.current)
                self.current = []
        return full

    def take_if_due(self, now: float):
        """The open batch, if its first record has waited long enough."""
        if self.current and now - self.opened_at >= self.wait:
            batch, self.current = self.current, []
            return batch
        return None

    def time_until_due(self, now: float):
        """Seconds until the open batch is due, or None when there is none."""
        return max(0.0, self.wait - (now - self.opened_at)) if self.current else None


class Service:
    """One batch's work, from records to produced outputs; run by the polling thread (--workers 0)
    or by worker threads (--workers N). Stage times and counts are summed under a lock, so with N
    workers the stage shares of wall time can add up to N, as postclassd's do."""

    def __init__(self, bundle: Bundle, producer: Producer, a, decode_threads: int):
        self.bundle, self.producer, self.a = bundle, producer, a
        # The single loop fans image decoding out; a worker decodes its own batch's images,
        # since the other workers already keep the other cores busy.
        self.decode_pool = ThreadPoolExecutor(decode_threads) if decode_threads > 1 else None
        self.lock = threading.Lock()
        self.totals = {s: 0.0 for s in STAGES}
        self.counts = {"batches": 0, "posts": 0, "delivered": 0, "dead_lettered": 0, "delivery_failed": 0}
        self.on_delivery = None  # set by main: (topic, partition), offset -> delivery callback

    def add(self, stage_times: dict, posts: int = 0, batches: int = 0, **counts):
        """Adds one batch's (or one poll's) stage seconds and counts."""
        with self.lock:
            for stage, dt in stage_times.items():
                self.totals[stage] += dt
            self.counts["posts"] += posts
            self.counts["batches"] += batches
            for k, v in counts.items():
                self.counts[k] += v

    def snapshot(self):
        """Copies of the stage totals and counts, for the stats file."""
        with self.lock:
            return dict(self.totals), dict(self.counts)

    def produce(self, topic, **kwargs):
        """Produces one record, waiting while librdkafka's queue is full. Only the polling thread
        serves deliveries (their callbacks touch the watermarks): a worker just waits for it."""
        while True:
            try:
                self.producer.produce(topic, **kwargs)
                return
            except BufferError:
                if self.a.workers:
                    time.sleep(0.01)
                else:
                    self.producer.poll(0.01)

    def dead_letter(self, msg, code, text):
        """Sends a record that cannot be labelled to the dead-letter topic, as postclassd does."""
        headers = list(msg.headers() or []) + [("error.code", code.encode()), ("error.message", text.encode()),
                                               ("source.topic", msg.topic().encode()),
                                               ("source.partition", str(msg.partition()).encode()),
                                               ("source.offset", str(msg.offset()).encode())]
        self.produce(self.a.dlq_topic, key=msg.key(), value=msg.value(), headers=headers,
                     on_delivery=self.on_delivery((msg.topic(), msg.partition()), msg.offset()))
        self.add({}, dead_lettered=1)

    def parse(self, msgs):
        """JSON + base64 of each record; invalid ones go to the dead-letter topic."""
        posts = []
        for m in msgs:
            try:
                post = json.loads(m.value())
                if not isinstance(post, dict) or "id" not in post or ("text" not in post and "image" not in post):
                    raise ValueError("missing id, or neither text nor image")
                jpeg = base64.b64decode(post.pop("image"), validate=True) if "image" in post else None
            except (ValueError, binascii.Error, TypeError) as e:
                self.dead_letter(m, "malformed_json", str(e))
                continue
            posts.append((m, post, jpeg))
        return posts

    def decode_images(self, posts):
        """Decodes and preprocesses the posts' images; returns the posts kept, their pixel rows
        (None for text-only posts) and the pixels. Undecodable images are dead-lettered."""
        load = self.bundle.load_image
        if self.decode_pool:
            futures = [self.decode_pool.submit(load, jpeg) if jpeg is not None else None for _, _, jpeg in posts]
            results = [(lambda f=f: f.result()) if f is not None else None for f in futures]
        else:
            results = [(lambda jpeg=jpeg: load(jpeg)) if jpeg is not None else None for _, _, jpeg in posts]
        kept, rows, pixels = [], [], []
        for post, result in zip(posts, results):
            if result is None:
                kept.append(post); rows.append(None); continue
            try:
                pixels.append(result())
            except Exception as e:  # noqa: BLE001 - any decoder failure is the post's
                self.dead_letter(post[0], "undecodable_image", str(e))
                continue
            kept.append(post); rows.append(len(pixels) - 1)
        return kept, rows, pixels

    def output(self, posts, labels):
        """Produces the output records, as postclassd writes them."""
        bundle = self.bundle
        for (m, post, _), label in zip(posts, labels):
            post["labels"] = label
            post["model"] = bundle.identity
            post["source"] = {"topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
                              "timestamp": m.timestamp()[1]}
            headers = list(m.headers() or []) + [("source.topic", m.topic().encode()),
                                                 ("source.partition", str(m.partition()).encode()),
                                                 ("source.offset", str(m.offset()).encode())]
            self.produce(self.a.output_topic, key=m.key(), value=json.dumps(post, separators=(",", ":")),
                         headers=headers, on_delivery=self.on_delivery((m.topic(), m.partition()), m.offset()))

    def process(self, msgs):
        """One batch: decode, image decode, tokenize, the two networks, heads, output."""
        bundle = self.bundle
        t1 = time.perf_counter()
        posts = self.parse(msgs)
        t2 = time.perf_counter()
        if not posts:
            self.add({"decode": t2 - t1})
            return
        posts, image_rows, pixels = self.decode_images(posts)
        t3 = time.perf_counter()
        if not posts:
            self.add({"decode": t2 - t1, "image_decode": t3 - t2})
            return
        ids, mask, words = bundle.tokenize([p.get("text") or "" for _, p, _ in posts])
        t4 = time.perf_counter()
        states, sentences, kept = bundle.text_states(ids, mask)
        t5 = time.perf_counter()
        logits = bundle.image_logits(np.stack(pixels)) if pixels else None
        t6 = time.perf_counter()
        sarcasm = bundle.sarcasm_labels(states, mask, kept)
        labels = []
        for b, row in enumerate(image_rows):
            correlation = (bundle.correlation_label(logits[row], sentences[b], words[b], states[b])
                           if row is not None else Bundle.no_image("correlation"))
            labels.append({"sarcasm": sarcasm[b], "correlation": correlation})
        t7 = time.perf_counter()
        self.output(posts, labels)
        t8 = time.perf_counter()
        self.add(dict(zip(STAGES[1:], [t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6, t8 - t7])),
                 posts=len(posts), batches=1)


def parse_args():
    """The command line; --threads defaults to one per core for the single loop, 1 for workers."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--input-topics", required=True)
    ap.add_argument("--output-topic", required=True)
    ap.add_argument("--dlq-topic", required=True)
    ap.add_argument("--group-id", required=True)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--batch-wait-ms", type=float, default=20)
    ap.add_argument("--model", type=Path, default=Path(__file__).resolve().parents[2] / "models" / "default")
    ap.add_argument("--workers", type=int, default=0,
                    help="worker threads running whole batches (0: the polling thread runs them, the single loop)")
    ap.add_argument("--threads", type=int,
                    help="ONNX Runtime intra-op threads per session (default: one per core with --workers 0, else 1); "
                         "with --workers 0 also the image decode threads")
    ap.add_argument("--spinning", action="store_true",
                    help="let ONNX Runtime's intra-op threads spin between ops (session.intra_op.allow_spinning, "
                         "its default); no effect with one intra-op thread, which has no pool to spin")
    ap.add_argument("--kafka", action="append", default=[], help="a librdkafka property key=value (repeatable), as postclassd's --kafka")
    ap.add_argument("--stats", type=Path)
    a = ap.parse_args()
    if a.threads is None:
        a.threads = (os.cpu_count() or 1) if a.workers == 0 else 1
    return a


def kafka_clients(a, marks: Watermarks):
    """postclassd's client settings (Sources/Kafka/*Configuration.swift), then --kafka."""
    extra = dict(kv.split("=", 1) for kv in a.kafka)
    consumer = Consumer({"bootstrap.servers": a.brokers, "group.id": a.group_id, "enable.auto.commit": True,
                         "auto.commit.interval.ms": 1000, "enable.auto.offset.store": False,
                         "auto.offset.reset": "earliest", "partition.assignment.strategy": "cooperative-sticky",
                         "session.timeout.ms": 45000, "max.poll.interval.ms": 300000, **extra})
    producer = Producer({"bootstrap.servers": a.brokers, "message.max.bytes": 10 << 20, "enable.idempotence": True,
                         "linger.ms": 5, "queue.buffering.max.messages": 100000, "queue.buffering.max.kbytes": 128 << 10,
                         **{k: v for k, v in extra.items() if not k.startswith(("fetch.", "auto.commit"))}})
    consumer.subscribe(a.input_topics.split(","), on_revoke=lambda c, parts: marks.forget(parts))
    return consumer, producer


def main() -> None:
    a = parse_args()
    bundle = Bundle(a.model, threads=a.threads, spinning=a.spinning)
    # Warm-up, as postclassd does before consuming.
    bundle.encode_text(["warming up the model", ""])
    bundle.image_logits(np.zeros((1, 3, 224, 224), np.float32))

    stop = False

    def on_signal(*_):
        nonlocal stop
        stop = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    marks = Watermarks()  # touched by the polling thread only: tracking, deliveries, revokes
    consumer, producer = kafka_clients(a, marks)
    service = Service(bundle, producer, a, decode_threads=a.threads if a.workers == 0 else 1)

    def on_delivery(source_tp, offset):
        # Delivery callbacks run in producer.poll, which only the polling thread calls.
        def callback(err, msg):
            if err is not None:
                service.add({}, delivery_failed=1)  # left unstored: a restart reads it again
                return
            service.add({}, delivered=1)
            nxt = marks.finish(source_tp, offset)
            if nxt is not None:
                consumer.store_offsets(offsets=[TopicPartition(source_tp[0], source_tp[1], nxt)])
        return callback
    service.on_delivery = on_delivery

    workers = ThreadPoolExecutor(a.workers) if a.workers else None
    # At most two batches per worker queued or running: the rest waits in librdkafka's queue.
    slots = threading.BoundedSemaphore(2 * a.workers) if a.workers else None

    def run_batch(batch):
        if workers is None:
            service.process(batch)
            return
        while not slots.acquire(timeout=0.01):
            producer.poll(0)  # deliveries (and so offsets) keep moving while the workers are full
        future = workers.submit(service.process, batch)
        future.add_done_callback(lambda f: (slots.release(), f.exception() and print(f"batch failed: {f.exception()!r}", file=sys.stderr)))

    batcher = Batcher(a.batch_size, a.batch_wait_ms / 1000)
    last_stats = 0.0
    while not stop:
        t0 = time.perf_counter()
        producer.poll(0)
        due_in = batcher.time_until_due(t0)
        msgs = take_available(consumer, 1000, 0.1 if due_in is None else min(due_in, 0.1))
        t1 = time.perf_counter()
        service.add({"poll": t1 - t0})
        records = []
        for m in msgs:
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    print(f"consumer error: {m.error()}", file=sys.stderr)
                continue
            marks.track((m.topic(), m.partition()), m.offset())  # in consumption order
            records.append(m)
        for batch in batcher.add(records, t1):
            run_batch(batch)
        due = batcher.take_if_due(time.perf_counter())
        if due:
            run_batch(due)
        producer.poll(0)
        if a.stats and time.monotonic() - last_stats > 0.5:
            write_stats(a.stats, *service.snapshot()); last_stats = time.monotonic()

    if workers:
        # Every slot back means every batch is done; meanwhile serve deliveries, without which a
        # worker waiting for room in librdkafka's full queue would never finish.
        for _ in range(2 * a.workers):
            while not slots.acquire(timeout=0.05):
                producer.poll(0)
        workers.shutdown()
    producer.flush(30)
    consumer.close()  # commits the stored offsets
    if a.stats:
        write_stats(a.stats, *service.snapshot())


def write_stats(path: Path, totals, counts):
    """Writes the stage totals and counts atomically, for cell.py's before/after deltas."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"stages": totals, **counts, "time": time.time()}))
    tmp.replace(path)


if __name__ == "__main__":
    main()
