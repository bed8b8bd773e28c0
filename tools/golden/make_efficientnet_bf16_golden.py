"""Golden outputs of EfficientNet-Lite0 with bf16 1x1 convs, from the numpy reference.

For each photo of the fp32 reference (models/efficientnet-lite0/reference: index.json and
{photo}.input.f32, written by tools/convert_efficientnet_lite0.py --reference), runs
efficientnet_reference.stages(..., bf16_min_inputs=BF16_MIN_INPUTS), the engine's rule
(EfficientNetLite.bf16MinimumInputs: expand and head convs of at least 32 inputs, project convs of
at least 240), and writes to --out:
  {photo}.logits.f32 [1000] and {photo}.pooled.f32 [1280];
  for the first photo also {photo}.stage{NN}.f32, every stage channels-first [C, h, w]: the stem,
  each block, the head (the order of EfficientNetLite.forward(keepStages:)).
Little-endian float32; index.json lists the photos and stage shapes.

Run: models/.venv/bin/python tools/golden/make_efficientnet_bf16_golden.py \
        --model models/efficientnet-lite0 --out models/golden/efficientnet-lite0-bf16
(scripts/setup-models.sh runs it after converting the model.)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "reference"))
from efficientnet_reference import load_checkpoint, stages  # noqa: E402

BF16_MIN_INPUTS = {"expand": 32, "project": 240, "head": 32}  # EfficientNetLite.bf16MinimumInputs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    tensors, cfg = load_checkpoint(args.model)
    reference = args.model / "reference"
    photos = [p["photo"] for p in json.loads((reference / "index.json").read_text())["photos"]]
    size = cfg["image_size"]
    args.out.mkdir(parents=True, exist_ok=True)
    stage_shapes = []
    for i, photo in enumerate(photos):
        x = np.fromfile(reference / f"{photo}.input.f32", dtype="<f4").reshape(3, size, size)
        out = stages(tensors, cfg, x, bf16_min_inputs=BF16_MIN_INPUTS)
        for part in ("logits", "pooled"):
            np.ascontiguousarray(out[part], dtype="<f4").tofile(args.out / f"{photo}.{part}.f32")
        if i == 0:
            for n, stage in enumerate([out["stem"], *out["blocks"], out["head"]]):
                np.ascontiguousarray(stage, dtype="<f4").tofile(args.out / f"{photo}.stage{n:02d}.f32")
                stage_shapes.append(list(stage.shape))
    (args.out / "index.json").write_text(json.dumps({"bf16_min_inputs": BF16_MIN_INPUTS, "photos": photos,
                                                     "stages_of": photos[0], "stage_shapes": stage_shapes}, indent=1) + "\n")
    print(f"wrote bf16 reference outputs for {len(photos)} photos to {args.out}")


if __name__ == "__main__":
    main()
