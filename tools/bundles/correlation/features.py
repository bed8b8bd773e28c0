"""Encodes the correlation pairs once for tuning: image logits, text vectors and words, class names.

Usage: models/.venv/bin/python tools/bundles/correlation/features.py [--out models/correlation-features.npz]

Image logits come from the numpy EfficientNet-Lite reference on the JPEGs make_pairs.py wrote (the
Swift preprocessing's numpy reference), texts from minilm_numpy.py; both agree with the Swift
engine to about 1e-5, which is what tune.py needs (the final numbers come from `postclassd classify`).
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path[:0] = [str(HERE), str(ROOT / "tools/reference"), str(ROOT / "tools/images")]
from minilm_numpy import MiniLM  # noqa: E402


def read_pairs(path: Path) -> list[tuple[str, str, str, str]]:
    """(split, photo, label, text) per pair."""
    rows = []
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            split, photo, label, text = line.split("\t")
            rows.append((split, photo, label, text))
    return rows


def image_logits(photos: list[str], images: Path, encoder: Path) -> np.ndarray:
    import efficientnet_reference as ref
    from preprocess_reference import preprocess
    tensors, cfg = ref.load_checkpoint(encoder)
    out = []
    for photo in photos:
        rgb = np.asarray(Image.open(images / photo).convert("RGB"))
        out.append(ref.stages(tensors, cfg, preprocess(rgb, cfg["preprocess"]))["logits"])
    return np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=Path, default=HERE / "pairs.tsv")
    ap.add_argument("--images", type=Path, default=ROOT / "models/correlation-images")
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--out", type=Path, default=ROOT / "models/correlation-features.npz")
    args = ap.parse_args()
    pairs = read_pairs(args.pairs)
    photos = sorted({p[1] for p in pairs})
    logits = image_logits(photos, args.images, args.models / "efficientnet-lite0")
    text = MiniLM(args.models / "all-MiniLM-L6-v2")
    texts = [p[3] for p in pairs]
    np.savez(args.out, photos=np.array(photos), logits=logits.astype(np.float32),
             split=np.array([p[0] for p in pairs]), photo=np.array([p[1] for p in pairs]),
             label=np.array([p[2] for p in pairs]), text=np.array(texts),
             vectors=text.encode(texts), words=np.array([json.dumps(text.words(t)) for t in texts]))
    print(f"wrote {args.out}: {len(photos)} photos, {len(pairs)} texts")


if __name__ == "__main__":
    main()
