#!/usr/bin/env python3
"""Reproduces noida-db 0.2.3's stuck cooperative rebalance, without postclassd.

Member a (a plain confluent-kafka consumer) owns all 6 partitions of a topic; member b joins the
same group. With cooperative-sticky (postclassd's default) a rebalance takes two rounds: a gives up
3 partitions, then both join again and b gets them. On noida-db the second round mostly never
finishes (both members wait in JoinGroup); on librdkafka's mock cluster, and with the eager range
protocol on noida-db, every trial balances.

Usage: /usr/bin/python3 bench/soak/noida_join.py BOOTSTRAP [--trials 5] [--strategy cooperative-sticky|range]
                                                  [--static] [--no-create]
One line per trial (a fresh group each); exits 1 if any trial stayed unbalanced for 40 s.
"""
import argparse
import threading
import time

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

TOPIC = "join-topic"


def member(args, group, name, static, owned, stop):
    """Polls until `stop`, keeping owned[name] = how many partitions it holds."""
    config = {"bootstrap.servers": args.bootstrap, "group.id": group, "session.timeout.ms": 10000,
              "partition.assignment.strategy": args.strategy, "log_level": 0}
    if static:
        config["group.instance.id"] = f"{group}-{name}"
    consumer = Consumer(config)
    consumer.subscribe([TOPIC],
                       on_assign=lambda _, parts: owned.__setitem__(name, owned.get(name, 0) + len(parts)),
                       on_revoke=lambda _, parts: owned.__setitem__(name, owned.get(name, 0) - len(parts)))
    while not stop.is_set():
        consumer.poll(0.1)
    consumer.close()


def trial(args, number):
    group, owned, stop = f"join-{number}-{time.time()}", {}, threading.Event()
    a = threading.Thread(target=member, args=(args, group, "a", args.static, owned, stop))
    a.start()
    while owned.get("a", 0) != 6:
        time.sleep(0.1)
    time.sleep(2)
    b = threading.Thread(target=member, args=(args, group, "b", False, owned, stop))
    b.start()
    start = time.time()
    balanced = lambda: owned.get("b", 0) > 0 and owned.get("a", 0) + owned.get("b", 0) == 6
    while time.time() - start < 40 and not balanced():
        time.sleep(0.1)
    print(f"trial {number}: {'balanced' if balanced() else 'STUCK'} after {time.time() - start:.1f} s, "
          f"partitions held {owned}", flush=True)
    stop.set()
    a.join()
    b.join()
    return balanced()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--strategy", default="cooperative-sticky")
    parser.add_argument("--static", action="store_true", help="member a with a group.instance.id (as the soak's)")
    parser.add_argument("--no-create", action="store_true", help="the topic exists (postclassd broker --topics join-topic:6)")
    args = parser.parse_args()
    if not args.no_create:
        admin = AdminClient({"bootstrap.servers": args.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 6, 1)])[TOPIC].result()
    results = [trial(args, n) for n in range(args.trials)]
    raise SystemExit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
