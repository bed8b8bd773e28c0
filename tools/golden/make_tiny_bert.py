"""Builds the tiny random-weight BERT fixture and its expected outputs (committed, tens of KB).

Writes Tests/ModelTests/Fixtures/tiny-bert/:
  config.json, vocab.txt, model.safetensors (F16 weights, so the F16 path is exercised),
  expected.json (texts and their ids from the `tokenizers` package),
  expected.safetensors (per text i: t{i}.embeddings, t{i}.layer{j}, t{i}.sentence, float32).

Run: models/.venv/bin/python tools/golden/make_tiny_bert.py   (after scripts/setup-models.sh)
The seed is fixed, so the output is the same on every run.
"""
from __future__ import annotations

import argparse
import json
import string
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers import BertWordPieceTokenizer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "reference"))
import bert_reference  # noqa: E402

SEED = 20261123
WIDTH, LAYERS, HEADS, INNER, POSITIONS, TYPES = 32, 2, 4, 64, 48, 2

TEXTS = [
    "Hello world!",
    "The cat sat on the mat, not the dog.",
    "Sarcasm is GREAT... said nobody ever #fun @you",
    "",
    "Héllo, naïve café-goers: zzzzq's [MASK] unknownwords 123 € 日本",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z the cats sitting",
]


def vocabulary() -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    punctuation = list(".,!?'#@:-")
    letters = list(string.ascii_lowercase)
    pieces = ["##" + c for c in string.ascii_lowercase] + ["##s", "##ing", "##ed"]
    words = ["the", "cat", "sat", "on", "mat", "hello", "world", "sarcasm", "is", "great", "not", "said",
             "dog", "you", "fun", "cafe", "naive", "1", "2", "3", "##2", "##3"]
    seen, out = set(), []
    for token in specials + punctuation + letters + words + pieces:
        if token not in seen:
            seen.add(token)
            out.append(token)
    return out


def weights(rng: np.random.Generator, vocab_size: int) -> dict[str, np.ndarray]:
    def normal(*shape, std=0.3):
        return (rng.standard_normal(shape) * std).astype(np.float16)

    w = {
        "embeddings.word_embeddings.weight": normal(vocab_size, WIDTH, std=1.0),
        "embeddings.position_embeddings.weight": normal(POSITIONS, WIDTH, std=0.5),
        "embeddings.token_type_embeddings.weight": normal(TYPES, WIDTH, std=0.5),
        "embeddings.LayerNorm.weight": (1 + normal(WIDTH, std=0.1)).astype(np.float16),
        "embeddings.LayerNorm.bias": normal(WIDTH, std=0.1),
        # Real checkpoints carry this buffer; the loader must ignore it (it is I64, not a weight).
        "embeddings.position_ids": np.arange(POSITIONS, dtype=np.int64)[None, :],
    }
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for name, (o, k) in {"attention.self.query": (WIDTH, WIDTH), "attention.self.key": (WIDTH, WIDTH),
                             "attention.self.value": (WIDTH, WIDTH), "attention.output.dense": (WIDTH, WIDTH),
                             "intermediate.dense": (INNER, WIDTH), "output.dense": (WIDTH, INNER)}.items():
            w[p + name + ".weight"] = normal(o, k, std=1 / np.sqrt(k) * 1.5)
            w[p + name + ".bias"] = normal(o, std=0.1)
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"]:
            w[p + norm + ".weight"] = (1 + normal(WIDTH, std=0.1)).astype(np.float16)
            w[p + norm + ".bias"] = normal(WIDTH, std=0.1)
    return w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "Tests" / "ModelTests" / "Fixtures" / "tiny-bert"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    vocab = vocabulary()
    (out / "vocab.txt").write_text("".join(t + "\n" for t in vocab))
    config = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": WIDTH,
              "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "intermediate_size": INNER,
              "hidden_act": "gelu", "layer_norm_eps": 1e-12, "max_position_embeddings": POSITIONS,
              "type_vocab_size": TYPES, "vocab_size": len(vocab), "pad_token_id": 0}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    rng = np.random.default_rng(SEED)
    save_file(weights(rng, len(vocab)), str(out / "model.safetensors"))

    tokenizer = BertWordPieceTokenizer(str(out / "vocab.txt"), lowercase=True)
    tokenizer.enable_truncation(POSITIONS)
    loaded, cfg = bert_reference.load_checkpoint(out)
    expected, ids = {}, []
    for i, text in enumerate(TEXTS):
        row = tokenizer.encode(text).ids
        ids.append(row)
        stages = bert_reference.forward(loaded, cfg, row)
        expected[f"t{i}.embeddings"] = stages["embeddings"].astype(np.float32)
        for j, layer in enumerate(stages["layers"]):
            expected[f"t{i}.layer{j}"] = layer.astype(np.float32)
        expected[f"t{i}.sentence"] = stages["sentence"].astype(np.float32)
    save_file(expected, str(out / "expected.safetensors"))
    (out / "expected.json").write_text(json.dumps({"texts": TEXTS, "ids": ids, "max_length": POSITIONS}, indent=1) + "\n")
    for path in out.iterdir():
        path.chmod(0o644)  # save_file creates files 0600; keep the committed modes ordinary
    print(f"wrote {out}: {len(vocab)} tokens, {LAYERS} layers, width {WIDTH}, {len(TEXTS)} texts")


if __name__ == "__main__":
    main()
