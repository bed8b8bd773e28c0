"""numpy reference of the EfficientNet-Lite encoder (Sources/Model/EfficientNet/EfficientNetLite.swift).

The arithmetic is the converter's (tools/convert_efficientnet_lite0.py: im2col stem, depthwise
convs, BatchNorm unfolded, ReLU6, TF-"same" static padding from config.json); this module adds
loading a model folder and keeping every stage, so the Swift engine can be compared stage by stage.

    folder = config.json (the converter's schema) + model.safetensors
    stages(t, cfg, x) with x [3, H, W] float32 ->
        {"stem": [C, H/2, W/2], "blocks": [one [C, h, w] per block], "head": [C, h, w],
         "pooled": [C], "logits": [classes] or None}
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from convert_efficientnet_lite0 import _bn, _conv_depthwise, _conv_full  # noqa: E402


def load_checkpoint(folder: Path) -> tuple[dict, dict]:
    """(tensors as float32, config) of a converted model folder."""
    folder = Path(folder)
    cfg = json.loads((folder / "config.json").read_text())
    tensors = {k: v.astype(np.float32) for k, v in load_file(str(folder / "model.safetensors")).items()}
    return tensors, cfg


def _pointwise(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """1x1 conv, [C, H, W] -> [O, H, W]."""
    return (w.reshape(w.shape[0], -1) @ x.reshape(x.shape[0], -1)).reshape(w.shape[0], *x.shape[1:])


def stages(t: dict, cfg: dict, x: np.ndarray) -> dict:
    """Every stage of one image's forward pass (see the module docstring)."""
    eps = cfg["batch_norm_epsilon"]
    relu6 = lambda v: np.clip(v, 0.0, 6.0)  # noqa: E731
    s = cfg["stem"]
    x = relu6(_bn(_conv_full(x, t[s["weight"]], s["stride"], s["padding_top_bottom"], s["padding_left_right"]),
                  t, s["batch_norm"], eps))
    out = {"stem": x, "blocks": []}
    for b in cfg["blocks"]:
        p = f"_blocks.{b['index']}."
        inp = x
        if b["has_expand_conv"]:
            x = relu6(_bn(_pointwise(x, t[p + "_expand_conv.weight"]), t, p + "_bn0", eps))
        x = relu6(_bn(_conv_depthwise(x, t[p + "_depthwise_conv.weight"], b["stride"], b["padding_top_bottom"],
                                      b["padding_left_right"]), t, p + "_bn1", eps))
        x = _bn(_pointwise(x, t[p + "_project_conv.weight"]), t, p + "_bn2", eps)
        if b["residual"]:
            x = x + inp
        out["blocks"].append(x)
    h = cfg["head"]
    x = relu6(_bn(_pointwise(x, t[h["weight"]]), t, h["batch_norm"], eps))
    out["head"] = x
    out["pooled"] = x.mean(axis=(1, 2))
    c = cfg.get("classifier")
    out["logits"] = t[c["weight"]] @ out["pooled"] + t[c["bias"]] if c else None
    return out
