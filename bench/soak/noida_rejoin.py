#!/usr/bin/env python3
"""Reproduces the broker behaviour that shapes the soak's kill -9 fault, without postclassd.

A plain confluent-kafka consumer joins group "rejoin" on a 4-partition topic, is killed with
SIGKILL (so it never leaves), and a fresh consumer joins the same group. On a broker that expires
sessions (Kafka; librdkafka's mock cluster) the newcomer gets the partitions about
session.timeout.ms (10 s here) after the kill. On noida-db 0.2.3 it gets nothing: the dead member
is never expired, and the group waits for it. With --static both consumers use the same
group.instance.id, and the newcomer takes the dead member's place at once on either broker.

Usage: /usr/bin/python3 bench/soak/noida_rejoin.py BOOTSTRAP [--static] [--wait 60] [--create-topic]
Prints when each consumer got its assignment; exits 0 if the newcomer got partitions within --wait.
"""
import argparse
import selectors
import signal
import subprocess
import sys
import time

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

TOPIC, GROUP = "rejoin-topic", "rejoin"


def member(bootstrap, static, name):
    """A group member that prints its assignments and polls until killed."""
    config = {"bootstrap.servers": bootstrap, "group.id": GROUP, "session.timeout.ms": 10000,
              "partition.assignment.strategy": "range", "log_level": 0}
    if static:
        config["group.instance.id"] = "rejoin-member"
    consumer = Consumer(config)
    consumer.subscribe([TOPIC], on_assign=lambda _, parts: print(
        f"  {time.strftime('%H:%M:%S')} member {name} assigned {len(parts)} partitions", flush=True))
    while True:
        consumer.poll(0.2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("--static", action="store_true", help="both consumers use one group.instance.id")
    parser.add_argument("--wait", type=float, default=60, help="how long the newcomer gets")
    parser.add_argument("--create-topic", action="store_true", help="create the topic first (noida-db)")
    parser.add_argument("--member", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.member:
        member(args.bootstrap, args.static, args.member)
    if args.create_topic:
        admin = AdminClient({"bootstrap.servers": args.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 4, 1)])[TOPIC].result()

    def start(name):
        command = [sys.executable, __file__, args.bootstrap, "--member", name] + (["--static"] if args.static else [])
        return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)

    first = start("first")
    print(first.stdout.readline(), end="", flush=True)       # waits for its assignment
    first.send_signal(signal.SIGKILL)
    first.wait()
    print(f"  {time.strftime('%H:%M:%S')} first member killed (-9); second member joins", flush=True)
    second = start("second")
    deadline = time.monotonic() + args.wait
    got = False
    selector = selectors.DefaultSelector()
    selector.register(second.stdout, selectors.EVENT_READ)
    while time.monotonic() < deadline and not got:
        if selector.select(timeout=max(0, deadline - time.monotonic())):
            print(second.stdout.readline(), end="", flush=True)
            got = True
    second.kill()
    second.wait()
    print(f"  result: the second member {'got' if got else 'did NOT get'} partitions within {args.wait:.0f} s")
    sys.exit(0 if got else 1)


if __name__ == "__main__":
    main()
