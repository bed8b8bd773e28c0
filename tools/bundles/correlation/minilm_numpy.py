"""A batched float32 numpy forward pass of the `bert` text encoder, for encoding many short texts.

tools/reference/bert_reference.py is the yardstick (one post, float64, exact erf) and far too slow for
thousands of class descriptions; this one pads a batch, masks the padding, and uses a rational erf
approximation (absolute error below 1.5e-7), so its sentence vectors agree with the reference's
to about 1e-5.

    encoder = MiniLM("models/all-MiniLM-L6-v2", max_tokens=77)
    vectors, words = encoder.encode(["a photo of a cat", ...])   # [N, d] masked means; words per text
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz and Stegun 7.1.26.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * np.exp(-a * a)
    return sign * y


def _layer_norm(x, g, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


class MiniLM:
    def __init__(self, folder: str | Path, max_tokens: int = 77):
        folder = Path(folder)
        self.config = json.loads((folder / "config.json").read_text())
        raw = load_file(str(folder / "model.safetensors"))
        self.w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in raw.items() if v.dtype.kind == "f"}
        self.wt = {k.removesuffix(".weight"): np.ascontiguousarray(v.T) for k, v in self.w.items()
                   if k.endswith(".weight") and v.ndim == 2 and "embeddings" not in k}
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_tokens)
        self.eps = float(self.config.get("layer_norm_eps", 1e-12))

    def words(self, text: str) -> list[str]:
        """The words the Swift engine sees: the normaliser's text split by the pre-tokenizer."""
        normalised = self.tokenizer.normalizer.normalize_str(text)
        return [w for w, _ in self.tokenizer.pre_tokenizer.pre_tokenize_str(normalised)]

    def encode(self, texts: list[str], batch: int = 128) -> np.ndarray:
        out = []
        for start in range(0, len(texts), batch):
            out.append(self._batch([e.ids for e in self.tokenizer.encode_batch(texts[start:start + batch])])[0])
        return np.concatenate(out, 0) if out else np.zeros((0, self.config["hidden_size"]), np.float32)

    def _batch(self, ids_list: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """(masked-mean sentence vectors [n, d], last hidden states [n, length, d]) of one padded batch."""
        w, eps = self.w, self.eps
        n, length = len(ids_list), max(len(i) for i in ids_list)
        ids = np.zeros((n, length), np.int64)
        mask = np.zeros((n, length), np.float32)
        for r, i in enumerate(ids_list):
            ids[r, :len(i)] = i
            mask[r, :len(i)] = 1
        heads = int(self.config["num_attention_heads"])
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][0]
             + w["embeddings.position_embeddings.weight"][np.arange(length)])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        d = x.shape[-1]
        dh = d // heads
        bias = (1.0 - mask)[:, None, None, :] * -1e9

        def linear(h, name):
            # 2-D products with contiguous transposed weights: numpy's batched matmul does not use BLAS.
            return (h.reshape(-1, h.shape[-1]) @ self.wt[name]).reshape(*h.shape[:-1], -1) + w[name + ".bias"]

        def split(h):
            return h.reshape(n, length, heads, dh).transpose(0, 2, 1, 3)

        for i in range(int(self.config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            q, k, v = (split(linear(x, p + f"attention.self.{m}")) for m in ("query", "key", "value"))
            s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(n, length, d)
            a = _layer_norm(linear(ctx, p + "attention.output.dense") + x,
                            w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
            h = linear(a, p + "intermediate.dense")
            h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))
            x = _layer_norm(linear(h, p + "output.dense") + a,
                            w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        return (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True), x
