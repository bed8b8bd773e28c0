"""MiniLM token states for every tweet of a CSV, cached for the sarcasm-head trainer.

The sarcasm head (CLFA, text-only) reads all-MiniLM-L6-v2's last-layer state of every token:
[CLS] + the first 75 word pieces + [SEP] (text length 77), tokenised by the `tokenizers` package
with the model's tokenizer.json, exactly as the Swift engine does. tools/reference/bert_reference.py
computes the same thing but one post at a time in float64 with a per-element Python erf; this is a
batched float32 forward of the same network (posts sorted by length, padded, keys masked) with a
vectorised erf, fast enough for a few thousand posts on two cores. `--check N` compares it with the
reference on N posts (max abs difference must stay below 1e-4) before encoding.

Output (git-ignored, under models/train-cache/ by default): one .npz with
    states  [total_tokens, 384] float32   token states of all posts, concatenated in CSV order
    offsets [posts + 1] int64             post i owns states[offsets[i]:offsets[i+1]]
    labels  [posts] int64                 the CSV's `sarcastic` column (0/1)
    ids     [total_tokens] int64          the token ids, for checks
and a .json with the data file's sha256, the model folder and the text length.

Run: models/.venv/bin/python tools/train/encode_minilm_tokens.py --check 8
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tools" / "reference"))
import bert_reference  # noqa: E402

TEXT_LENGTH = 77  # CLFA's text length: [CLS] + 75 word pieces + [SEP]
DEFAULT_DATA = "/work/shared/data/isarcasmeval/train.En.csv"
DEFAULT_MODEL = ROOT / "models" / "all-MiniLM-L6-v2"
DEFAULT_OUT = ROOT / "models" / "train-cache" / "isarcasmeval-train-minilm"


def erf(x: np.ndarray) -> np.ndarray:
    """Vectorised erf, Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7), computed in float64."""
    x64 = x.astype(np.float64)
    a = np.abs(x64)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    y = 1.0 - poly * np.exp(-a * a)
    return (np.sign(x64) * y).astype(x.dtype)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, HF's "gelu"."""
    return 0.5 * x * (1.0 + erf(x * np.float32(1.0 / math.sqrt(2.0))))


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def forward_batch(w: dict, config: dict, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Last-layer token states [B, L, d] (float32) of a padded batch; mask [B, L] is 1 for real tokens.

    Padded keys get -10000 added to their scores (exp underflows to exactly 0 in float32), so a real
    token's state equals the unpadded forward's; padded positions hold garbage the caller drops.
    """
    eps = float(config.get("layer_norm_eps", 1e-12))
    heads = int(config["num_attention_heads"])
    b, n = ids.shape
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.token_type_embeddings.weight"][0]
         + w["embeddings.position_embeddings.weight"][:n])
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    d = x.shape[-1]
    dh = d // heads
    key_bias = ((1.0 - mask.astype(np.float32)) * np.float32(-10000.0))[:, None, None, :]
    scale = np.float32(1.0 / math.sqrt(dh))

    def linear(h, name):
        return h @ w[name + ".weight"].T + w[name + ".bias"]

    def split_heads(h):
        return h.reshape(b, n, heads, dh).transpose(0, 2, 1, 3)

    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        q = split_heads(linear(x, p + "attention.self.query"))
        k = split_heads(linear(x, p + "attention.self.key"))
        v = split_heads(linear(x, p + "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) * scale + key_bias
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(b, n, d)
        a = layer_norm(linear(context, p + "attention.output.dense") + x,
                       w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        h = gelu(linear(a, p + "intermediate.dense"))
        x = layer_norm(linear(h, p + "output.dense") + a,
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    return x


def encode(w: dict, config: dict, ids: list[list[int]], batch_size: int = 32) -> list[np.ndarray]:
    """Token states [L_i, d] per post; posts are batched by length so padding stays small."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: list[np.ndarray | None] = [None] * len(ids)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        n = max(len(ids[i]) for i in chunk)
        batch = np.zeros((len(chunk), n), dtype=np.int64)
        mask = np.zeros((len(chunk), n), dtype=np.int64)
        for row, i in enumerate(chunk):
            batch[row, :len(ids[i])] = ids[i]
            mask[row, :len(ids[i])] = 1
        states = forward_batch(w, config, batch, mask)
        for row, i in enumerate(chunk):
            out[i] = states[row, :len(ids[i])]
    return out  # type: ignore[return-value]


def read_csv(path: str) -> tuple[list[str], list[int]]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["tweet"] for r in rows], [int(r["sarcastic"]) for r in rows]


def tokenize(model: Path, texts: list[str]) -> list[list[int]]:
    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(TEXT_LENGTH)
    return [e.ids for e in tokenizer.encode_batch(texts)]


def sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA, help="CSV with `tweet` and `sarcastic` columns")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="all-MiniLM-L6-v2 folder")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output path without extension")
    parser.add_argument("--check", type=int, default=8, help="posts to compare with bert_reference (0: skip)")
    args = parser.parse_args()
    model = Path(args.model)

    texts, labels = read_csv(args.data)
    ids = tokenize(model, texts)
    weights, config = bert_reference.load_checkpoint(model)
    w32 = {k: v.astype(np.float32) for k, v in weights.items() if v.dtype.kind == "f"}

    if args.check:
        # The longest posts plus a few ordinary ones, batched together so padding is exercised.
        by_length = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        longest = by_length[-(args.check // 2):]
        spread = by_length[:: len(ids) // (args.check - len(longest))][: args.check - len(longest)]
        picks = longest + spread
        fast = encode(w32, config, [ids[i] for i in picks], batch_size=len(picks))
        worst = 0.0
        for i, states in zip(picks, fast):
            ref = bert_reference.forward(weights, config, ids[i])["layers"][-1]
            worst = max(worst, float(np.abs(states - ref).max()))
        print(f"check: {len(picks)} posts (lengths {sorted(len(ids[i]) for i in picks)}), "
              f"max abs diff vs bert_reference (float64) = {worst:.2e}")
        if worst >= 1e-4:
            sys.exit("batched forward disagrees with the reference")

    started = time.time()
    states = encode(w32, config, ids)
    lengths = np.array([len(r) for r in ids], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(str(out) + ".npz", states=np.concatenate(states).astype(np.float32), offsets=offsets,
             labels=np.array(labels, dtype=np.int64), ids=np.concatenate([np.array(r, dtype=np.int64) for r in ids]))
    meta = {"data": args.data, "data_sha256": sha256(args.data), "model": str(model),
            "text_length": TEXT_LENGTH, "posts": len(ids), "tokens": int(offsets[-1]),
            "truncated_posts": int((lengths == TEXT_LENGTH).sum())}
    Path(str(out) + ".json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"encoded {len(ids)} posts ({offsets[-1]} tokens) in {time.time() - started:.0f} s -> {out}.npz")


if __name__ == "__main__":
    main()
