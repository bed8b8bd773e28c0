"""Golden data for the zero-shot correlation scorer (Sources/Model/Bundle/ZeroShotScorer.swift).

Usage: models/.venv/bin/python tools/golden/make_zero_shot_golden.py [--out Tests/ModelTests/Fixtures/zero-shot]

Writes (seed fixed, numpy only):
  classes.txt     12 ImageNet-style class lines (synonyms separated by commas)
  concepts.f32    [12, 16] unit description vectors, little-endian float32
  glove/          a small word-vector table (tools/convert_glove.py's format): the class name words,
                  related text words placed near them, unrelated words, and words absent from it
  config.json     the head's config: every feature, random calibration weights
  posts.json      10 posts (logits, sentence vector, words) with every feature, the probabilities,
                  the label and the evidence of tools/reference/zero_shot_reference.py
Posts cover: a named class (and a plural), a related word only, no content words, a flat image
distribution (many candidates), a peaked one (one candidate), candidates below the probability floor.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "reference"))
import ananet_reference  # noqa: E402  (write_word_vectors)
import zero_shot_reference as ref  # noqa: E402

CLASSES = ["tabby, tabby cat", "tiger cat", "espresso", "coffee mug", "space shuttle", "missile",
           "wall clock", "daisy", "palace", "tripod", "military uniform", "jack-o'-lantern"]
RELATED = {"kitty": "cat", "latte": "espresso", "launch": "shuttle", "flowers": "daisy", "camera": "tripod"}
UNRELATED = ["taxes", "train", "football", "garden", "morning"]
POSTS = [
    ("my tabby cat is asleep", 0, "peaked"),
    ("two cats on the sofa", 1, "flat"),
    ("my morning latte", 2, "two"),
    ("the launch is tomorrow", 4, "flat"),
    ("taxes are due friday", 6, "peaked"),
    ("!!! ok", 7, "floor"),
    ("flowers everywhere in the garden", 7, "two"),
    ("new camera and tripod", 9, "peaked"),
    ("football on the train", 10, "flat"),
    ("zxqv unknownword", 11, "floor"),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "Tests/ModelTests/Fixtures/zero-shot")
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(28)
    c, d, g = len(CLASSES), 16, 8

    concepts = rng.normal(size=(c, d))
    concepts /= np.linalg.norm(concepts, axis=1, keepdims=True)
    concepts = concepts.astype("<f4")
    (out / "classes.txt").write_text("".join(n + "\n" for n in CLASSES))
    (out / "concepts.f32").write_bytes(concepts.tobytes())

    name_words = sorted(set().union(*(ref.name_words(n) for n in CLASSES)))
    table = {w: rng.normal(size=g) for w in name_words}
    for word, near in RELATED.items():
        table[word] = table[near] + 0.5 * rng.normal(size=g)
    for word in UNRELATED:
        table[word] = rng.normal(size=g)
    words = sorted(table)
    ananet_reference.write_word_vectors(out / "glove", words, np.stack([table[w] for w in words]),
                                        {"package": "test fixture", "script": "tools/golden/make_zero_shot_golden.py"})

    config = {"templates": ["a photo of a {}"], "top_concepts": 4, "min_concept_probability": 0.08, "name_match_bonus": 0.25,
              "calibration": {"features": ["similarity", "similarity_mix", "similarity_z", "named", "related"],
                              "weights": np.round(rng.normal(size=(3, 5)) * 2, 4).tolist(),
                              "bias": np.round(rng.normal(size=3), 4).tolist()},
              "evidence_words": 2}
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")

    scorer = ref.Scorer(config, concepts.astype(np.float64), CLASSES, ref.load_word_vectors(out / "glove"))
    posts = []
    for text, target, shape in POSTS:
        logits = rng.normal(size=c)
        if shape == "peaked":
            logits[target] += 8
        elif shape == "two":
            logits[target] += 3
            logits[(target + 1) % c] += 2.8
        elif shape == "floor":
            logits[target] += 2.5
        logits = logits.astype("<f4")
        sentence = (concepts[target] * 3 + rng.normal(size=d)).astype("<f4")
        post_words = text.replace("!", " ! ").split()
        r = scorer.score(logits.astype(np.float64), sentence.astype(np.float64), post_words)
        ev = r["evidence"]
        posts.append({"text": text, "words": post_words, "logits": logits.tolist(), "sentence": sentence.tolist(),
                      "features": r["all"] and [float(r["all"][f]) for f in ref.FEATURES],
                      "probabilities": r["probabilities"].tolist(), "label": r["label"],
                      "concept": int(ev["concept"]), "concept_probability": float(ev["concept_probability"]),
                      "cosine": float(ev["cosine"]),
                      "named": ev["named"], "related_word": ev["related_word"]})
    (out / "posts.json").write_text(json.dumps({"features": ref.FEATURES, "posts": posts}, indent=1) + "\n")
    labels = [p["label"] for p in posts]
    print(f"wrote {out}: {len(posts)} posts, labels {labels}, named {[p['named'] for p in posts]}, "
          f"related {[p['related_word'] for p in posts]}")


if __name__ == "__main__":
    main()
