#!/usr/bin/env python3
"""Counts kcat's output (one line per message) and prints "COUNT SECONDS", the seconds running
from the first message to the last, so kcat's own start-up is not charged to its consume rate."""
import sys, time

count = 0
first = last = None
for _ in sys.stdin.buffer:
    last = time.monotonic()
    if first is None:
        first = last
    count += 1
print(count, (last - first) if first else 0.0)
