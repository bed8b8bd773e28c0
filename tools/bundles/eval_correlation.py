"""Scores a bundle's correlation head on tools/bundles/default/correlation-eval.tsv.

Usage: python3 tools/bundles/eval_correlation.py [--bin PATH] [--model models/default]
Runs `postclassd classify` (the real binary) on the pairs and prints accuracy, a confusion
table, and each pair's evidence. The set predates the calibrated head and shares photos with both
splits of tools/bundles/correlation/pairs.tsv; tools/bundles/correlation/evaluate.py measures
the head on that larger set's held-out split.
"""
import argparse
import base64
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LABELS = ["irrelevant", "implicit", "explicit"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=str(ROOT / ".build/release/postclassd"))
    parser.add_argument("--model", default=str(ROOT / "models/default"))
    parser.add_argument("--pairs", default=str(ROOT / "tools/bundles/default/correlation-eval.tsv"))
    parser.add_argument("--images", default=str(ROOT / "models/demo-images"))
    args = parser.parse_args()

    pairs = []
    for line in Path(args.pairs).read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        image, expected, text = line.split("\t")
        pairs.append((image, expected, text))
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for i, (image, _, text) in enumerate(pairs):
            jpeg = base64.b64encode((Path(args.images) / image).read_bytes()).decode()
            f.write(json.dumps({"id": f"pair-{i}", "text": text, "image": jpeg}) + "\n")
        path = f.name
    out = subprocess.run([args.bin, "classify", path, "--model", args.model], check=True,
                         capture_output=True, text=True).stdout
    records = [json.loads(line) for line in out.splitlines()]
    confusion = {(e, p): 0 for e in LABELS for p in LABELS}
    correct = 0
    for (image, expected, text), record in zip(pairs, records):
        label = record["labels"]["correlation"]
        ev = label.get("evidence", {})
        confusion[(expected, label["label"])] += 1
        correct += expected == label["label"]
        mark = "ok " if expected == label["label"] else "XX "
        print(f"{mark}{expected:10} -> {label['label']:10} similarity {ev.get('similarity')} ({ev.get('concept')}, {ev.get('match')}: {ev.get('words')})  {image}: {text}")
    print(f"\naccuracy {correct}/{len(pairs)} = {correct / len(pairs):.2f}")
    print("expected \\ predicted  " + "  ".join(f"{p:>10}" for p in LABELS))
    for e in LABELS:
        print(f"{e:20} " + "  ".join(f"{confusion[(e, p)]:>10}" for p in LABELS))


if __name__ == "__main__":
    sys.exit(main())
