"""Runs the committed sarcasm head on a few texts, in numpy, for comparing the Swift engine with.

Encoder: tools/reference/bert_reference.py (float64) on all-MiniLM-L6-v2, tokens [CLS] + first 75
word pieces + [SEP] (the `tokenizers` package, the model's tokenizer.json, truncation 77). Head: the
text-only CLFA head of MODEL-SPEC.md with 0 fusion layers, read from sarcasm.safetensors by its
tensor names: per token fc2(ReLU(fc1(x))), masked mean over all tokens, classifier, softmax.

Prints, per text, the token count, the logits and P(sarcastic), and the label at the bundle's
threshold (metrics.json); --write also stores them in examples.json next to the weights.

Run: models/.venv/bin/python tools/train/check_sarcasm_head.py [--write]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tools" / "reference"))
import bert_reference  # noqa: E402

TEXTS = [
    "I love it when my flight gets delayed for the third time today. Best airline ever.",
    "Just got back from a lovely walk along the river with my family.",
    "Oh great, another Monday. Just what I needed.",
    "The new library opens on Saturday at 10am, entry is free.",
    "Wow, thanks for the 45 minute hold music, customer service. Really made my day.",
    "",
]


def head_forward(head: dict, states: np.ndarray) -> np.ndarray:
    """Logits [2] of the text-only CLFA head for one post's token states [L, d] (all tokens valid)."""
    w = {k: v.astype(np.float64) for k, v in head.items()}
    t = np.maximum(states @ w["mlp_text.fc1.weight"].T + w["mlp_text.fc1.bias"], 0.0)
    t = t @ w["mlp_text.fc2.weight"].T + w["mlp_text.fc2.bias"]
    pooled = t.mean(axis=0)
    return pooled @ w["classifier.weight"].T + w["classifier.bias"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default=str(HERE / "sarcasm-head"))
    parser.add_argument("--model", default=str(ROOT / "models" / "all-MiniLM-L6-v2"))
    parser.add_argument("--write", action="store_true", help="write examples.json into the bundle folder")
    args = parser.parse_args()
    bundle, model = Path(args.bundle), Path(args.model)

    head = load_file(str(bundle / "sarcasm.safetensors"))
    text_length = json.loads((bundle / "config.json").read_text())["text_length"]
    threshold = json.loads((bundle / "metrics.json").read_text())["threshold"]
    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(text_length)
    weights, config = bert_reference.load_checkpoint(model)

    examples = []
    for text in TEXTS:
        ids = tokenizer.encode(text).ids
        states = bert_reference.forward(weights, config, ids)["layers"][-1]
        logits = head_forward(head, states)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        label = "sarcastic" if probs[1] >= threshold else "not_sarcastic"
        examples.append({"text": text, "ids": ids, "logits": [round(float(x), 6) for x in logits],
                         "p_sarcastic": round(float(probs[1]), 6), "label": label})
        print(f"P(sarcastic) = {probs[1]:.6f}  {label:13s}  ({len(ids)} tokens)  {text!r}")
    if args.write:
        out = {"threshold": threshold, "encoder": "bert_reference.py float64, all-MiniLM-L6-v2",
               "text_length": text_length, "examples": examples}
        (bundle / "examples.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {bundle / 'examples.json'}")


if __name__ == "__main__":
    main()
