#!/usr/bin/env python3
"""Pillow baseline for the image benchmark: decode + resize + normalise the
same 1200x900 JPEG to a 224x224 ImageNet-normalised NCHW float32 array.

Two variants:
  pillow_decode_resize        Image.open -> RGB -> resize((224, 224), BILINEAR) -> numpy normalise
                              (what torchvision / HF processors do: full decode)
  pillow_draft_decode_resize  the same with im.draft() first: libjpeg's DCT scaling to the smallest
                              1/1, 1/2, 1/4, 1/8 size still at least 224x224 (300x225 here), the rule
                              of the Swift decoder's `.atLeast(width:height:)` for this squash config

Each is compared with the Swift side's matching variant (bench/image/summarize_jpeg.py).

Prints one line per variant and, with --json FILE, writes {variant: images_per_second}.
"""

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)


def pipeline(data: bytes, draft: bool) -> np.ndarray:
    """One image through the whole preprocessing, as a Python service would write it."""
    im = Image.open(io.BytesIO(data))
    if draft:
        im.draft("RGB", (224, 224))
    im = im.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
    x = np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return (x - MEAN) / STD


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", type=Path, default=ROOT / "models/test-images/coffee_1200x900_q85.jpg")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    data = args.image.read_bytes()
    results = {}
    for name, draft in [("pillow_decode_resize", False), ("pillow_draft_decode_resize", True)]:
        for _ in range(5):
            pipeline(data, draft)
        t = time.perf_counter()
        for _ in range(args.iterations):
            pipeline(data, draft)
        dt = time.perf_counter() - t
        results[name] = args.iterations / dt
        print(f"bench {name}: {args.iterations / dt:.1f} images/s ({dt * 1000 / args.iterations:.3f} ms each)")
    if args.json:
        args.json.write_text(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
