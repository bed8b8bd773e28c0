"""Builds the AnANet golden fixture: a tiny random head, a tiny GloVe table, five posts and every
stage of the numpy reference (tools/reference/ananet_reference.py). Committed, about 80 KB.

Writes Tests/ModelTests/Fixtures/ananet/:
  config.json          the head's config: lambda, eta, region_count (K)
  model.safetensors    random F32 head weights: d = 32 (GRU hidden 16 per direction), word width
                       24 (GloVe 8 + text 16), K = 5 regions of width 24, N_max = 12, P = 200, C = 3
  glove/               a 21-word, 8-dim table in the format of tools/convert_glove.py
  inputs.json          per post: text, ids and word spans from the tiny-bert vocabulary
                       (Fixtures/tiny-bert/vocab.txt), truncation to max_length = 20
  inputs.safetensors   regions [B, K, 24]; p{b}.token_states [len(ids), 16] (random stand-ins for
                       text-encoder states)
  expected.safetensors per post b: p{b}.e (word features) and p{b}.{V, gru_forward, gru_backward, T,
                       f_img, f_txt, r_g, S, V_hat, T_hat, v, t, r_l, association_logits,
                       alignment_logits, logits, probabilities}, float32

The posts cover 0 words, a few words (some missing from the GloVe table, multi-piece words, an
accented word), exactly N_max words, more than N_max words (a typed [MASK] among them), and a word
cut by truncation (dropped).

Run: models/.venv/bin/python tools/golden/make_ananet_golden.py    (the seed is fixed)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from tokenizers import BertWordPieceTokenizer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "reference"))
import ananet_reference as ref  # noqa: E402

SEED = 20261124
D, GLOVE_DIMS, TEXT_WIDTH, REGIONS, REGION_WIDTH, MAX_WORDS, PROJ, LABELS = 32, 8, 16, 5, 24, 12, 200, 3
MAX_LENGTH = 20
CONFIG = {"lambda": 0.7, "eta": 1.3, "region_count": REGIONS}

TEXTS = [
    "",
    "The cat sat on the MAT, naïve cats!",
    "Hello world, sarcasm is great! said the dog to you",
    "you said the [MASK] cat is not fun. the dog sat on the mat, hello",
    "Café dogs sat on the mat, said nobody ever",
]
# Missing on purpose: mat, naive, cats, sarcasm, to, dogs, nobody, [MASK]. "café" is unreachable
# (lookups use the accent-stripped word) and "zebra" unused.
GLOVE_WORDS = ["the", ",", ".", "cat", "sat", "on", "hello", "world", "!", "cafe", "dog", "is", "great",
               "said", "you", "fun", "not", "café", "[mask]", "zebra", "ever"]


def head_weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    def normal(*shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    h, width = D // 2, GLOVE_DIMS + TEXT_WIDTH
    w = {
        "region_proj.weight": normal(D, REGION_WIDTH, std=1 / np.sqrt(REGION_WIDTH)),
        "region_proj.bias": normal(D, std=0.1),
        "association.proj.weight": normal(PROJ, D, std=1 / np.sqrt(D)),
        "association.classifier.weight": normal(LABELS, 2 * PROJ, std=2 / np.sqrt(2 * PROJ)),
        "association.classifier.bias": normal(LABELS, std=0.1),
        "alignment.classifier.weight": normal(LABELS, MAX_WORDS + REGIONS, std=0.5),
        "alignment.classifier.bias": normal(LABELS, std=0.1),
    }
    for suffix in ["", "_reverse"]:
        # torch.nn.GRU's own init: uniform in +-1/sqrt(hidden).
        bound = 1 / np.sqrt(h)
        w["gru.weight_ih_l0" + suffix] = rng.uniform(-bound, bound, (3 * h, width)).astype(np.float32)
        w["gru.weight_hh_l0" + suffix] = rng.uniform(-bound, bound, (3 * h, h)).astype(np.float32)
        w["gru.bias_ih_l0" + suffix] = rng.uniform(-bound, bound, 3 * h).astype(np.float32)
        w["gru.bias_hh_l0" + suffix] = rng.uniform(-bound, bound, 3 * h).astype(np.float32)
    return w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "Tests" / "ModelTests" / "Fixtures" / "ananet"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)

    (out / "config.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
    save_file(head_weights(rng), str(out / "model.safetensors"))
    weights = load_file(str(out / "model.safetensors"))
    ref.write_word_vectors(out / "glove", GLOVE_WORDS,
                           rng.standard_normal((len(GLOVE_WORDS), GLOVE_DIMS)).astype(np.float32),
                           source={"package": "test fixture", "script": "tools/golden/make_ananet_golden.py"})
    lookup, vectors = ref.load_word_vectors(out / "glove")

    tokenizer = BertWordPieceTokenizer(str(ROOT / "Tests" / "ModelTests" / "Fixtures" / "tiny-bert" / "vocab.txt"),
                                       lowercase=True)._tokenizer
    tokenizer.no_truncation()
    tokenizer.no_padding()
    regions = rng.standard_normal((len(TEXTS), REGIONS, REGION_WIDTH)).astype(np.float32)
    inputs = {"regions": regions}
    expected = {}
    posts = []
    for b, text in enumerate(TEXTS):
        ids, spans = ref.word_spans(tokenizer, text, MAX_LENGTH)
        posts.append({"text": text, "ids": ids, "words": [list(s) for s in spans]})
        states = (rng.standard_normal((len(ids), TEXT_WIDTH)) * 0.5).astype(np.float32)
        inputs[f"p{b}.token_states"] = states
        e = ref.word_features(spans, states, lookup, vectors, MAX_WORDS)
        expected[f"p{b}.e"] = e
        # The head sees the features as the engine has them: float32.
        stages = ref.forward(weights, CONFIG, regions[b], e.astype(np.float32))
        for name, value in stages.items():
            expected[f"p{b}.{name}"] = value
    counts = [len(p["words"]) for p in posts]
    assert counts[0] == 0 and 0 < counts[1] < MAX_WORDS and counts[2] == MAX_WORDS and counts[3] > MAX_WORDS, counts
    assert len(posts[4]["ids"]) == MAX_LENGTH and posts[4]["words"][-1][2] < MAX_LENGTH - 1, "post 4 must drop a cut word"

    save_file(inputs, str(out / "inputs.safetensors"))
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in expected.items()}, str(out / "expected.safetensors"))
    lines = ",\n".join("  " + json.dumps(p, ensure_ascii=False) for p in posts)
    (out / "inputs.json").write_text(f'{{"max_length": {MAX_LENGTH}, "max_words": {MAX_WORDS}, "posts": [\n{lines}\n]}}\n')
    for path in [*out.iterdir(), *(out / "glove").iterdir()]:
        if path.is_file():
            path.chmod(0o644)  # save_file creates files 0600; keep the committed modes ordinary
    print(f"wrote {out}: {len(TEXTS)} posts, words per post {counts}")


if __name__ == "__main__":
    main()
