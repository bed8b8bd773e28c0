"""The evaluation protocol of the sarcasm trainer: stratified folds, F1 at a deployment prior, and
the threshold rule. Kept apart from training so that the rule that picks a threshold is visibly the
same in cross-validation and in the final fit.

A model trained where 25% of posts are sarcastic is served where fewer are (14% in SemEval-2022's
test set). Precision depends on that prior, so F1 is computed "at prior p": each negative counts
w = ((1 - p) / p) / ((1 - q) / q) times, q the positive fraction of the evaluated posts. This is
the F1 expected on a set with the same sarcastic and non-sarcastic posts mixed at prior p.
"""
from __future__ import annotations

import numpy as np


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """k disjoint index sets covering every post, each with nearly the same positive fraction."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    for value in np.unique(labels):
        rows = np.flatnonzero(labels == value)
        rng.shuffle(rows)
        for i, row in enumerate(rows):
            folds[i % k].append(int(row))
    return [np.array(sorted(f)) for f in folds]


def stratified_split(rows: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held) with about `fraction` of each class of `rows` held out."""
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for value in np.unique(labels[rows]):
        members = rows[labels[rows] == value].copy()
        rng.shuffle(members)
        held += members[:max(1, round(len(members) * fraction))].tolist()
    held_set = set(held)
    kept = np.array([r for r in rows if r not in held_set])
    return kept, np.array(sorted(held))


def negative_weight(labels: np.ndarray, prior: float | None) -> float:
    """How many times each negative counts for F1 at `prior` (1 when prior is None)."""
    q = float(labels.mean())
    if prior is None or q <= 0 or q >= 1:
        return 1.0
    return ((1 - prior) / prior) / ((1 - q) / q)


def scores(probabilities: np.ndarray, labels: np.ndarray, threshold: float, prior: float | None = None) -> dict:
    """Precision, recall and F1 of the positive class, and accuracy, at `threshold` and `prior`."""
    w = negative_weight(labels, prior)
    predicted = probabilities >= threshold
    tp = float(np.sum(predicted & (labels == 1)))
    fp = float(np.sum(predicted & (labels == 0))) * w
    fn = float(np.sum(~predicted & (labels == 1)))
    tn = float(np.sum(~predicted & (labels == 0))) * w
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": f1, "precision": precision, "recall": recall, "accuracy": (tp + tn) / (tp + fp + fn + tn),
            "predicted_positive_share": float(predicted.mean())}


def best_threshold(probabilities: np.ndarray, labels: np.ndarray, prior: float | None) -> float:
    """The threshold (a multiple of 0.01 in [0.01, 0.99]) with the best F1 at `prior`; ties go to
    the higher threshold (fewer false alarms)."""
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
    f1s = [scores(probabilities, labels, t, prior)["f1"] for t in grid]
    best = max(f1s)
    return float(max(t for t, f in zip(grid, f1s) if f == best))
