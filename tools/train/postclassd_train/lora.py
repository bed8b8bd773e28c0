"""Low-rank adapters (LoRA) on the top layers of a `bert` encoder, and their export.

A trained adapter changes a weight W [out, in] by B A (A [r, in], B [out, r], scaled by alpha / r).
The export folds the scale into B, so the engine merges `W + lora_B @ lora_A` at load, and names
the pair after the weight it changes: `encoder.layer.5.attention.self.query.lora_A`. Only the
changed layers travel: a rank-8 adapter on two layers is a few hundred kilobytes where the layers
themselves would be 14 MB.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .bert import BertEncoder

# Every product of a layer, by its name under `encoder.layer.{i}.`.
TARGETS = ("attention.self.query", "attention.self.key", "attention.self.value",
           "attention.output.dense", "intermediate.dense", "output.dense")


class LoRALinear(nn.Module):
    """`base(x) + scale * (x A^T) B^T` with the base frozen; B starts at zero (no change at step 0)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.scale = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scale


def _resolve(root: nn.Module, dotted: str) -> tuple[nn.Module, str]:
    *parents, leaf = dotted.split(".")
    for name in parents:
        root = getattr(root, name)
    return root, leaf


def add_lora(model: BertEncoder, first_layer: int, rank: int, alpha: float) -> list[nn.Parameter]:
    """Wraps every product of layers `first_layer..` in a LoRALinear; freezes everything else.
    Returns the adapters' parameters (what the optimiser trains)."""
    for p in model.parameters():
        p.requires_grad_(False)
    trained: list[nn.Parameter] = []
    for i in range(first_layer, model.layer_count):
        layer = model.encoder.layer[i]
        for target in TARGETS:
            parent, leaf = _resolve(layer, target)
            wrapped = LoRALinear(getattr(parent, leaf), rank, alpha)
            setattr(parent, leaf, wrapped)
            trained += [wrapped.lora_A, wrapped.lora_B]
    return trained


def adapter_tensors(model: BertEncoder) -> dict[str, torch.Tensor]:
    """The adapters as the engine reads them: `{weight name}.lora_A` [r, in] and `.lora_B` [out, r]
    with the scale folded into B, float32, contiguous."""
    out: dict[str, torch.Tensor] = {}
    for i, layer in enumerate(model.encoder.layer):
        for target in TARGETS:
            parent, leaf = _resolve(layer, target)
            module = getattr(parent, leaf)
            if isinstance(module, LoRALinear):
                name = f"encoder.layer.{i}.{target}.weight"
                out[name + ".lora_A"] = module.lora_A.detach().float().contiguous()
                out[name + ".lora_B"] = (module.lora_B.detach() * module.scale).float().contiguous()
    return out
