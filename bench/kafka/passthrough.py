#!/usr/bin/env python3
"""Baseline: the same consume-then-produce pass-through as kafka-bench, in Python with
confluent-kafka (Debian's python3-confluent-kafka, on the same librdkafka). Offsets are stored
only after delivery, as the contiguous low watermark per partition, like the Swift loop; polls
take what is queued without waiting for a full batch, like the Swift loop's KafkaConsumer.poll."""
import argparse, collections, json, resource, sys, time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))
from kafkapoll import take_available  # noqa: E402  (KafkaConsumer.poll's logic, shared by the benches)


def cpu_seconds():
    """User plus system CPU time of this process so far, all threads (librdkafka's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime




def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--consumer-property", action="append", default=[], help="KEY=VALUE (repeatable)")
    ap.add_argument("--producer-property", action="append", default=[], help="KEY=VALUE (repeatable)")
    a = ap.parse_args()

    consumer = Consumer({"bootstrap.servers": a.brokers, "group.id": a.group, "auto.offset.reset": "earliest",
                         "enable.auto.offset.store": False, "partition.assignment.strategy": "cooperative-sticky",
                         # the feeder paces itself on this group's commits, as for the Swift loop
                         "auto.commit.interval.ms": 100,
                         **dict(p.split("=", 1) for p in a.consumer_property)})
    producer = Producer({"bootstrap.servers": a.brokers, "enable.idempotence": True, "linger.ms": 5,
                         "message.max.bytes": 4000000,
                         **dict(p.split("=", 1) for p in a.producer_property)})
    consumer.subscribe([a.input])
    pending = {}   # partition -> (deque of offsets in consumption order, set of finished offsets)
    stats = {"messages": 0, "bytes": 0, "polls": 0, "poll_seconds": 0.0}

    def delivered(err, msg, source):
        if err is not None:
            return
        part, offset, size = source
        queue, done = pending[part]
        done.add(offset)
        nxt = None
        while queue and queue[0] in done:
            done.discard(queue[0])
            nxt = queue.popleft() + 1
        if nxt is not None:
            consumer.store_offsets(offsets=[TopicPartition(a.input, part, nxt)])
        stats["messages"] += 1
        stats["bytes"] += size

    first = None
    deadline = time.monotonic() + a.duration
    while time.monotonic() < deadline:
        started = time.monotonic()
        batch = take_available(consumer, a.batch, 0.1)
        if first is not None:  # after the first message only, like the rate (not the group join)
            stats["poll_seconds"] += time.monotonic() - started
        stats["polls"] += 1
        if batch and first is None:
            first = time.monotonic()
            cpu_at_first = cpu_seconds()
        for m in batch:
            if m.error():
                continue
            value = m.value()
            src = (m.partition(), m.offset(), len(value or b""))
            pending.setdefault(m.partition(), (collections.deque(), set()))[0].append(m.offset())
            while True:
                try:
                    producer.produce(a.output, value=value, key=m.key(), headers=m.headers(),
                                     on_delivery=lambda err, msg, src=src: delivered(err, msg, src))
                    break
                except BufferError:
                    producer.poll(0.01)
            producer.poll(0)
        producer.poll(0)
    end = time.monotonic()
    cpu = cpu_seconds() - cpu_at_first if first else 0.0
    producer.flush(10)
    consumer.close()
    print(json.dumps({"messages": stats["messages"], "bytes": stats["bytes"],
                      "seconds": (end - first) if first else 0,
                      "polls": stats["polls"], "poll_seconds": stats["poll_seconds"],
                      "cpu_seconds": cpu}))


if __name__ == "__main__":
    main()
