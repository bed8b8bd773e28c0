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
L2 = 0.03  # on standardised features; chosen by leave-one-photo-out log-loss on the tune split

ONE = ["a photo of a {}"]
PHOTO = ["a photo of a {}", "a picture of a {}", "a close-up photo of a {}", "a blurry photo of a {}",
         "a black and white photo of a {}"]
WIDE = PHOTO + ["look at this {}", "my {}", "{}", "this {} is the best thing I saw today", "a {} I saw today",
                "there is a {} in this picture", "a post about a {}"]
CHOSEN = {"templates": PHOTO, "top": 5, "bonus": 0.3, "features": ["similarity", "similarity_mix", "similarity_z"]}
# The head before this work: one template, the best similarity (name bonus 0.3) against 0.18 and 0.35.
OLD = {"features": ["similarity"], "weights": [[0.0], [20.0], [40.0]], "bias": [0.0, -3.6, -10.6]}


def increasing(v: np.ndarray) -> np.ndarray:
    """The closest non-decreasing sequence to v (pool adjacent violators, equal weights)."""
    blocks = [[float(x), 1] for x in v]
    i = 0
    while i < len(blocks) - 1:
        if blocks[i][0] > blocks[i + 1][0]:
            total = blocks[i][0] * blocks[i][1] + blocks[i + 1][0] * blocks[i + 1][1]
            blocks[i:i + 2] = [[total / (blocks[i][1] + blocks[i + 1][1]), blocks[i][1] + blocks[i + 1][1]]]
            i = max(i - 1, 0)
        else:
            i += 1
    return np.array([m for m, n in blocks for _ in range(n)])


def fit(x: np.ndarray, y: np.ndarray, l2: float = L2, steps: int = 5000, monotone: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by gradient descent on standardised features (L2 on the
    weights, not the bias); returns (weights [3, F], bias [3]) for the raw features.

    monotone: keep each feature's weights non-decreasing from irrelevant to implicit to explicit
    (projected gradient), as if every feature were evidence of relevance. Measured as an ablation:
    the unconstrained fit can learn that a very high similarity (rare on the tune split) means
    irrelevant, but the constrained one is worse on the tune split."""
    mu, sd = x.mean(0), x.std(0)
    sd[sd == 0] = 1
    z = (x - mu) / sd
    n, f = z.shape
    w, b = np.zeros((3, f)), np.zeros(3)
    onehot = np.eye(3)[y]
    lr = 0.5
    for _ in range(steps):
        logits = z @ w.T + b
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / n
        w -= lr * (g.T @ z + l2 * w / n)
        b -= lr * g.sum(0)
        if monotone:
            w = np.stack([increasing(w[:, j]) for j in range(f)], 1)
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

    def features(self, templates: list[str], top: int, bonus: float) -> np.ndarray:
        """[N, 5] every reference feature per pair, in ref.FEATURES order."""
        concepts = cc.make(templates, self.names, self.models / "all-MiniLM-L6-v2", self.cache)
        config = {"top_concepts": top, "min_concept_probability": 0.05, "name_match_bonus": bonus,
                  "calibration": {"features": [], "weights": [[], [], []], "bias": [0, 0, 0]}}
        scorer = ref.Scorer(config, concepts, self.names, self.glove)
        rows = [scorer.features_of(self.logits[p], v, w) for p, v, w in zip(self.photo, self.vectors, self.words)]
        return np.array([[r[name] for name in ref.FEATURES] for r in rows])


def probabilities(w, b, x):
    z = x @ w.T + b
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def evaluate(data: Data, x: np.ndarray, l2: float = L2, fixed=None, monotone: bool = False) -> dict:
    """Leave-one-photo-out on the tune split, then the fit on all of it applied to the report
    split; `fixed` = (weights, bias) skips fitting."""
    tune, report = data.split == "tune", data.split == "report"
    cv = np.zeros((len(data.y), 3))
    for photo in sorted(set(data.photo[tune])):
        train, held = tune & (data.photo != photo), tune & (data.photo == photo)
        cv[held] = probabilities(*(fixed or fit(x[train], data.y[train], l2, monotone=monotone)), x[held])
    w, b = fixed or fit(x[tune], data.y[tune], l2, monotone=monotone)
    p = probabilities(w, b, x[report])
    pred, y = p.argmax(1), data.y[report]
    return {"tune_cv": float((cv[tune].argmax(1) == data.y[tune]).mean()),
            "tune_logloss": float(-np.log(cv[tune][np.arange(tune.sum()), data.y[tune]]).mean()),
            "report": float((pred == y).mean()),
            "report_logloss": float(-np.log(p[np.arange(len(y)), y]).mean()),
            "recall": [float(((pred == k) & (y == k)).sum() / (y == k).sum()) for k in range(3)],
            "weights": np.asarray(w), "bias": np.asarray(b)}


def variants() -> list[tuple[str, dict]]:
    """(name, variant): the old head, the chosen one, then one change each."""
    def change(**kw):
        return {**CHOSEN, **kw}
    f = CHOSEN["features"]
    return [
        ("the old head (1 template, similarity with name bonus, thresholds 0.18 / 0.35, not fitted)",
         change(templates=ONE, features=["similarity"], bonus=0.3, fixed=OLD)),
        ("the old head's feature, calibrated", change(templates=ONE, features=["similarity"], bonus=0.3)),
        ("**chosen**: 5 photo templates, similarity (name bonus 0.3) + similarity_mix + similarity_z", CHOSEN),
        ("weights monotone in relevance (irrelevant <= implicit <= explicit per feature)", change(monotone=True)),
        ("without the name bonus", change(bonus=0.0)),
        ("without similarity_mix", change(features=[x for x in f if x != "similarity_mix"])),
        ("without similarity_z", change(features=[x for x in f if x != "similarity_z"])),
        ("1 template instead of 5", change(templates=ONE)),
        ("12 templates (5 photo + 7 post-like)", change(templates=WIDE)),
        ("with named as a fitted feature", change(features=f + ["named"])),
        ("with related (GloVe neighbourhood)", change(features=f + ["related"])),
        ("top 1 class instead of top 5", change(top=1)),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", type=Path, default=ROOT / "models/correlation-features.npz")
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--cache", type=Path, default=ROOT / "models/correlation-cache")
    args = ap.parse_args()
    data = Data(args.features, args.models, args.cache)
    cached: dict = {}
    print("| variant | tune: accuracy (log-loss), leave one photo out | report: accuracy (log-loss) | report recall irrelevant / implicit / explicit |")
    print("|---|---|---|---|")
    for name, v in variants():
        key = (tuple(v["templates"]), v["top"], v["bonus"])
        if key not in cached:
            cached[key] = data.features(v["templates"], v["top"], v["bonus"])
        x = cached[key][:, [ref.FEATURES.index(f) for f in v["features"]]]
        fixed = (np.array(v["fixed"]["weights"]), np.array(v["fixed"]["bias"])) if "fixed" in v else None
        r = evaluate(data, x, fixed=fixed, monotone=v.get("monotone", False))
        rec = " / ".join(f"{x:.2f}" for x in r["recall"])
        print(f"| {name} | {r['tune_cv']:.3f} ({r['tune_logloss']:.3f}) | {r['report']:.3f} ({r['report_logloss']:.3f}) | {rec} |")
        if v is CHOSEN:
            chosen = r
    calibration = {"features": CHOSEN["features"], "weights": [[round(float(x), 4) for x in row] for row in chosen["weights"]],
                   "bias": [round(float(x), 4) for x in chosen["bias"]]}
    print("\nchosen config (tools/bundles/default/manifest.json):")
    print(json.dumps({"templates": CHOSEN["templates"], "top_concepts": CHOSEN["top"], "min_concept_probability": 0.05,
                      "name_match_bonus": CHOSEN["bonus"], "calibration": calibration}))


if __name__ == "__main__":
    main()
