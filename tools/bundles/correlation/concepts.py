"""Class description vectors for the zero-shot correlation head: per ImageNet class the mean of the
unit MiniLM sentence vectors of its name in every template (tools/reference/zero_shot_reference.py,
concept_vectors), written as the safetensors file the manifest's `concept_vectors` names.

Usage: models/.venv/bin/python tools/bundles/correlation/concepts.py --bundle models/default \
           --encoder models/all-MiniLM-L6-v2 --classes models/efficientnet-lite0/imagenet_classes.txt

The templates and the file's path come from the bundle manifest's zero_shot_imagenet head
(`templates`, `concept_vectors`), so the file and the manifest cannot disagree. Per-template vectors are cached (--cache) because tune.py tries many templates.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1] / "reference")]
from zero_shot_reference import concept_vectors  # noqa: E402


def class_names(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def template_vectors(encoder, names: list[str], template: str, cache: Path | None) -> np.ndarray:
    """[C, d] sentence vectors of `template` with every class name, cached by template and names."""
    key = hashlib.sha256(json.dumps([template, names]).encode()).hexdigest()[:16]
    path = cache / f"{key}.npy" if cache else None
    if path and path.exists():
        return np.load(path)
    vectors = encoder().encode([template.replace("{}", n) for n in names])
    if path:
        cache.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors


def make(templates: list[str], names: list[str], encoder_dir: Path, cache: Path | None) -> np.ndarray:
    loaded = []

    def encoder():
        if not loaded:
            from minilm_numpy import MiniLM
            loaded.append(MiniLM(encoder_dir))
        return loaded[0]

    return concept_vectors([template_vectors(encoder, names, t, cache) for t in templates]).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, required=True, help="bundle folder with manifest.json")
    ap.add_argument("--encoder", type=Path, required=True)
    ap.add_argument("--classes", type=Path, required=True)
    ap.add_argument("--cache", type=Path)
    args = ap.parse_args()
    manifest = json.loads((args.bundle / "manifest.json").read_text())
    config = next(h for h in manifest["heads"] if h["kind"] == "zero_shot_imagenet").get("config", {})
    if "concept_vectors" not in config:
        sys.exit(f"{args.bundle}/manifest.json: the zero_shot_imagenet head names no concept_vectors file")
    templates, out = config["templates"], args.bundle / config["concept_vectors"]
    from safetensors.numpy import save_file
    vectors = make(templates, class_names(args.classes), args.encoder, args.cache)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({"concepts": vectors}, str(out), metadata={"templates": json.dumps(templates)})
    out.chmod(0o644)  # save_file makes 0600; the daemon may run as another user
    print(f"wrote {out}: {vectors.shape[0]} classes x {vectors.shape[1]}, {len(templates)} templates")


if __name__ == "__main__":
    main()
