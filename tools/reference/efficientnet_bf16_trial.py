"""Which of EfficientNet-Lite's 1x1 convs can take bf16 products: the numpy trial behind
EfficientNetLite.bf16MinimumInputs (bench/image/README.md, "bf16 project convolutions").

Runs the numpy reference (efficientnet_reference.stages with a per-conv rounding) on views of the
photos in --photos, once in fp32 and once per trial, and prints per trial against fp32: how many
views keep fp32's top-1 class, the smallest cosine of the pooled features, the largest logit change.

Views (--views), each squashed to the model's input size with Pillow's bilinear filter and
normalised as the checkpoint says ((x - 127) / 128):
  whole   each photo whole and mirrored left to right (2 per photo: 36 for the 18 photos);
  other   nine half-size crops on a 3 x 3 grid and the photo turned 90 and 270 degrees, each also
          mirrored (22 per photo: 396), views the rule was not picked on.

Trials (--trials, names below, default all of the --views' set): expand and head convs of at least
32 inputs are in bf16 in every trial but fp32-only (and every expand conv, the narrow ones of blocks
1-3 too, in the trial named so); the trials differ in the project convs.

Run: models/.venv/bin/python tools/reference/efficientnet_bf16_trial.py \
        --model models/efficientnet-lite0 --photos models/correlation-images --views whole
(about 2 minutes for "whole", 8 for "other", on this project's 2-core machine).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from efficientnet_reference import load_checkpoint, stages  # noqa: E402

EXPAND_HEAD_MIN = 32  # EfficientNetLite.bf16MinimumInputs[.expand], [.head]


def trial(project, expand_min: int = EXPAND_HEAD_MIN) -> callable:
    """A rounding rule: expand convs of at least `expand_min` inputs and head convs of at least
    EXPAND_HEAD_MIN in bf16, project convs as `project` ((block, inputs) -> rounding or None) says."""
    def rounding(role: str, block: int | None, inputs: int) -> str | None:
        if role != "project":
            return "both" if inputs >= (expand_min if role == "expand" else EXPAND_HEAD_MIN) else None
        return project(block, inputs)
    return rounding


def from_inputs(minimum: int):
    """Project convs of at least `minimum` inputs in bf16 (the engine's rule is 240)."""
    return lambda block, inputs: "both" if inputs >= minimum else None


def blocks(first: int, last: int):
    return trial(lambda block, _: "both" if first <= block <= last else None)


TRIALS = {
    "fp32-only": lambda role, block, inputs: None,
    "project none": trial(lambda block, inputs: None),
    "project all, both rounded": trial(lambda block, inputs: "both"),
    "project all, weights rounded": trial(lambda block, inputs: "weights"),
    "project all, activations rounded": trial(lambda block, inputs: "activations"),
    "project all, weights split hi + lo": trial(lambda block, inputs: "split"),
    "project blocks 0-3": blocks(0, 3),
    "project block 0": blocks(0, 0),
    "project blocks 4-7": blocks(4, 7),
    "project blocks 8-11": blocks(8, 11),
    "project blocks 12-15": blocks(12, 15),
    "project >= 240 inputs (the engine's rule)": trial(from_inputs(240)),
    "project >= 240 inputs, every expand conv": trial(from_inputs(240), expand_min=1),
    "project >= 480 inputs": trial(from_inputs(480)),
}
DEFAULT_TRIALS = {
    "whole": [name for name in TRIALS if name != "fp32-only"],
    "other": ["project none", "project >= 240 inputs (the engine's rule)", "project >= 480 inputs",
              "project >= 240 inputs, every expand conv"],
}


def views(image: Image.Image, kind: str) -> list[Image.Image]:
    """The views of one photo (see the module docstring)."""
    if kind == "whole":
        base = [image]
    else:
        w, h = image.size
        cw, ch = w // 2, h // 2
        base = [image.crop((x, y, x + cw, y + ch)) for y in (0, h // 4, h // 2) for x in (0, w // 4, w // 2)]
        base += [image.rotate(90, expand=True), image.rotate(270, expand=True)]
    return base + [ImageOps.mirror(v) for v in base]


def model_input(view: Image.Image, size: int) -> np.ndarray:
    """[3, size, size] float32, (x - 127) / 128."""
    pixels = np.asarray(view.resize((size, size), Image.BILINEAR), dtype=np.float32)
    return ((pixels - 127.0) / 128.0).transpose(2, 0, 1).copy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--photos", type=Path, required=True, help="a folder of JPEG photos")
    ap.add_argument("--views", choices=("whole", "other"), default="whole")
    ap.add_argument("--trials", nargs="*", help=f"trial names, of: {', '.join(TRIALS)}")
    args = ap.parse_args()
    names = args.trials or DEFAULT_TRIALS[args.views]
    unknown = [n for n in names if n not in TRIALS]
    if unknown:
        sys.exit(f"unknown trials {unknown}; the trials are: {', '.join(TRIALS)}")
    tensors, cfg = load_checkpoint(args.model)
    size = cfg["image_size"]
    photos = sorted(args.photos.glob("*.jpg"))
    if not photos:
        sys.exit(f"no *.jpg photos in {args.photos}: point --photos at a folder of JPEG photos")
    inputs = [model_input(v, size) for p in photos for v in views(Image.open(p).convert("RGB"), args.views)]
    print(f"{len(inputs)} views of {len(photos)} photos ({args.views}); model {args.model}")

    def run(rounding) -> tuple[np.ndarray, np.ndarray]:
        outs = [stages(tensors, cfg, x, rounding=rounding) for x in inputs]
        return np.stack([o["pooled"] for o in outs]), np.stack([o["logits"] for o in outs])

    pooled0, logits0 = run(TRIALS["fp32-only"])
    print(f"\n| trial | same top-1 ({len(inputs)}) | pooled cosine min | largest logit change |\n|---|---|---|---|")
    for name in names:
        pooled, logits = run(TRIALS[name])
        same = int((logits.argmax(1) == logits0.argmax(1)).sum())
        cos = (pooled * pooled0).sum(1) / (np.linalg.norm(pooled, axis=1) * np.linalg.norm(pooled0, axis=1))
        print(f"| {name} | {same} | {cos.min():.5f} | {np.abs(logits - logits0).max():.3f} |", flush=True)


if __name__ == "__main__":
    main()
