"""Numpy reference of the `zero_shot_imagenet` correlation head (Sources/Model/Bundle/ZeroShot*.swift),
the yardstick of its golden test and the scorer tools/bundles/correlation/tune.py fits.

Per post with an image (float64 throughout):
  p = softmax(image logits); candidates = the `top_concepts` likeliest classes (ties: lower index
  first), the first always, the others only with p >= `min_concept_probability`.
  t = unit(sentence vector); sim_c = t . V_c for every class (V: unit class-description vectors,
  each the renormalised mean of the unit vectors of the class name in every template).
  Content words: the post's words longer than 2 characters, starting with a letter, not stopwords.
  A candidate is named when a content word, or the word less a final "s" (words of 4+ letters), is
  a word of its names.
  Features (the manifest lists which ones the head uses, in order):
    similarity      max over candidates of sim_c + `name_match_bonus` if c is named; the best
                    candidate is the one reaching it (ties: lower index)
    similarity_mix  sum over all classes of p_c sim_c: the text's similarity expected under the
                    image's class distribution
    similarity_z    (max over candidates of sim_c - mean_c sim_c) / std_c sim_c, over all classes
                    (population std)
    named           1 when a candidate is named, else 0
    related         max over candidates, content words w and name words u both in the word
                    vectors of cos(w, u); 0 when no pair has vectors
  logits = weights . features + bias (one row per label); probabilities = softmax(logits); the
  label is the most probable (ties: the first label).
Evidence: the best candidate, its p, its cosine sim_c, and the words that named a candidate (or
else the related word pair's text word).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

FEATURES = ["similarity", "similarity_mix", "similarity_z", "named", "related"]

# Mirrors EnglishStopwords in Sources/Model/Bundle/ZeroShotCorrelationHead.swift.
STOPWORDS = set("""the and for are but not you all any can had her was one our out has him his how its may
new now old see two who did get got let say she too use that with have this will your from they been were
what when them than then there their these those some just like into over also very only more most such
much about after again before being could would should which while where here because really still yet my
me its it's i'm another finally today tomorrow yesterday love great wow what's""".split())


def name_words(raw_name: str) -> set[str]:
    """Words of every synonym of a class ("tabby, tabby cat" -> {tabby, cat}) used for name matching."""
    return {w for w in re.split(r"[^\w]+|_", raw_name.lower()) if len(w) > 2 and w not in STOPWORDS}


def content_words(words: list[str]) -> list[str]:
    return [w for w in words if len(w) > 2 and w[0].isalpha() and w not in STOPWORDS]


def unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def concept_vectors(per_template: list[np.ndarray]) -> np.ndarray:
    """[C, d] class-description vectors from one [C, d] matrix of sentence vectors per template."""
    total = sum(m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-30) for m in per_template)
    return total / np.maximum(np.linalg.norm(total, axis=1, keepdims=True), 1e-30)


class Scorer:
    """The head's arithmetic: `config` as in the manifest, `concepts` [C, d] unit rows, `class_names`
    raw ImageNet lines, `word_vectors` ({word: row}, [n, dims]) or None."""

    def __init__(self, config: dict, concepts: np.ndarray, class_names: list[str], word_vectors=None):
        self.config = config
        self.concepts = np.asarray(concepts, np.float64)
        self.names = [name_words(n) for n in class_names]
        self.lookup, self.vectors = word_vectors if word_vectors is not None else ({}, None)
        calibration = config["calibration"]
        self.features = calibration["features"]
        self.weights = np.asarray(calibration["weights"], np.float64)
        self.bias = np.asarray(calibration["bias"], np.float64)

    def _vector(self, word: str):
        row = self.lookup.get(word)
        return None if row is None else unit(self.vectors[row].astype(np.float64))

    def features_of(self, logits, sentence, words: list[str]) -> dict:
        """Every feature (named as in FEATURES) and the evidence of one post."""
        logits = np.asarray(logits, np.float64)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        ranked = sorted(range(len(p)), key=lambda c: (-p[c], c))
        k, floor = self.config.get("top_concepts", 5), self.config.get("min_concept_probability", 0.05)
        candidates = [ranked[0]] + [c for c in ranked[1:k] if p[c] >= floor]
        sims = self.concepts @ unit(np.asarray(sentence, np.float64))
        content = content_words(words)

        def names(c: int) -> list[str]:
            return [w for w in content if w in self.names[c] or (len(w) > 3 and w.endswith("s") and w[:-1] in self.names[c])]

        bonus = self.config.get("name_match_bonus", 0.3)
        scores = {c: sims[c] + (bonus if names(c) else 0.0) for c in candidates}
        best = max(candidates, key=lambda c: (scores[c], -c))
        named = [w for w in content if any(w in names(c) for c in candidates)]
        out = {"similarity": scores[best],
               "similarity_mix": float(p @ sims),
               "similarity_z": (sims[candidates].max() - sims.mean()) / sims.std(),
               "named": 1.0 if named else 0.0}
        related, related_word = 0.0, ""
        if self.vectors is not None:
            text_vectors = [(w, self._vector(w)) for w in content]
            for c in candidates:
                for u in sorted(self.names[c]):
                    vu = self._vector(u)
                    if vu is None:
                        continue
                    for w, vw in text_vectors:
                        if vw is not None and float(vu @ vw) > related:
                            related, related_word = float(vu @ vw), w
        out["related"] = related
        out["evidence"] = {"concept": best, "concept_probability": p[best], "cosine": sims[best],
                           "named": named, "related_word": related_word}
        return out

    def score(self, logits, sentence, words: list[str]) -> dict:
        """{"features": [...], "logits": [...], "probabilities": [...], "label": index, "evidence": {...}}."""
        f = self.features_of(logits, sentence, words)
        x = np.array([f[name] for name in self.features])
        z = self.weights @ x + self.bias
        e = np.exp(z - z.max())
        probabilities = e / e.sum()
        return {"features": x, "logits": z, "probabilities": probabilities,
                "label": int(np.argmax(probabilities)), "evidence": f["evidence"], "all": f}


def load_word_vectors(folder: str | Path):
    """({word: row}, [count, dims] float32) of a converted GloVe folder (tools/convert_glove.py)."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    vectors = np.fromfile(folder / "vectors.f32", dtype="<f4").reshape(config["count"], config["dims"])
    lookup: dict[str, int] = {}
    for i, w in enumerate((folder / "words.txt").read_text(encoding="utf-8").split("\n")[:config["count"]]):
        lookup.setdefault(w, i)
    return lookup, vectors
