"""Encodes the correlation pairs once for tuning: image logits, text vectors and words, class names.

Usage: models/.venv/bin/python tools/bundles/correlation/features.py [--bin .build/release/postclassd]
           [--out models/correlation-features.npz]

Image logits come from the engine itself: `postclassd encode-image` gives each JPEG's pooled
features (its libjpeg decoding with DCT downscaling, its preprocessing, its network), and the
classifier layer is applied here from the encoder's weights. The numpy reference decodes with
Pillow at full size, which moves some class probabilities by a few hundredths: enough to change
which classes pass min_concept_probability, so tuning on it would tune another head. Texts come
from minilm_numpy.py, which agrees with the Swift encoder to about 1e-6.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE))
from minilm_numpy import MiniLM  # noqa: E402


def read_pairs(path: Path) -> list[tuple[str, str, str, str]]:
    """(split, photo, label, text) per pair."""
    rows = []
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            split, photo, label, text = line.split("\t")
            rows.append((split, photo, label, text))
    return rows


def image_logits(photos: list[str], images: Path, encoder: Path, binary: str) -> np.ndarray:
    from safetensors.numpy import load_file
    out = subprocess.run([binary, "encode-image", "--encoder", str(encoder), *[str(images / p) for p in photos]],
                         check=True, capture_output=True, text=True).stdout
    pooled = np.array([json.loads(line)["pooled"] for line in out.splitlines()], np.float32)
    weights = load_file(str(encoder / "model.safetensors"))
    return pooled @ weights["_fc.weight"].astype(np.float32).T + weights["_fc.bias"].astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=Path, default=HERE / "pairs.tsv")
    ap.add_argument("--images", type=Path, default=ROOT / "models/correlation-images")
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--out", type=Path, default=ROOT / "models/correlation-features.npz")
    ap.add_argument("--bin", default=str(ROOT / ".build/release/postclassd"))
    ap.add_argument("--encoder", type=Path, help="image encoder folder (default: MODELS/efficientnet-lite0)")
    args = ap.parse_args()
    pairs = read_pairs(args.pairs)
    photos = sorted({p[1] for p in pairs})
    logits = image_logits(photos, args.images, args.encoder or args.models / "efficientnet-lite0", args.bin)
    text = MiniLM(args.models / "all-MiniLM-L6-v2")
    texts = [p[3] for p in pairs]
    np.savez(args.out, photos=np.array(photos), logits=logits.astype(np.float32),
             split=np.array([p[0] for p in pairs]), photo=np.array([p[1] for p in pairs]),
             label=np.array([p[2] for p in pairs]), text=np.array(texts),
             vectors=text.encode(texts), words=np.array([json.dumps(text.words(t)) for t in texts]))
    print(f"wrote {args.out}: {len(photos)} photos, {len(pairs)} texts")


if __name__ == "__main__":
    main()
