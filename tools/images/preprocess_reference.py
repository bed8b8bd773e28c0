#!/usr/bin/env python3
"""numpy reference of postclassd's image preprocessing (Sources/Model/Image).

The algorithm, which the Swift code implements in Float32 and this file in
float64:

1. Geometry. `squash`: resize to (width, height). `shortest_side_center_crop`:
   resize so the shorter side is S = shortest_side (default max(width, height));
   the longer side is floor(S * long / short) in integers; then crop
   width x height starting at floor((resized - crop) / 2) on each axis.
2. Resampling: Pillow's antialiased `Image.resize` filters, separable. For an
   axis resized from n to m, output index i uses
       scale = n / m, fs = max(scale, 1), support = s0 * fs
       (s0 = 1 bilinear, 2 bicubic),
       center = (i + 0.5) * scale,
       lo = max(trunc(center - support + 0.5), 0),
       hi = min(trunc(center + support + 0.5), n),
       w_k = K((lo + k - center + 0.5) / fs) for k in 0 ..< hi - lo, normalised to sum 1,
   with K the triangle (bilinear) or Keys cubic with a = -0.5 (bicubic).
   No rounding or clamping between the passes (Pillow's 8-bit path does both;
   that is the only difference from Pillow and is below 1 level except at
   hard edges with bicubic).
3. Clamp to [0, 255], then (x * rescale_factor - mean[c]) / std[c].
4. Layout NCHW ([3, H, W]) or NHWC ([H, W, 3]), float32.

Run as a script it writes the golden cases used by
Tests/ModelTests/PreprocessTests.swift from the committed fixture images:
    python3 tools/images/preprocess_reference.py           # write the cases
    python3 tools/images/preprocess_reference.py --vs-pillow  # compare the resize with Pillow's
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "ModelTests" / "Fixtures" / "images"


def kernel(filter_name: str, x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    if filter_name == "bilinear":
        return np.where(x < 1, 1 - x, 0.0)
    if filter_name == "bicubic":
        a = -0.5
        return np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                        np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))
    raise ValueError(filter_name)


def weight_matrix(n_in: int, n_out: int, start: int, count: int, filter_name: str) -> np.ndarray:
    """Rows: output indices start ..< start+count of a resize n_in -> n_out; columns: input indices."""
    support0 = 1.0 if filter_name == "bilinear" else 2.0
    scale = n_in / n_out
    fs = max(scale, 1.0)
    support = support0 * fs
    m = np.zeros((count, n_in), dtype=np.float64)
    for j in range(count):
        center = (start + j + 0.5) * scale
        lo = max(math.trunc(center - support + 0.5), 0)
        hi = min(math.trunc(center + support + 0.5), n_in)
        k = np.arange(lo, hi, dtype=np.float64)
        w = kernel(filter_name, (k - center + 0.5) / fs)
        total = w.sum()
        if total != 0:
            w = w / total
        m[j, lo:hi] = w
    return m


def geometry(w: int, h: int, cfg: dict) -> tuple[int, int, int, int]:
    if cfg.get("resize_mode", "squash") == "squash":
        return cfg["width"], cfg["height"], 0, 0
    side = cfg.get("shortest_side") or max(cfg["width"], cfg["height"])
    if w <= h:
        rw, rh = side, side * h // w
    else:
        rw, rh = side * w // h, side
    return rw, rh, (rw - cfg["width"]) // 2, (rh - cfg["height"]) // 2


def resize(rgb: np.ndarray, cfg: dict) -> np.ndarray:
    """Steps 1-2 and the clamp: float64 [H, W, 3] in 0..255."""
    h, w, _ = rgb.shape
    rw, rh, left, top = geometry(w, h, cfg)
    f = cfg.get("filter", "bilinear")
    wx = weight_matrix(w, rw, left, cfg["width"], f)
    wy = weight_matrix(h, rh, top, cfg["height"], f)
    x = rgb.astype(np.float64)
    out = np.einsum("yi,ijc,xj->yxc", wy, x, wx, optimize=True)
    return np.clip(out, 0.0, 255.0)


def preprocess(rgb: np.ndarray, cfg: dict) -> np.ndarray:
    """The whole pipeline; returns float32 in the config's layout."""
    x = resize(rgb, cfg)
    mean = np.asarray(cfg.get("mean", [0, 0, 0]), dtype=np.float64)
    std = np.asarray(cfg.get("std", [1, 1, 1]), dtype=np.float64)
    x = (x * cfg.get("rescale_factor", 1 / 255) - mean) / std
    if cfg.get("layout", "nchw") == "nchw":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x, dtype=np.float32)


IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
CLIP = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}

# (case name, source fixture, config). Sizes stay small: the outputs are committed.
CASES = [
    ("astronaut_squash_bilinear_nchw", "astronaut_baseline",
     {"width": 64, "height": 48, "resize_mode": "squash", "filter": "bilinear", "layout": "nchw", **IMAGENET}),
    ("astronaut_crop_bicubic_nhwc", "astronaut_baseline",
     {"width": 48, "height": 40, "resize_mode": "shortest_side_center_crop", "shortest_side": 56,
      "filter": "bicubic", "layout": "nhwc", **CLIP}),
    ("coffee_squash_bicubic_up_down", "coffee_progressive",
     {"width": 100, "height": 180, "resize_mode": "squash", "filter": "bicubic", "layout": "nchw", **IMAGENET}),
    ("rocket_crop_bilinear_nchw", "rocket_444_odd",
     {"width": 64, "height": 64, "resize_mode": "shortest_side_center_crop", "filter": "bilinear",
      "layout": "nchw", **IMAGENET}),
    ("camera_crop_portrait_bicubic", "camera_gray",
     {"width": 24, "height": 32, "resize_mode": "shortest_side_center_crop", "shortest_side": 40,
      "filter": "bicubic", "layout": "nhwc", "rescale_factor": 1.0, "mean": [0, 0, 0], "std": [1, 1, 1]}),
    ("tiny_upscale_bicubic_raw", "tiny_7x5",
     {"width": 16, "height": 12, "resize_mode": "squash", "filter": "bicubic", "layout": "nhwc",
      "rescale_factor": 1.0, "mean": [0, 0, 0], "std": [1, 1, 1]}),
    ("tiny_1x1_to_3x2_bilinear", "tiny_1x1",
     {"width": 3, "height": 2, "resize_mode": "squash", "filter": "bilinear", "layout": "nchw", **IMAGENET}),
    ("cmyk_portrait_from_landscape", "chelsea_cmyk",
     {"width": 30, "height": 50, "resize_mode": "shortest_side_center_crop", "shortest_side": 50,
      "filter": "bilinear", "layout": "nchw", "rescale_factor": 1 / 255, **CLIP}),
]


def load_rgb(name: str) -> np.ndarray:
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    item = next(i for i in manifest["images"] if i["name"] == name)
    e = next(x for x in item["expected"] if x["scale"] == 1)
    return np.fromfile(FIXTURES / e["file"], dtype=np.uint8).reshape(e["height"], e["width"], 3)


def write_cases() -> None:
    folder = FIXTURES / "preprocess"
    folder.mkdir(exist_ok=True)
    entries = []
    for name, source, cfg in CASES:
        out = preprocess(load_rgb(source), cfg)
        out.astype("<f4").tofile(folder / f"{name}.f32")
        entries.append({"name": name, "source": source, "config": cfg, "file": f"preprocess/{name}.f32",
                        "count": int(out.size)})
    (FIXTURES / "preprocess_cases.json").write_text(json.dumps({"cases": entries}, indent=1) + "\n")
    print(f"wrote {len(entries)} preprocessing cases to {folder}")


def compare_with_pillow() -> None:
    """How far this float resize is from Pillow's 8-bit one (information only)."""
    from PIL import Image
    for name, source, cfg in CASES:
        if cfg.get("resize_mode", "squash") != "squash":
            continue
        rgb = load_rgb(source)
        ours = resize(rgb, cfg)
        f = Image.Resampling.BILINEAR if cfg["filter"] == "bilinear" else Image.Resampling.BICUBIC
        theirs = np.asarray(Image.fromarray(rgb).resize((cfg["width"], cfg["height"]), f), dtype=np.float64)
        d = np.abs(ours - theirs)
        print(f"{name}: vs Pillow resize mean abs {d.mean():.3f}, max {d.max():.3f} (levels)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vs-pillow", action="store_true", help="compare the resize with Pillow's instead")
    args = ap.parse_args()
    compare_with_pillow() if args.vs_pillow else write_cases()
