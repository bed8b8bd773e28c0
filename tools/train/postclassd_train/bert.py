"""The `bert` encoder kind in PyTorch (Hugging Face BertModel's inference path), for training.

Parameter names are the checkpoint's own (`embeddings.word_embeddings.weight`,
`encoder.layer.{i}.attention.self.query.weight`, ...), so `load_state_dict` takes
all-MiniLM-L6-v2's safetensors as they are and a changed layer exports under the names the engine
reads. Post-LN layers, exact-erf GELU, absolute positions, token type 0 (as MODEL-SPEC.md).

The forward pass can start at any layer (`forward_layers`): a trainer that changes only the top
layers encodes the frozen bottom once and trains from its output.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn


class BertLayer(nn.Module):
    """One post-LN transformer layer under Hugging Face's names."""

    def __init__(self, d: int, inner: int, heads: int, eps: float):
        super().__init__()
        self.heads = heads
        self.attention = nn.Module()
        self.attention.self = nn.Module()
        self.attention.self.query = nn.Linear(d, d)
        self.attention.self.key = nn.Linear(d, d)
        self.attention.self.value = nn.Linear(d, d)
        self.attention.output = nn.Module()
        self.attention.output.dense = nn.Linear(d, d)
        self.attention.output.LayerNorm = nn.LayerNorm(d, eps=eps)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(d, inner)
        self.output = nn.Module()
        self.output.dense = nn.Linear(inner, d)
        self.output.LayerNorm = nn.LayerNorm(d, eps=eps)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        """x [B, L, d]; key_bias [B, 1, 1, L]: 0 for real keys, a large negative for padding."""
        b, n, d = x.shape
        h = self.heads
        a = self.attention.self

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, h, d // h).transpose(1, 2)

        q, k, v = split(a.query(x)), split(a.key(x)), split(a.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // h) + key_bias
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
        attended = self.attention.output.LayerNorm(self.attention.output.dense(context) + x)
        hidden = nn.functional.gelu(self.intermediate.dense(attended))
        return self.output.LayerNorm(self.output.dense(hidden) + attended)


class BertEncoder(nn.Module):
    """Embeddings + LayerNorm, then `num_hidden_layers` post-LN layers; sizes from config.json."""

    def __init__(self, config: dict):
        super().__init__()
        d, eps = config["hidden_size"], config.get("layer_norm_eps", 1e-12)
        if config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"hidden_act {config.get('hidden_act')!r}: only exact-erf gelu is mirrored here")
        self.config = config
        self.embeddings = nn.Module()
        self.embeddings.word_embeddings = nn.Embedding(config["vocab_size"], d)
        self.embeddings.position_embeddings = nn.Embedding(config["max_position_embeddings"], d)
        self.embeddings.token_type_embeddings = nn.Embedding(config.get("type_vocab_size", 2), d)
        self.embeddings.LayerNorm = nn.LayerNorm(d, eps=eps)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(
            BertLayer(d, config["intermediate_size"], config["num_attention_heads"], eps)
            for _ in range(config["num_hidden_layers"]))

    @classmethod
    def load(cls, folder: str | Path) -> "BertEncoder":
        """The checkpoint in `folder` (config.json, model.safetensors), in float32, eval mode."""
        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        model = cls(config)
        weights = load_file(str(folder / "model.safetensors"))
        weights = {k.removeprefix("bert."): v.float() for k, v in weights.items()
                   if not k.endswith("position_ids") and not k.startswith("pooler.")}
        weights = {k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias"): v
                   for k, v in weights.items()}
        model.load_state_dict(weights, strict=True)
        return model.eval()

    @property
    def layer_count(self) -> int:
        return len(self.encoder.layer)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """[B, L] ids -> [B, L, d] embedding-block output."""
        e = self.embeddings
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = e.word_embeddings(ids) + e.position_embeddings(positions)[None] + e.token_type_embeddings.weight[0]
        return e.LayerNorm(x)

    def forward_layers(self, x: torch.Tensor, mask: torch.Tensor, start: int = 0, end: int | None = None) -> torch.Tensor:
        """Layers `start..<end` over hidden states x [B, L, d]; mask [B, L] is 1 for real tokens."""
        key_bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.encoder.layer[start:end]:
            x = layer(x, key_bias)
        return x

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Last hidden states [B, L, d]; padded rows are not meaningful."""
        return self.forward_layers(self.embed(ids), mask)


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real tokens ([CLS] and [SEP] included): [B, L, d], [B, L] -> [B, d]."""
    m = mask.to(states.dtype)[..., None]
    return (states * m).sum(1) / m.sum(1).clamp(min=1.0)
