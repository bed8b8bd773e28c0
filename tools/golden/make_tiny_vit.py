"""Builds the tiny random-weight ViT fixture and its expected outputs (committed, about 120 KB).

Writes Tests/ModelTests/Fixtures/tiny-vit/:
  config.json (32x32 images, 8x8 patches -> 16 patches + CLS, width 32, 2 layers, 4 heads, eps 1e-6),
  preprocessor_config.json (HF ViTImageProcessor layout: 32x32 bicubic, mean = std = 0.5),
  model.safetensors (F16 weights in google/vit-base-patch32-224-in21k's names, pooler included as
    real checkpoints have it),
  expected.safetensors (per image i: i{i}.pixels [3, 32, 32] input, i{i}.patches [16, 32],
    i{i}.embeddings [17, 32], i{i}.layer{j} [17, 32], i{i}.tokens [17, 32], float32), computed in
    float64 from the float16-rounded weights by tools/reference/vit_reference.py.

Run: models/.venv/bin/python tools/golden/make_tiny_vit.py
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
sys.path.insert(0, str(ROOT / "tools" / "reference"))
import vit_reference  # noqa: E402

SEED = 20261124
IMAGE, PATCH, CHANNELS, WIDTH, LAYERS, HEADS, INNER, EPS = 32, 8, 3, 32, 2, 4, 64, 1e-6
IMAGES = 3
IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    def normal(*shape, std=0.3):
        return (rng.standard_normal(shape) * std).astype(np.float16)

    tokens = 1 + (IMAGE // PATCH) ** 2
    fan_in = CHANNELS * PATCH * PATCH
    w = {
        "embeddings.cls_token": normal(1, 1, WIDTH, std=1.0),
        "embeddings.position_embeddings": normal(1, tokens, WIDTH, std=0.5),
        "embeddings.patch_embeddings.projection.weight": normal(WIDTH, CHANNELS, PATCH, PATCH, std=1.5 / np.sqrt(fan_in)),
        "embeddings.patch_embeddings.projection.bias": normal(WIDTH, std=0.1),
        "layernorm.weight": (1 + normal(WIDTH, std=0.1)).astype(np.float16),
        "layernorm.bias": normal(WIDTH, std=0.1),
        # Real checkpoints carry the in21k pooler (dense + tanh); the loader must ignore it.
        "pooler.dense.weight": normal(WIDTH, WIDTH, std=1 / np.sqrt(WIDTH)),
        "pooler.dense.bias": normal(WIDTH, std=0.1),
    }
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for name, (o, k) in {"attention.attention.query": (WIDTH, WIDTH), "attention.attention.key": (WIDTH, WIDTH),
                             "attention.attention.value": (WIDTH, WIDTH), "attention.output.dense": (WIDTH, WIDTH),
                             "intermediate.dense": (INNER, WIDTH), "output.dense": (WIDTH, INNER)}.items():
            w[p + name + ".weight"] = normal(o, k, std=1 / np.sqrt(k) * 1.5)
            w[p + name + ".bias"] = normal(o, std=0.1)
        for norm in ["layernorm_before", "layernorm_after"]:
            w[p + norm + ".weight"] = (1 + normal(WIDTH, std=0.1)).astype(np.float16)
            w[p + norm + ".bias"] = normal(WIDTH, std=0.1)
    return w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "Tests" / "ModelTests" / "Fixtures" / "tiny-vit"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    config = {"architectures": ["ViTModel"], "model_type": "vit", "hidden_size": WIDTH,
              "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "intermediate_size": INNER,
              "hidden_act": "gelu", "layer_norm_eps": EPS, "image_size": IMAGE, "patch_size": PATCH,
              "num_channels": CHANNELS, "qkv_bias": True}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    preprocessor = {"image_processor_type": "ViTImageProcessor", "do_resize": True,
                    "size": {"height": IMAGE, "width": IMAGE}, "resample": 3, "do_rescale": True,
                    "rescale_factor": 1 / 255, "do_normalize": True,
                    "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    (out / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2) + "\n")
    rng = np.random.default_rng(SEED)
    save_file(weights(rng), str(out / "model.safetensors"))

    loaded, cfg = vit_reference.load_checkpoint(out)
    expected = {}
    for i in range(IMAGES):
        # A normalised picture: uniform [0, 1] samples through ImageNet statistics, stored as float32
        # so the reference sees exactly what the Swift test feeds.
        raw = rng.uniform(0, 1, size=(CHANNELS, IMAGE, IMAGE))
        pixels = ((raw - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]).astype(np.float32)
        stages = vit_reference.forward(loaded, cfg, pixels)
        expected[f"i{i}.pixels"] = pixels
        expected[f"i{i}.patches"] = stages["patches"].astype(np.float32)
        expected[f"i{i}.embeddings"] = stages["embeddings"].astype(np.float32)
        for j, layer in enumerate(stages["layers"]):
            expected[f"i{i}.layer{j}"] = layer.astype(np.float32)
        expected[f"i{i}.tokens"] = stages["tokens"].astype(np.float32)
    # safetensors writes each array's raw buffer, so every one must be C-contiguous.
    save_file({k: np.ascontiguousarray(v) for k, v in expected.items()}, str(out / "expected.safetensors"))
    for path in out.iterdir():
        path.chmod(0o644)  # save_file creates files 0600; keep the committed modes ordinary
    print(f"wrote {out}: {LAYERS} layers, width {WIDTH}, {(IMAGE // PATCH) ** 2} patches + CLS, {IMAGES} images")


if __name__ == "__main__":
    main()
