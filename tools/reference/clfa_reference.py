"""Numpy reference of the CLFA sarcasm head (MODEL-SPEC.md, "Sarcasm head: CLFA"), inference only.

It is the yardstick for the Swift head's golden tests, so it is written for clarity, not speed:
one post at a time (no padding, so the text key mask is all ones), float64 throughout, every
stage returned. Tensor names are the authors': `mlp_text.fc1/fc2`, `mlp_image.fc1/fc2`,
`attention_net.layer.{i}.{textSelfAttn,imageCrossAttn}.bertCoAttn.{query,key,value}`,
`….{textSelfAttn,imageCrossAttn}.output.{dense,LayerNorm}`, `attention_net.layer.{i}.intermediate.dense`,
`attention_net.layer.{i}.output.{dense,LayerNorm}`, `classifier`, and (choice) `no_image_token`.

A layer's sub-layers are optional: each is present when its tensors are. The layer count is the
number of consecutive `attention_net.layer.{i}` prefixes, and may be 0.

Usage as a library:
    weights, config = load_head("Tests/ModelTests/Fixtures/clfa/full")
    stages = forward(weights, config, text, image)   # text [n, d_t]; image [K, d_i] or None
    stages["text"], stages["image"], stages["layer.0"], stages["pooled"], stages["logits"], ...
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

# math.erf element-wise: numpy has no erf, and scipy would be one more pinned dependency.
_erf = np.frompyfunc(math.erf, 1, 1)

DEFAULT_CONFIG = {"attention_heads": 8, "layer_norm_eps": 1e-12, "text_length": 77, "no_image": "learned_token"}
SUB_LAYERS = ("textSelfAttn", "imageCrossAttn")


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(x.dtype))


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def load_head(folder: str | Path, weights_name: str = "model.safetensors"):
    """Reads config.json (defaults for absent fields) and the safetensors file: (weights, config)."""
    folder = Path(folder)
    config = dict(DEFAULT_CONFIG)
    if (folder / "config.json").exists():
        config.update(json.loads((folder / "config.json").read_text()))
    return load_file(str(folder / weights_name)), config


def layer_count(weights: dict) -> int:
    n = 0
    while any(name.startswith(f"attention_net.layer.{n}.") for name in weights):
        n += 1
    return n


def forward(weights: dict, config: dict, text: np.ndarray, image: np.ndarray | None, dtype=np.float64) -> dict:
    """Runs one post: `text` [n, d_t] token states (no padding), `image` [K, d_i] or None (no image).

    Returns every stage: "text" [n, h], "image" [k, h] (absent when no image tensors are used),
    "layer.{i}.{sub}" and "layer.{i}" [n, h], "pooled" [h], "logits" [C], "probabilities" [C].
    """
    w = {k: v.astype(dtype) for k, v in weights.items()}
    eps = float(config["layer_norm_eps"])
    heads = int(config["attention_heads"])

    def linear(x, name):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    def mapping(x, name):  # Linear -> ReLU -> Linear, per token
        return linear(np.maximum(linear(x, name + ".fc1"), 0.0), name + ".fc2")

    def sub_layer(prefix, q_in, kv_in):
        """Multi-head attention of q_in over kv_in (every key valid), then LN(dense(ctx) + q_in)."""
        n, m = q_in.shape[0], kv_in.shape[0]
        a = w[prefix + ".bertCoAttn.query.weight"].shape[0]
        dh = a // heads
        q = linear(q_in, prefix + ".bertCoAttn.query").reshape(n, heads, dh).transpose(1, 0, 2)
        k = linear(kv_in, prefix + ".bertCoAttn.key").reshape(m, heads, dh).transpose(1, 0, 2)
        v = linear(kv_in, prefix + ".bertCoAttn.value").reshape(m, heads, dh).transpose(1, 0, 2)
        # The key mask of a single unpadded post is all ones, so (1 - mask) * -10000 adds nothing.
        probs = softmax(q @ k.transpose(0, 2, 1) / math.sqrt(dh))
        ctx = (probs @ v).transpose(1, 0, 2).reshape(n, a)
        return layer_norm(linear(ctx, prefix + ".output.dense") + q_in,
                          w[prefix + ".output.LayerNorm.weight"], w[prefix + ".output.LayerNorm.bias"], eps)

    t = mapping(text.astype(dtype), "mlp_text")
    stages = {"text": t}
    has_image_branch = "mlp_image.fc1.weight" in w
    i_mapped = None
    if has_image_branch:
        if image is not None:
            i_mapped = mapping(image.astype(dtype), "mlp_image")
        elif config["no_image"] == "learned_token":
            i_mapped = mapping(w["no_image_token"], "mlp_image")
        if i_mapped is not None:
            stages["image"] = i_mapped

    for i in range(layer_count(weights)):
        p = f"attention_net.layer.{i}."
        if p + "textSelfAttn.bertCoAttn.query.weight" in w:
            t = sub_layer(p + "textSelfAttn", t, t)
            stages[f"layer.{i}.textSelfAttn"] = t
        if p + "imageCrossAttn.bertCoAttn.query.weight" in w and i_mapped is not None:
            t = sub_layer(p + "imageCrossAttn", t, i_mapped)
            stages[f"layer.{i}.imageCrossAttn"] = t
        if p + "intermediate.dense.weight" in w:
            h = gelu(linear(t, p + "intermediate.dense"))
            t = layer_norm(linear(h, p + "output.dense") + t,
                           w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        stages[f"layer.{i}"] = t

    stages["pooled"] = t.mean(axis=0)  # masked mean over the valid tokens, [CLS] and [SEP] included
    stages["logits"] = linear(stages["pooled"], "classifier")
    stages["probabilities"] = softmax(stages["logits"])
    return stages
