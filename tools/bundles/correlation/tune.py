"""Fits the zero-shot correlation head's calibration on the tune split and measures it on the report split.

Usage: models/.venv/bin/python tools/bundles/correlation/tune.py [--json]
(after make_pairs.py and features.py). Prints, per variant, leave-one-photo-out accuracy on the
tune split (what choices were made on) and accuracy and per-class recall on the report split
(nothing was chosen on it), then the chosen variant's calibration for the manifest. The
numbers are numpy's; tools/bundles/eval_correlation.py measures the Swift engine itself.

A variant is: templates (class descriptions), top_concepts, and the features the multinomial
logistic regression reads (tools/reference/zero_shot_reference.py defines them).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path[:0] = [str(HERE), str(ROOT / "tools/reference")]
import concepts as cc  # noqa: E402
import zero_shot_reference as ref  # noqa: E402

LABELS = ["irrelevant", "implicit", "explicit"]
L2 = 1.0  # on standardised features; chosen by leave-one-photo-out accuracy on the tune split

ONE = ["a photo of a {}"]
ENSEMBLE = ["a photo of a {}", "a picture of a {}", "look at this {}", "my {}", "a close-up photo of a {}", "{}",
            "a blurry photo of a {}", "a black and white photo of a {}", "this {} is the best thing I saw today",
            "a {} I saw today", "there is a {} in this picture", "a post about a {}"]


def fit(x: np.ndarray, y: np.ndarray, l2: float = L2, steps: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by Newton-free gradient descent on standardised features;
    returns (weights [3, F], bias [3]) for the raw features."""
    mu, sd = x.mean(0), x.std(0)
    sd[sd == 0] = 1
    z = (x - mu) / sd
    n, f = z.shape
    w, b = np.zeros((3, f)), np.zeros(3)
    onehot = np.eye(3)[y]
    lr = 0.5
    for _ in range(steps * 4):
        logits = z @ w.T + b
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / n
        w -= lr * (g.T @ z + l2 * w / n)
        b -= lr * g.sum(0)
    return w / sd, b - (w / sd) @ mu


def predict(w, b, x):
    return np.argmax(x @ w.T + b, 1)


class Data:
    def __init__(self, features: Path, models: Path, cache: Path):
        f = np.load(features)
        self.split, self.photo = f["split"], f["photo"]
        self.y = np.array([LABELS.index(l) for l in f["label"]])
        self.logits = dict(zip(f["photos"], f["logits"]))
        self.vectors, self.words = f["vectors"], [json.loads(w) for w in f["words"]]
        self.names = cc.class_names(models / "efficientnet-lite0/imagenet_classes.txt")
        self.glove = ref.load_word_vectors(models / "glove-6b-50d")
        self.models, self.cache = models, cache

    def features(self, templates: list[str], top: int) -> np.ndarray:
        """[N, 5] every reference feature per pair, in ref.FEATURES order."""
        concepts = cc.make(templates, self.names, self.models / "all-MiniLM-L6-v2", self.cache)
        config = {"top_concepts": top, "min_concept_probability": 0.05,
                  "calibration": {"features": [], "weights": [[], [], []], "bias": [0, 0, 0]}}
        scorer = ref.Scorer(config, concepts, self.names, self.glove)
        rows = [scorer.features_of(self.logits[p], v, w) for p, v, w in zip(self.photo, self.vectors, self.words)]
        return np.array([[r[name] for name in ref.FEATURES] for r in rows])


def evaluate(data: Data, x: np.ndarray, l2: float = L2) -> dict:
    tune, report = data.split == "tune", data.split == "report"
    cv = np.zeros(len(data.y), int)
    for photo in sorted(set(data.photo[tune])):
        train, held = tune & (data.photo != photo), tune & (data.photo == photo)
        cv[held] = predict(*fit(x[train], data.y[train], l2), x[held])
    w, b = fit(x[tune], data.y[tune], l2)
    pred = predict(w, b, x[report])
    y = data.y[report]
    return {"tune_cv": float((cv[tune] == data.y[tune]).mean()), "report": float((pred == y).mean()),
            "recall": [float(((pred == k) & (y == k)).sum() / (y == k).sum()) for k in range(3)],
            "weights": w, "bias": b}


def variants() -> list[tuple[str, list[str], int, list[str]]]:
    full = ["similarity", "similarity_mix", "similarity_z", "named", "related"]
    out = [("old scorer's features (1 template, max, named)", ONE, 5, ["similarity", "named"]),
           ("chosen: all signals", ENSEMBLE, 5, full)]
    for name in full:
        out.append((f"without {name}", ENSEMBLE, 5, [f for f in full if f != name]))
    out.append(("1 template instead of the ensemble", ONE, 5, full))
    out.append(("top 1 class instead of top 5", ENSEMBLE, 1, full))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", type=Path, default=ROOT / "models/correlation-features.npz")
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--cache", type=Path, default=ROOT / "models/correlation-cache")
    args = ap.parse_args()
    data = Data(args.features, args.models, args.cache)
    cached: dict = {}
    print("| variant | tune (leave one photo out) | report | recall irrelevant / implicit / explicit |")
    print("|---|---|---|---|")
    chosen = None
    for name, templates, top, feats in variants():
        key = (tuple(templates), top)
        if key not in cached:
            cached[key] = data.features(templates, top)
        x = cached[key][:, [ref.FEATURES.index(f) for f in feats]]
        r = evaluate(data, x)
        rec = " / ".join(f"{v:.2f}" for v in r["recall"])
        print(f"| {name} | {r['tune_cv']:.2f} | {r['report']:.2f} | {rec} |")
        if name.startswith("chosen"):
            chosen = (templates, top, feats, r)
    templates, top, feats, r = chosen
    calibration = {"features": feats, "weights": [[round(float(v), 4) for v in row] for row in r["weights"]],
                   "bias": [round(float(v), 4) for v in r["bias"]]}
    print("\nchosen config:")
    print(json.dumps({"templates": templates, "top_concepts": top, "calibration": calibration}))


if __name__ == "__main__":
    main()
