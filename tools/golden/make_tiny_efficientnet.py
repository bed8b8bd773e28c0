"""Builds the tiny random-weight EfficientNet-Lite fixture and its expected outputs (committed, ~100 KB).

Writes Tests/ModelTests/Fixtures/tiny-efficientnet/:
  config.json        the converter's schema (tools/convert_efficientnet_lite0.py build_config), for a
                     32x32 input and five blocks that cover every case of the real network: no expand
                     conv, stride 1 and 2, kernels 3 and 5, residuals, asymmetric TF-"same" padding,
                     and channel counts that are not multiples of 16 (12, 20, 72) for the kernels' tails
  model.safetensors  float32 weights under the real tensor names, BatchNorm statistics included
  classes.txt        10 class names
  expected.safetensors  per image i (2 images, NCHW inputs): i{i}.input [3, 32, 32], and the numpy
                     reference's i{i}.stem, i{i}.block{j}, i{i}.head ([C, h, w]), i{i}.pooled, i{i}.logits

Run: models/.venv/bin/python tools/golden/make_tiny_efficientnet.py   (after scripts/setup-models.sh)
The seed is fixed, so the output is the same on every run.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tools" / "reference"))
from convert_efficientnet_lite0 import build_config  # noqa: E402
import efficientnet_reference  # noqa: E402

SEED = 20261124
IMAGE = 32
STEM, HEAD, CLASSES = 12, 36, 10
# The block strings of the model code, as the converter parses them.
STAGES = [
    {"repeats": 1, "kernel_size": 3, "stride": 1, "expand_ratio": 1, "in_channels": 12, "out_channels": 12},
    {"repeats": 2, "kernel_size": 3, "stride": 2, "expand_ratio": 6, "in_channels": 12, "out_channels": 16},
    {"repeats": 1, "kernel_size": 5, "stride": 2, "expand_ratio": 6, "in_channels": 16, "out_channels": 20},
    {"repeats": 1, "kernel_size": 5, "stride": 1, "expand_ratio": 4, "in_channels": 20, "out_channels": 20},
]


def batch_norm(rng: np.random.Generator, prefix: str, n: int) -> dict[str, np.ndarray]:
    return {prefix + ".weight": 1 + 0.2 * rng.standard_normal(n), prefix + ".bias": 0.3 * rng.standard_normal(n),
            prefix + ".running_mean": 0.3 * rng.standard_normal(n), prefix + ".running_var": rng.uniform(0.5, 2.0, n)}


def conv(rng: np.random.Generator, out: int, inp: int, k: int) -> np.ndarray:
    # Scaled so activations spread over ReLU6's range: some clipped at 0, some at 6.
    return rng.standard_normal((out, inp, k, k)) * (2.0 / np.sqrt(inp * k * k))


def weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = {"_conv_stem.weight": conv(rng, STEM, 3, 3), **batch_norm(rng, "_bn0", STEM)}
    i, channels = 0, STEM
    for st in STAGES:
        for r in range(st["repeats"]):
            p, hidden, k = f"_blocks.{i}.", channels * st["expand_ratio"], st["kernel_size"]
            if st["expand_ratio"] != 1:
                t[p + "_expand_conv.weight"] = conv(rng, hidden, channels, 1)
                t.update(batch_norm(rng, p + "_bn0", hidden))
            t[p + "_depthwise_conv.weight"] = conv(rng, hidden, 1, k)
            t.update(batch_norm(rng, p + "_bn1", hidden))
            t[p + "_project_conv.weight"] = conv(rng, st["out_channels"], hidden, 1)
            t.update(batch_norm(rng, p + "_bn2", st["out_channels"]))
            i, channels = i + 1, st["out_channels"]
    t["_conv_head.weight"] = conv(rng, HEAD, channels, 1)
    t.update(batch_norm(rng, "_bn1", HEAD))
    t["_fc.weight"] = rng.standard_normal((CLASSES, HEAD)) / np.sqrt(HEAD)
    t["_fc.bias"] = 0.1 * rng.standard_normal(CLASSES)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in t.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "Tests" / "ModelTests" / "Fixtures" / "tiny-efficientnet"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(SEED)
    tensors = weights(rng)
    cfg = build_config({"stages": STAGES, "eps": 1e-3, "activation": "relu6", "image_size": IMAGE}, tensors)
    cfg["variant"] = "tiny-random"
    cfg["class_names_file"] = "classes.txt"
    cfg["preprocess"] = {"width": IMAGE, "height": IMAGE, "resize_mode": "shortest_side_center_crop",
                         "shortest_side": 36, "filter": "bicubic", "rescale_factor": 1.0,
                         "mean": [127.0, 127.0, 127.0], "std": [128.0, 128.0, 128.0], "layout": "nchw"}
    del cfg["preprocess_imagenet_alternative"]
    save_file(tensors, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    (out / "classes.txt").write_text("".join(f"class {c}, tiny\n" for c in range(CLASSES)))

    loaded, cfg = efficientnet_reference.load_checkpoint(out)
    expected = {}
    for i in range(2):
        x = rng.uniform(-1, 1, (3, IMAGE, IMAGE)).astype(np.float32)
        s = efficientnet_reference.stages(loaded, cfg, x)
        expected[f"i{i}.input"] = x
        expected[f"i{i}.stem"] = s["stem"]
        for j, block in enumerate(s["blocks"]):
            expected[f"i{i}.block{j}"] = block
        for name in ["head", "pooled", "logits"]:
            expected[f"i{i}.{name}"] = s[name]
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in expected.items()},
              str(out / "expected.safetensors"))
    for path in out.iterdir():
        path.chmod(0o644)  # save_file creates files 0600; keep the committed modes ordinary
    print(f"wrote {out}: {len(cfg['blocks'])} blocks, feature map {cfg['feature_map']['height']}x"
          f"{cfg['feature_map']['width']}x{HEAD}, {CLASSES} classes")


if __name__ == "__main__":
    main()
