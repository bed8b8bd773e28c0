#!/usr/bin/env python3
"""Prints the Kafka-layer benchmark table from its JSON lines: each system's median rate over
rounds, and the Swift loop's rate as a ratio of the Python loop's and of kcat's raw consume,
taken round by round (each round measures all three on the same broker and data) and then the
median of those per-round ratios. Beside the rates: each loop's CPU time per message (all its
threads, librdkafka's included), and how many times more CPU per message the Python loop needs
than the Swift one; when the broker or the feed is the limit, that says what rate cannot. Last, the
broker's own CPU per message and how busy it was (its CPU seconds over the run's wall seconds, start-up
and group join included, so a lower bound): one broker process near 100% is one saturated core."""
import collections, json, statistics, sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
runs = collections.defaultdict(dict)   # (broker, size, system) -> round -> row
for r in rows:
    runs[(r["broker"], r["size"], r["system"])][r.get("round", 1)] = r


def ratios(broker, size, baseline):
    """Swift / baseline for every round that measured both."""
    swift, base = runs.get((broker, size, "swift"), {}), runs.get((broker, size, baseline), {})
    return [swift[k]["msgs_per_s"] / base[k]["msgs_per_s"]
            for k in sorted(swift) if k in base and base[k]["msgs_per_s"]]


def cpu_per_message(row):
    """Microseconds of CPU per message passed through, or None where not measured."""
    return 1e6 * row["cpu_seconds"] / row["messages"] if row.get("cpu_seconds") and row["messages"] else None


def broker_cpu_per_message(row):
    """Microseconds of the broker's CPU per message, or None where not measured."""
    return 1e6 * row["broker_cpu_seconds"] / row["messages"] if row.get("broker_cpu_seconds") and row["messages"] else None


def broker_busy(row):
    """The broker's CPU seconds over the wall seconds of the run, or None where not measured."""
    return row["broker_cpu_seconds"] / row["broker_wall_seconds"] if row.get("broker_wall_seconds") else None


def median_of(values, fmt):
    """The median of the measured values formatted with fmt, or "-" where no round measured it."""
    values = [v for v in values if v is not None]
    return fmt.format(statistics.median(values)) if values else "-"


def cpu_ratios(broker, size):
    """Python's CPU per message / Swift's, for every round that measured both."""
    swift, py = runs.get((broker, size, "swift"), {}), runs.get((broker, size, "python"), {})
    pairs = [(cpu_per_message(swift[k]), cpu_per_message(py[k])) for k in sorted(swift) if k in py]
    return [p / s for s, p in pairs if s and p]


print(f"{'broker':9} {'size':>6} {'system':7} {'msgs/s':>10} {'MB/s':>8} {'poll s':>7} {'vs python':>10} {'vs kcat':>8} {'cpu us/msg':>10} {'cpu vs py':>9} {'broker us/msg':>13} {'broker busy':>11}  rounds (vs python; vs kcat; cpu vs py)")
for (broker, size, system), by_round in sorted(runs.items()):
    rate = statistics.median(r["msgs_per_s"] for r in by_round.values())
    mb = statistics.median(r["mb_per_s"] for r in by_round.values())
    waits = [r["poll_seconds"] / r["seconds"] for r in by_round.values() if "poll_seconds" in r and r["seconds"]]
    wait = f"{100 * statistics.median(waits):.0f}%" if waits else "-"
    cpus = [c for c in map(cpu_per_message, by_round.values()) if c]
    cpu = f"{statistics.median(cpus):.1f}" if cpus else "-"
    vs_py = vs_kc = cpu_vs = "-"
    detail = ""
    if system == "swift":
        py, kc = ratios(broker, size, "python"), ratios(broker, size, "kcat")
        vs_py = f"{statistics.median(py):.2f}x" if py else "-"
        vs_kc = f"{100 * statistics.median(kc):.0f}%" if kc else "-"
        cr = cpu_ratios(broker, size)
        cpu_vs = f"{statistics.median(cr):.2f}x" if cr else "-"
        detail = ("  " + " ".join(f"{x:.2f}x" for x in py) + "; " + " ".join(f"{100 * x:.0f}%" for x in kc)
                  + "; " + " ".join(f"{x:.2f}x" for x in cr))
    broker_us = median_of(map(broker_cpu_per_message, by_round.values()), "{:.1f}")
    busy = median_of(map(broker_busy, by_round.values()), "{:.0%}")
    print(f"{broker:9} {size:>6} {system:7} {rate:>10.0f} {mb:>8.1f} {wait:>7} {vs_py:>10} {vs_kc:>8} {cpu:>10} {cpu_vs:>9} {broker_us:>13} {busy:>11}{detail}")
print("cpu us/msg: the loop's own CPU (all threads) per message; cpu vs py: Python's CPU per message / Swift's.")
print("poll s: time in poll after the first message, over the run from the first message; near 100%: the broker or the feed is the limit.")
print("broker us/msg: the broker process's CPU per message the system moved; broker busy: its CPU over the run's wall time (100% = one core).")
