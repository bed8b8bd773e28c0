"""Numpy reference of the `vit` encoder kind (Hugging Face ViTModel, inference only).

It is the yardstick for the Swift engine's golden tests, so it is written for clarity, not speed:
one image at a time, float64 throughout by default, every stage returned. Tensor names: plain or
`vit.`-prefixed (google/vit-base-patch32-224-in21k's layout). The patch embedding is written as the
stride-p convolution it is (an einsum over the patch grid), independently of the Swift im2col.

Usage as a library:
    weights, config = load_checkpoint("path/to/vit")
    stages = forward(weights, config, pixels)     # pixels: [C, H, W], already normalised
    stages["patches"], stages["embeddings"], stages["layers"][i], stages["tokens"], stages["pooled"]
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from bert_reference import gelu, layer_norm, softmax


def pair(value) -> tuple[int, int]:
    """HF's image_size / patch_size: one number (square) or [height, width]."""
    return (int(value), int(value)) if isinstance(value, (int, float)) else (int(value[0]), int(value[1]))


def load_checkpoint(folder: str | Path, weights_name: str = "model.safetensors"):
    """Reads config.json and the safetensors file; returns (weights without the `vit.` prefix, config)."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    raw = load_file(str(folder / weights_name))
    weights = {(name[len("vit."):] if name.startswith("vit.") else name): value for name, value in raw.items()}
    return weights, config


def forward(weights: dict, config: dict, pixels: np.ndarray, dtype=np.float64) -> dict:
    """Runs one image `[C, H, W]` through the encoder.

    Returns {"patches": [N, d] projections, "embeddings": [1+N, d] (CLS first, positions added),
    "layers": [[1+N, d] per layer], "tokens": [1+N, d] after the final LayerNorm,
    "pooled": [d] the CLS token of "tokens"}.
    """
    w = {k: v.astype(dtype) for k, v in weights.items() if v.dtype.kind == "f"}
    eps = float(config.get("layer_norm_eps", 1e-12))
    heads = int(config["num_attention_heads"])
    ph, pw = pair(config.get("patch_size", 16))
    x = np.asarray(pixels, dtype=dtype)
    channels, height, width = x.shape
    rows, cols = height // ph, width // pw

    # Conv2d(kernel = stride = p): out[y, x, o] = sum_{c,i,j} img[c, y*p+i, x*p+j] W[o, c, i, j] + b[o].
    grid = x.reshape(channels, rows, ph, cols, pw)
    conv = np.einsum("cyixj,ocij->yxo", grid, w["embeddings.patch_embeddings.projection.weight"])
    # einsum may hand back a non-C-contiguous array; safetensors would write its raw buffer.
    patches = np.ascontiguousarray((conv + w["embeddings.patch_embeddings.projection.bias"]).reshape(rows * cols, -1))
    d = patches.shape[1]
    h = np.concatenate([w["embeddings.cls_token"].reshape(1, d), patches], axis=0)
    h = h + w["embeddings.position_embeddings"].reshape(-1, d)
    stages = {"patches": patches, "embeddings": h, "layers": []}
    n, dh = h.shape[0], d // heads

    def linear(v, name):
        out = v @ w[name + ".weight"].T
        return out + w[name + ".bias"] if name + ".bias" in w else out

    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        a = layer_norm(h, w[p + "layernorm_before.weight"], w[p + "layernorm_before.bias"], eps)
        q = linear(a, p + "attention.attention.query").reshape(n, heads, dh).transpose(1, 0, 2)
        k = linear(a, p + "attention.attention.key").reshape(n, heads, dh).transpose(1, 0, 2)
        v = linear(a, p + "attention.attention.value").reshape(n, heads, dh).transpose(1, 0, 2)
        probs = softmax(q @ k.transpose(0, 2, 1) / math.sqrt(dh))
        context = (probs @ v).transpose(1, 0, 2).reshape(n, d)
        h = h + linear(context, p + "attention.output.dense")
        m = layer_norm(h, w[p + "layernorm_after.weight"], w[p + "layernorm_after.bias"], eps)
        h = h + linear(gelu(linear(m, p + "intermediate.dense")), p + "output.dense")
        stages["layers"].append(h)
    stages["tokens"] = layer_norm(h, w["layernorm.weight"], w["layernorm.bias"], eps)
    stages["pooled"] = stages["tokens"][0]
    return stages
