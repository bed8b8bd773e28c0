"""What both head trainers share: determinism, the validation split, the epoch loop with
best-epoch selection, metrics, and the common command-line options."""
from __future__ import annotations

import argparse
import copy
import platform
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .data import DEFAULT_CACHE, Post, data_sha256, read_posts


def make_deterministic(seed: int) -> None:
    """One thread, seeded generators, deterministic kernels: the same data and settings give the
    same head bit for bit on the same machine and torch version."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def common_arguments(parser: argparse.ArgumentParser, task: str, labels: str) -> None:
    root = Path(__file__).resolve().parents[3]
    a = parser.add_argument
    a("--data", required=True, help="training posts, JSONL: id, text, image (relative to the file or absolute), label")
    a("--label-key", default="label", help="the key holding each post's label name (posts where it is null are skipped)")
    a("--task", default=task, help="the task name in the bundle and the daemon's output")
    a("--labels", default=labels, help="label names in output order, comma-separated")
    a("--val", help="validation posts (JSONL); default: --val-fraction of --data, drawn with --seed")
    a("--val-fraction", type=float, default=0.15)
    a("--test", help="held-out posts (JSONL) evaluated once with the chosen head")
    a("--base", default=str(root / "models" / "default"), help="the bundle whose encoders the head reads")
    a("--out", required=True, help="the bundle folder to write (new or empty; under models/ its components are linked)")
    a("--epochs", type=int, default=30)
    a("--lr", type=float, default=1e-3)
    a("--weight-decay", type=float, default=0.01)
    a("--batch-size", type=int, default=32)
    a("--dropout", type=float, default=0.1)
    a("--seed", type=int, default=0)
    a("--postclassd", help="the postclassd binary that encodes images (default: $POSTCLASSD_BIN or .build/*/postclassd)")
    a("--cache", default=str(DEFAULT_CACHE), help="where the engine's image region grids are cached")
    a("--only-this-head", action="store_true",
      help="the bundle holds this head alone and only the components it reads (default: with the base's other heads)")
    a("--predict", help="also write the trained head's probabilities for the posts of this JSONL")
    a("--predictions-out", help="where --predict writes (default: <out>/predictions.jsonl)")
    a("--posts-out", help="with --predict: also write its posts in the daemon's input schema (base64 JPEG) here")


def require_new_out(trainer: str, out: str) -> None:
    """Stops before any work when --out holds something (a bundle is never written over)."""
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise SystemExit(f"{trainer}: --out {out} exists and is not an empty folder: choose a new one or remove it")


def require_posts(trainer: str, train: list[Post], val: list[Post], what: str = "labelled posts") -> None:
    """Stops with a message when either side of the split is empty (nothing to fit or to choose by)."""
    if len(train) < 1 or len(val) < 1:
        raise SystemExit(f"{trainer}: {len(train)} training and {len(val)} validation {what}; the trainer needs "
                         "some of each: check --label-key and --labels, add posts, or pass --val FILE")


def split(posts: list[Post], fraction: float, seed: int) -> tuple[list[Post], list[Post]]:
    """A seeded random validation split (at least one post each side)."""
    order = list(range(len(posts)))
    random.Random(seed).shuffle(order)
    n = min(max(1, round(len(posts) * fraction)), len(posts) - 1)
    return [posts[i] for i in sorted(order[n:])], [posts[i] for i in sorted(order[:n])]


def metrics(predicted: list[int], gold: list[int], labels: list[str]) -> dict:
    """Accuracy, macro-F1 and per-label precision, recall, F1, support."""
    per = {}
    for i, name in enumerate(labels):
        tp = sum(p == i and g == i for p, g in zip(predicted, gold))
        fp = sum(p == i and g != i for p, g in zip(predicted, gold))
        fn = sum(p != i and g == i for p, g in zip(predicted, gold))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per[name] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                     "support": tp + fn}
    accuracy = sum(p == g for p, g in zip(predicted, gold)) / max(1, len(gold))
    macro = sum(v["f1"] for v in per.values()) / len(per)
    return {"posts": len(gold), "accuracy": round(accuracy, 4), "macro_f1": round(macro, 4), "labels": per}


@dataclass
class Fit:
    model: torch.nn.Module
    history: list[dict]
    best_epoch: int


def fit(model: torch.nn.Module, train_count: int, logits: Callable[[torch.nn.Module, list[int], str], torch.Tensor],
        train_gold: torch.Tensor, val_count: int, val_gold: list[int], labels: list[str], epochs: int, lr: float,
        weight_decay: float, batch_size: int, seed: int, log: Callable[[str], None] = print) -> Fit:
    """AdamW on cross-entropy; after each epoch the validation metrics; keeps the epoch with the best
    validation macro-F1 (the earliest on ties). `logits(model, indices, split)` runs a batch of
    posts of `split` ("train" or "val") by index."""
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    order = torch.Generator().manual_seed(seed)
    history, best, best_state = [], None, None
    for epoch in range(1, epochs + 1):
        model.train()
        total, seen = 0.0, 0
        for batch in torch.randperm(train_count, generator=order).split(batch_size):
            indices = batch.tolist()
            loss = torch.nn.functional.cross_entropy(logits(model, indices, "train"), train_gold[indices])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(indices)
            seen += len(indices)
        model.eval()
        with torch.no_grad():
            predicted = [int(x) for i in range(0, val_count, 256)
                         for x in logits(model, list(range(i, min(i + 256, val_count))), "val").argmax(-1)]
        m = metrics(predicted, val_gold, labels)
        history.append({"epoch": epoch, "train_loss": round(total / max(1, seen), 5),
                        "val_accuracy": m["accuracy"], "val_macro_f1": m["macro_f1"]})
        log(f"epoch {epoch:3d}  loss {total / max(1, seen):.4f}  val accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}")
        if best is None or m["macro_f1"] > best[1]:
            best = (epoch, m["macro_f1"])
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return Fit(model, history, best[0])


def label_indices(posts: list[Post], key: str, labels: list[str], source: str) -> list[int]:
    """Each post's label index; a name outside `labels` is an error that names the post."""
    out = []
    for post in posts:
        name = post.label(key)
        if name not in labels:
            raise SystemExit(f"{source}: post {post.id} has {key} {name!r}, not one of {labels}; fix the data or --labels")
        out.append(labels.index(name))
    return out


def training_record(trainer: str, kind: str, args: argparse.Namespace, labels: list[str], counts: dict[str, int],
                    head_settings: dict, result: Fit, held_out: dict, base_manifest: dict, started: float) -> dict:
    """training.json: what was trained on (paths, sha256 of each JSONL with its images), how
    (seed, every setting, the head's shape, torch's version), and what it measured."""
    def described(path: str | None) -> dict | None:
        return None if not path else {"path": str(path), "sha256": data_sha256(path, read_posts(path))}

    import torch

    return {
        "trainer": trainer, "task": args.task, "kind": kind, "labels": labels,
        "data": {"label_key": args.label_key, "train": described(args.data), "validation": described(args.val)
                 or f"{args.val_fraction} of train, seed {args.seed}", "test": described(args.test), "posts": counts},
        "base": {"folder": str(args.base), "name": base_manifest.get("name"), "version": base_manifest.get("version")},
        "seed": args.seed,
        "settings": {k: v for k, v in vars(args).items() if k not in ("data", "val", "test", "out", "base")},
        "head": head_settings, "epochs": result.history, "best_epoch": result.best_epoch, "held_out": held_out,
        "torch": torch.__version__, "python": platform.python_version(), "seconds": round(time.time() - started, 1),
    }
