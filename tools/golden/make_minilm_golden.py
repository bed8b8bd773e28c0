"""Reference outputs of all-MiniLM-L6-v2 on 100 sentences, from the numpy reference (float64).

Writes <out>.json ({"texts", "ids", "max_length"}; ids from the `tokenizers` package and the model's
tokenizer.json) and <out>.safetensors (per sentence i: s{i}.tokens [L_i, 384] token states and
s{i}.sentence [384] masked mean, float32). About 3 MB, so it lives in the git-ignored models/golden/.

Run: models/.venv/bin/python tools/golden/make_minilm_golden.py \
        --model models/all-MiniLM-L6-v2 --out models/golden/minilm-reference
(scripts/setup-models.sh runs it.)
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "reference"))
sys.path.insert(0, str(HERE))
import bert_reference  # noqa: E402
import make_tokenizer_cases  # noqa: E402

MAX_LENGTH = 128
FIXED = [
    "Oh great, another Monday. Just what I needed.",
    "The sunset over the harbour was absolutely beautiful tonight.",
    "I love waiting in traffic for two hours, it's the best part of my day!",
    "New study shows coffee drinkers live longer: https://example.com/study?id=42",
    "Congratulations to @jane_doe on winning the marathon! #proud #running",
    "Wow, the weather is sooooo nice today... said no one in London ever.",
    "Photograph of a cat sleeping on a keyboard.",
    "Crème brûlée at the café in São Paulo was naïve but delicious.",
    "日本語のテキストと English mixed together.",
    "Breaking: local man discovers that water is wet 🙄😂",
    "",
    "Can't believe it's already 2026!!! Where did the time go???",
    "This is fine. Everything is fine. 🔥🔥🔥",
    "[CLS] tokens typed by users should stay special [MASK]",
    "A very long post " + "that keeps going and going " * 40,
    "Привет мир, как дела?",
    "The quick brown fox jumps over the lazy dog.",
    "Thanks for nothing, customer service. Really helpful.",
    "Our team shipped the release on time and under budget.",
    "Nice parking job 👍 really took up all three spaces.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="folder with config.json, model.safetensors, tokenizer.json")
    parser.add_argument("--out", required=True, help="output path without extension")
    args = parser.parse_args()
    model = Path(args.model)

    rng = random.Random(100)
    texts = list(FIXED)
    kinds = [0, 1, 2, 3, 4, 5, 6, 10, 13]
    while len(texts) < 100:
        texts.append(make_tokenizer_cases.case(rng, kinds[len(texts) % len(kinds)]))

    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_LENGTH)
    ids = [e.ids for e in tokenizer.encode_batch(texts)]

    weights, config = bert_reference.load_checkpoint(model)
    tensors = {}
    for i, row in enumerate(ids):
        stages = bert_reference.forward(weights, config, row)
        tensors[f"s{i}.tokens"] = stages["layers"][-1].astype(np.float32)
        tensors[f"s{i}.sentence"] = stages["sentence"].astype(np.float32)
    save_file(tensors, args.out + ".safetensors")
    Path(args.out + ".json").write_text(json.dumps({"texts": texts, "ids": ids, "max_length": MAX_LENGTH}) + "\n")
    print(f"wrote {len(texts)} sentences ({sum(map(len, ids))} tokens) to {args.out}.json/.safetensors")


if __name__ == "__main__":
    main()
