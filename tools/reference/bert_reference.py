"""Numpy reference of the `bert` encoder kind (Hugging Face BertModel, inference only).

It is the yardstick for the Swift engine's golden tests, so it is written for clarity, not speed:
one post at a time (no padding, so no mask is needed), float64 throughout by default, every
stage returned. Tensor names: plain or `bert.`-prefixed, LayerNorm `weight/bias` or `gamma/beta`.

Usage as a library:
    weights, config = load_checkpoint("models/all-MiniLM-L6-v2")
    stages = forward(weights, config, [101, 7592, 102])
    stages["embeddings"], stages["layers"][i], stages["sentence"]
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from bf16_reference import round_to_bf16  # this folder is on sys.path, as for every reference

# math.erf element-wise: numpy has no erf, and scipy would be one more pinned dependency.
_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, HF's "gelu"."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(x.dtype))


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def load_checkpoint(folder: str | Path, weights_name: str = "model.safetensors"):
    """Reads config.json and the safetensors file; returns (weights with canonical names, config)."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    raw = load_file(str(folder / weights_name))
    weights = {}
    for name, value in raw.items():
        if name.startswith("bert."):
            name = name[len("bert."):]
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        weights[name] = value
    return weights, config


def forward(weights: dict, config: dict, ids: list[int], dtype=np.float64, bf16_products: bool = False) -> dict:
    """Runs one post's ids ([CLS] ... [SEP]) through the encoder.

    With `bf16_products`, the four products of each layer take their input (as float32) and
    their weight rounded to bfloat16 (`bf16_reference.round_to_bf16`), as the engine's bf16
    precision does; everything else stays as it is.

    Returns {"embeddings": [L, d], "layers": [[L, d] per layer], "sentence": [d] masked mean}.
    """
    w = {k: v.astype(dtype) for k, v in weights.items() if v.dtype.kind == "f"}
    eps = float(config.get("layer_norm_eps", 1e-12))
    heads = int(config["num_attention_heads"])
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)

    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.token_type_embeddings.weight"][np.zeros(n, dtype=np.int64)]
         + w["embeddings.position_embeddings.weight"][np.arange(n)])
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    stages = {"embeddings": x, "layers": []}
    d = x.shape[1]
    dh = d // heads

    def linear(h, name):
        weight = w[name + ".weight"]
        if bf16_products:
            h = round_to_bf16(h.astype(np.float32)).astype(dtype)
            weight = round_to_bf16(weight.astype(np.float32)).astype(dtype)
        return h @ weight.T + w[name + ".bias"]

    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        q = linear(x, p + "attention.self.query").reshape(n, heads, dh).transpose(1, 0, 2)
        k = linear(x, p + "attention.self.key").reshape(n, heads, dh).transpose(1, 0, 2)
        v = linear(x, p + "attention.self.value").reshape(n, heads, dh).transpose(1, 0, 2)
        probs = softmax(q @ k.transpose(0, 2, 1) / math.sqrt(dh))
        context = (probs @ v).transpose(1, 0, 2).reshape(n, d)
        a = layer_norm(linear(context, p + "attention.output.dense") + x,
                       w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        h = gelu(linear(a, p + "intermediate.dense"))
        x = layer_norm(linear(h, p + "output.dense") + a,
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        stages["layers"].append(x)
    stages["sentence"] = x.mean(axis=0)
    return stages
