"""Prints labelled records (JSON lines on stdin) as they arrive: a readable summary, then the record.

Usage: kcat ... -f '%s\n' labels | python3 scripts/demo/show.py [--count N] [--expect ID:TASK=LABEL ...]
With --count, exits after N records and fails if any record lacks a label or an --expect fails.
"""
import json
import sys


def summary(record: dict) -> str:
    labels = record.get("labels", {})
    parts = [f"{record.get('id', '?'):8}"]
    sarcasm = labels.get("sarcasm")
    if sarcasm:
        p = sarcasm.get("probabilities", {}).get("sarcastic")
        parts.append(f"sarcasm={sarcasm['label']}" + (f" (p={p:.2f})" if p is not None else ""))
    correlation = labels.get("correlation")
    if correlation:
        ev = correlation.get("evidence", {})
        detail = f" [{ev['concept']} ~ {ev.get('words', '')!r}, similarity {ev.get('similarity')}]" if "concept" in ev else ""
        parts.append(f"correlation={correlation['label']}{detail}")
    text = record.get("text", "")
    parts.append(f"\"{text[:60]}\"")
    return "  ".join(parts)


def main() -> int:
    count = int(sys.argv[sys.argv.index("--count") + 1]) if "--count" in sys.argv else None
    expected = {}
    for i, arg in enumerate(sys.argv):
        if arg == "--expect":
            post, label = sys.argv[i + 1].split(":", 1)
            task, value = label.split("=", 1)
            expected[(post, task)] = value
    seen = 0
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        record = json.loads(line)
        print("\033[1m" + summary(record) + "\033[0m")
        print("  " + line)
        sys.stdout.flush()
        if "sarcasm" not in record.get("labels", {}) or "correlation" not in record.get("labels", {}):
            print(f"record {record.get('id')} lacks a label", file=sys.stderr)
            return 1
        for (post, task), value in expected.items():
            got = record.get("labels", {}).get(task, {}).get("label")
            if record.get("id") == post and got != value:
                print(f"record {post}: {task} is {got}, expected {value}", file=sys.stderr)
                return 1
        seen += 1
        if count is not None and seen >= count:
            return 0
    return 0 if count is None or seen >= count else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C ends the demo: stop quietly, with the shell's status for SIGINT
        sys.exit(130)
