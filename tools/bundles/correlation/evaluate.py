"""Measures a correlation head with the real binary (`postclassd classify`) on the pairs of make_pairs.py.

Usage: models/.venv/bin/python tools/bundles/correlation/evaluate.py [--manifest tools/bundles/default/manifest.json]
           [--bin .build/release/postclassd] [--split report] [--verbose]

Assembles the manifest's correlation head alone into a bundle folder under models/ (linking the
encoders and word vectors scripts/setup-models.sh placed, and making the concept vectors file the
manifest names with concepts.py), classifies every pair of the split, and prints accuracy,
per-class recall and the confusion table.
"""
import argparse
import base64
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
LABELS = ["irrelevant", "implicit", "explicit"]


def assemble(manifest_path: Path, models: Path, name: str) -> Path:
    manifest = json.loads(manifest_path.read_text())
    manifest["heads"] = [h for h in manifest["heads"] if h["task"] == "correlation"]
    folder = models / name
    folder.mkdir(exist_ok=True)
    for link, target in [("text-encoder", "all-MiniLM-L6-v2"), ("image-encoder", "efficientnet-lite0"), ("glove", "glove-6b-50d")]:
        if not (folder / link).is_symlink():
            (folder / link).symlink_to(f"../{target}")
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    config = manifest["heads"][0].get("config", {})
    if "concept_vectors" in config:
        subprocess.run([sys.executable, str(HERE / "concepts.py"), "--bundle", str(folder),
                        "--encoder", str(models / "all-MiniLM-L6-v2"),
                        "--classes", str(models / "efficientnet-lite0/imagenet_classes.txt"),
                        "--cache", str(models / "correlation-cache")],
                       check=True, stdout=subprocess.DEVNULL)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", type=Path, default=ROOT / "tools/bundles/default/manifest.json")
    ap.add_argument("--bin", default=str(ROOT / ".build/release/postclassd"))
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--pairs", type=Path, default=HERE / "pairs.tsv")
    ap.add_argument("--images", type=Path, default=ROOT / "models/correlation-images")
    ap.add_argument("--split", default="report", choices=["tune", "report", "all"])
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    bundle = assemble(args.manifest, args.models, "correlation-eval-bundle")
    pairs = []
    for line in args.pairs.read_text().splitlines():
        if line and not line.startswith("#"):
            split, image, expected, text = line.split("\t")
            if args.split in ("all", split):
                pairs.append((image, expected, text))
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for i, (image, _, text) in enumerate(pairs):
            jpeg = base64.b64encode((args.images / image).read_bytes()).decode()
            f.write(json.dumps({"id": f"pair-{i}", "text": text, "image": jpeg}) + "\n")
        path = f.name
    out = subprocess.run([args.bin, "classify", path, "--model", str(bundle)], check=True,
                         capture_output=True, text=True).stdout
    Path(path).unlink()
    records = [json.loads(line) for line in out.splitlines()]
    confusion = {(e, p): 0 for e in LABELS for p in LABELS}
    for (image, expected, text), record in zip(pairs, records):
        label = record["labels"]["correlation"]
        confusion[(expected, label["label"])] += 1
        if args.verbose:
            mark = "ok " if expected == label["label"] else "XX "
            ev = label.get("evidence", {})
            print(f"{mark}{expected:10} -> {label['label']:10} {json.dumps(ev)}  {image}: {text}")
    correct = sum(confusion[(l, l)] for l in LABELS)
    print(f"{args.split} split, {len(pairs)} pairs: accuracy {correct}/{len(pairs)} = {correct / len(pairs):.3f}")
    print("recall " + ", ".join(f"{l} {confusion[(l, l)] / max(1, sum(confusion[(l, p)] for p in LABELS)):.3f}" for l in LABELS))
    print("expected \\ predicted  " + "  ".join(f"{p:>10}" for p in LABELS))
    for e in LABELS:
        print(f"{e:20} " + "  ".join(f"{confusion[(e, p)]:>10}" for p in LABELS))


if __name__ == "__main__":
    sys.exit(main())
