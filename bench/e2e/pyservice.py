#!/usr/bin/env python3
"""The Python baseline of bench/e2e: a Kafka service doing postclassd's work with the default
bundle (bench/e2e/pymodel.py), the way one would write it in Python.

- confluent-kafka (the system python3-confluent-kafka, on the same librdkafka as postclassd);
- micro-batches like postclassd's batcher: up to --batch-size records, closed --batch-wait-ms
  after the batch's first record;
- images decoded on a thread pool (Pillow releases the GIL), the networks in ONNX Runtime with
  --threads intra-op threads, heads in numpy, all in one process;
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
        for p in partitions:
            self.pending.pop((p.topic, p.partition), None)
            self.done.pop((p.topic, p.partition), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--input-topics", required=True)
    ap.add_argument("--output-topic", required=True)
    ap.add_argument("--dlq-topic", required=True)
    ap.add_argument("--group-id", required=True)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--batch-wait-ms", type=float, default=20)
    ap.add_argument("--model", type=Path, default=Path(__file__).resolve().parents[2] / "models" / "default")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="ONNX Runtime intra-op threads and image decode threads")
    ap.add_argument("--spinning", action="store_true", help="let ONNX Runtime's threads spin between ops (its default; off here because it steals the Kafka clients' CPU on a small machine)")
    ap.add_argument("--kafka", action="append", default=[], help="a librdkafka property key=value (repeatable), as postclassd's --kafka")
    ap.add_argument("--stats", type=Path)
    ap.add_argument("--cache", type=Path, help="folder for the class prompts' vectors")
    a = ap.parse_args()

    bundle = Bundle(a.model, threads=a.threads, spinning=a.spinning, cache=a.cache)
    # Warm-up, as postclassd does before consuming.
    states, mask, sentences = bundle.encode_text(["warming up the model", ""])
    bundle.image_logits(np.zeros((1, 3, 224, 224), np.float32))
    pool = ThreadPoolExecutor(a.threads)

    stop = False

    def on_signal(*_):
        nonlocal stop
        stop = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    marks = Watermarks()
    # postclassd's client settings (Sources/Kafka/*Configuration.swift), then --kafka.
    extra = dict(kv.split("=", 1) for kv in a.kafka)
    consumer = Consumer({"bootstrap.servers": a.brokers, "group.id": a.group_id, "enable.auto.commit": True,
                         "auto.commit.interval.ms": 1000, "enable.auto.offset.store": False,
                         "auto.offset.reset": "earliest", "partition.assignment.strategy": "cooperative-sticky",
                         "session.timeout.ms": 45000, "max.poll.interval.ms": 300000, **extra})
    producer = Producer({"bootstrap.servers": a.brokers, "message.max.bytes": 10 << 20, "enable.idempotence": True,
                         "linger.ms": 5, "queue.buffering.max.messages": 100000, "queue.buffering.max.kbytes": 128 << 10,
                         **{k: v for k, v in extra.items() if not k.startswith(("fetch.", "auto.commit"))}})
    consumer.subscribe(a.input_topics.split(","), on_revoke=lambda c, parts: marks.forget(parts))

    totals = {s: 0.0 for s in STAGES}
    counts = {"batches": 0, "posts": 0, "delivered": 0, "dead_lettered": 0, "delivery_failed": 0}

    def delivered(source_tp, offset):
        def callback(err, msg):
            if err is not None:
                counts["delivery_failed"] += 1  # left unstored: a restart reads it again
                return
            counts["delivered"] += 1
            nxt = marks.finish(source_tp, offset)
            if nxt is not None:
                consumer.store_offsets(offsets=[TopicPartition(source_tp[0], source_tp[1], nxt)])
        return callback

    def dead_letter(msg, code, text):
        headers = list(msg.headers() or []) + [("error.code", code.encode()), ("error.message", text.encode()),
                                               ("source.topic", msg.topic().encode()),
                                               ("source.partition", str(msg.partition()).encode()),
                                               ("source.offset", str(msg.offset()).encode())]
        producer.produce(a.dlq_topic, key=msg.key(), value=msg.value(), headers=headers,
                         on_delivery=delivered((msg.topic(), msg.partition()), msg.offset()))
        counts["dead_lettered"] += 1

    last_stats = 0.0
    wait = a.batch_wait_ms / 1000
    while not stop:
        t0 = time.perf_counter()
        producer.poll(0)
        msgs = consumer.consume(a.batch_size, timeout=0.1)
        if msgs and len(msgs) < a.batch_size:
            close_at = time.perf_counter() + wait  # the first record arrived just now
            while len(msgs) < a.batch_size and (left := close_at - time.perf_counter()) > 0:
                msgs += consumer.consume(a.batch_size - len(msgs), timeout=left)
                producer.poll(0)
        t1 = time.perf_counter()
        totals["poll"] += t1 - t0
        if not msgs:
            if time.monotonic() - last_stats > 0.5 and a.stats:
                write_stats(a.stats, totals, counts); last_stats = time.monotonic()
            continue

        # decode: JSON + base64, invalid records to the dead-letter topic
        posts = []
        for m in msgs:
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    print(f"consumer error: {m.error()}", file=sys.stderr)
                continue
            marks.track((m.topic(), m.partition()), m.offset())
            try:
                post = json.loads(m.value())
                if not isinstance(post, dict) or "id" not in post or ("text" not in post and "image" not in post):
                    raise ValueError("missing id, or neither text nor image")
                jpeg = base64.b64decode(post.pop("image"), validate=True) if "image" in post else None
            except (ValueError, binascii.Error, TypeError) as e:
                dead_letter(m, "malformed_json", str(e))
                continue
            posts.append((m, post, jpeg))
        t2 = time.perf_counter()
        totals["decode"] += t2 - t1
        if not posts:
            continue

        # image decode + preprocessing, in parallel
        futures = [pool.submit(bundle.load_image, jpeg) if jpeg is not None else None for _, _, jpeg in posts]
        pixels, image_rows, kept = [], [None] * len(posts), []
        for i, f in enumerate(futures):
            if f is None:
                kept.append(i); continue
            try:
                pixels.append(f.result()); image_rows[i] = len(pixels) - 1; kept.append(i)
            except Exception as e:  # noqa: BLE001 - any decoder failure is the post's
                dead_letter(posts[i][0], "undecodable_image", str(e))
        posts = [posts[i] for i in kept]
        image_rows = [image_rows[i] for i in kept]
        t3 = time.perf_counter()
        if not posts:
            continue

        ids, mask, words = bundle.tokenize([p.get("text") or "" for _, p, _ in posts])
        t4 = time.perf_counter()
        states, sentences = bundle.text_states(ids, mask)
        t5 = time.perf_counter()
        logits = bundle.image_logits(np.stack(pixels)) if pixels else None
        t6 = time.perf_counter()
        sarcasm = bundle.sarcasm_labels(states, mask)
        labels = []
        for b in range(len(posts)):
            row = image_rows[b]
            correlation = (bundle.correlation_label(logits[row], sentences[b], words[b], states[b])
                           if row is not None else Bundle.no_image("correlation"))
            labels.append({"sarcasm": sarcasm[b], "correlation": correlation})
        t7 = time.perf_counter()

        for (m, post, _), label in zip(posts, labels):
            post["labels"] = label
            post["model"] = bundle.identity
            post["source"] = {"topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
                              "timestamp": m.timestamp()[1]}
            headers = list(m.headers() or []) + [("source.topic", m.topic().encode()),
                                                 ("source.partition", str(m.partition()).encode()),
                                                 ("source.offset", str(m.offset()).encode())]
            while True:
                try:
                    producer.produce(a.output_topic, key=m.key(), value=json.dumps(post, separators=(",", ":")),
                                     headers=headers, on_delivery=delivered((m.topic(), m.partition()), m.offset()))
                    break
                except BufferError:
                    producer.poll(0.01)
        producer.poll(0)
        t8 = time.perf_counter()
        for stage, dt in zip(STAGES[2:], [t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6, t8 - t7]):
            totals[stage] += dt
        counts["batches"] += 1
        counts["posts"] += len(posts)
        if a.stats and time.monotonic() - last_stats > 0.5:
            write_stats(a.stats, totals, counts); last_stats = time.monotonic()

    producer.flush(30)
    consumer.close()  # commits the stored offsets
    if a.stats:
        write_stats(a.stats, totals, counts)


def write_stats(path: Path, totals, counts):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"stages": totals, **counts, "time": time.time()}))
    tmp.replace(path)


if __name__ == "__main__":
    main()
