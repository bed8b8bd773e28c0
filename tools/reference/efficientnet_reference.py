"""numpy reference of the EfficientNet-Lite encoder (Sources/Model/EfficientNet/EfficientNetLite.swift).

The arithmetic is the converter's (tools/convert_efficientnet_lite0.py: im2col stem, depthwise
convs, BatchNorm unfolded, ReLU6, TF-"same" static padding from config.json); this module adds
loading a model folder and keeping every stage, so the Swift engine can be compared stage by stage.

    folder = config.json (the converter's schema) + model.safetensors
    stages(t, cfg, x) with x [3, H, W] float32 ->
        {"stem": [C, H/2, W/2], "blocks": [one [C, h, w] per block], "head": [C, h, w],
         "pooled": [C], "logits": [classes] or None}
    stages(t, cfg, x, bf16_min_inputs={"expand": 32, "project": 240, "head": 32}): the same with
        the engine's bf16 products in the 1x1 convs of each named role (expand, project, head) with
        at least that many inputs: BatchNorm folded into the weight as the engine folds it, then
        weight and input rounded to bf16 and the products summed exactly
        (bf16_reference.packed_product_bf16); the other convs as above.
    stages(t, cfg, x, rounding=f): f(role, block, inputs) names the rounding of each 1x1 conv
        (block is None for the head): None (fp32), "both" (as bf16_min_inputs), "weights" or
        "activations" (only that operand rounded), "split" (activations rounded, the weight as the
        sum of two bf16 values, hi + lo); tools/reference/efficientnet_bf16_trial.py uses it to
        find which convs can take bf16.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from convert_efficientnet_lite0 import _bn, _conv_depthwise, _conv_full  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bf16_reference import packed_product_bf16, round_to_bf16  # noqa: E402


def load_checkpoint(folder: Path) -> tuple[dict, dict]:
    """(tensors as float32, config) of a converted model folder."""
    folder = Path(folder)
    cfg = json.loads((folder / "config.json").read_text())
    tensors = {k: v.astype(np.float32) for k, v in load_file(str(folder / "model.safetensors")).items()}
    return tensors, cfg


def _pointwise(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """1x1 conv, [C, H, W] -> [O, H, W]."""
    return (w.reshape(w.shape[0], -1) @ x.reshape(x.shape[0], -1)).reshape(w.shape[0], *x.shape[1:])


def _folded(t: dict, w: np.ndarray, norm: str, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(weight [O, I], bias [O]) of a 1x1 conv with its BatchNorm folded in, as the engine folds it
    (Sources/Model/Tensor/BatchNorm.swift): the scale in float64 rounded to float32, the weight
    multiplied by it in float32, the shift in float64 from the unrounded scale."""
    scale64 = t[norm + ".weight"].astype(np.float64) / np.sqrt(t[norm + ".running_var"].astype(np.float64) + eps)
    weight = w.reshape(w.shape[0], -1).astype(np.float32) * scale64.astype(np.float32)[:, None]
    shift = (t[norm + ".bias"].astype(np.float64) - t[norm + ".running_mean"].astype(np.float64) * scale64)
    return weight, shift.astype(np.float32)


ROUNDINGS = (None, "both", "weights", "activations", "split")


def _rounded_product(rows: np.ndarray, folded: np.ndarray, rounding: str) -> np.ndarray:
    """rows [n, in] . folded [out, in]^T in float64 with the operands rounded as `rounding`
    ("weights", "activations" or "split"; "both" is bf16_reference.packed_product_bf16) says."""
    xs = round_to_bf16(rows) if rounding in ("activations", "split") else rows
    if rounding == "split":
        hi = round_to_bf16(folded)
        weights = [hi, round_to_bf16(folded - hi)]
    else:
        weights = [round_to_bf16(folded) if rounding == "weights" else folded]
    return sum(xs.astype(np.float64) @ w.astype(np.float64).T for w in weights)


def _pointwise_bn(t: dict, x: np.ndarray, weight: str, norm: str, eps: float, relu6: bool,
                  rounding: str | None, residual: np.ndarray | None = None) -> np.ndarray:
    """A 1x1 conv + BatchNorm (+ residual) (+ ReLU6), [C, H, W] -> [O, H, W], with fp32 products
    (rounding None) or bf16 ones (see ROUNDINGS)."""
    w = t[weight]
    if rounding is None:
        y = _bn(_pointwise(x, w), t, norm, eps)
        if residual is not None:
            y = y + residual
        return np.clip(y, 0.0, 6.0) if relu6 else y
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding {rounding!r} is not one of {ROUNDINGS}")
    folded, shift = _folded(t, w, norm, eps)
    rows = x.reshape(x.shape[0], -1).T
    res = None if residual is None else residual.reshape(residual.shape[0], -1).T
    if rounding == "both":
        y = packed_product_bf16(rows, folded, shift, residual=res, relu6=relu6)
    else:
        y = _rounded_product(rows, folded, rounding) + shift.astype(np.float64)
        if res is not None:
            y = y + res.astype(np.float64)
        y = np.clip(y, 0, 6) if relu6 else y
    return y.astype(np.float32).T.reshape(w.shape[0], *x.shape[1:])


def stages(t: dict, cfg: dict, x: np.ndarray, bf16_min_inputs: dict[str, int] | None = None,
           rounding=None) -> dict:
    """Every stage of one image's forward pass (see the module docstring)."""
    eps = cfg["batch_norm_epsilon"]

    def by_minimum(role: str, block: int | None, inputs: int) -> str | None:
        minimum = (bf16_min_inputs or {}).get(role)
        return "both" if minimum is not None and inputs >= minimum else None

    choose = rounding or by_minimum

    def bf16(role: str, weight: str, block: int | None = None) -> str | None:
        return choose(role, block, t[weight].shape[1])

    relu6 = lambda v: np.clip(v, 0.0, 6.0)  # noqa: E731
    s = cfg["stem"]
    x = relu6(_bn(_conv_full(x, t[s["weight"]], s["stride"], s["padding_top_bottom"], s["padding_left_right"]),
                  t, s["batch_norm"], eps))
    out = {"stem": x, "blocks": []}
    for b in cfg["blocks"]:
        p = f"_blocks.{b['index']}."
        inp = x
        if b["has_expand_conv"]:
            x = _pointwise_bn(t, x, p + "_expand_conv.weight", p + "_bn0", eps, True,
                              bf16("expand", p + "_expand_conv.weight", b["index"]))
        x = relu6(_bn(_conv_depthwise(x, t[p + "_depthwise_conv.weight"], b["stride"], b["padding_top_bottom"],
                                      b["padding_left_right"]), t, p + "_bn1", eps))
        x = _pointwise_bn(t, x, p + "_project_conv.weight", p + "_bn2", eps, False,
                          bf16("project", p + "_project_conv.weight", b["index"]), residual=inp if b["residual"] else None)
        out["blocks"].append(x)
    h = cfg["head"]
    x = _pointwise_bn(t, x, h["weight"], h["batch_norm"], eps, True, bf16("head", h["weight"]))
    out["head"] = x
    out["pooled"] = x.mean(axis=(1, 2))
    c = cfg.get("classifier")
    out["logits"] = t[c["weight"]] @ out["pooled"] + t[c["bias"]] if c else None
    return out
