"""Trains the default bundle's sarcasm head: a text-only CLFA head (0 fusion layers), numpy only.

    T = mlp_text.fc2(ReLU(mlp_text.fc1(x_t)))     per MiniLM token state x_t (CLS and SEP included)
    pooled = masked mean of T over the post's tokens
    P = softmax(classifier(pooled))                 labels 0 = not_sarcastic, 1 = sarcastic

Because the mean is linear, mean_t fc2(h_t) = fc2(mean_t h_t): the trainer pools the ReLU outputs and
runs fc2 and the classifier once per post, which is the same function and much cheaper.

Data: the token states cached by encode_minilm_tokens.py (iSarcasmEval train.En.csv). A stratified
20% validation split (fixed seed) picks the epoch (early stopping on validation F1 of the sarcastic
class) and the decision threshold on P(sarcastic); the committed weights are those of the chosen
epoch of the run on the other 80% (no retraining on everything, so the reported numbers describe
the committed file). Class-weighted cross-entropy for the 1:3 imbalance, AdamW, token dropout.
Deterministic: fixed seeds, float32 numpy (same numbers on the same BLAS and thread count).

Run: models/.venv/bin/python tools/train/train_sarcasm_head.py          (writes tools/train/sarcasm-head/)
     models/.venv/bin/python tools/train/train_sarcasm_head.py --search (also tries a small grid of
                                                                         settings; results -> metrics.json)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEFAULT_CACHE = ROOT / "models" / "train-cache" / "isarcasmeval-train-minilm"
DEFAULT_OUT = HERE / "sarcasm-head"
SPLIT_SEED = 8
VALIDATION_FRACTION = 0.2

# --search trains SEARCH_BASE changed by each SEARCH entry ({} is the base itself), all on the same
# split; the committed head uses the entry with the best validation F1 (ties within noise: smaller).
SEARCH_BASE = {
    "hidden": 256, "mapped": 128, "lr": 3e-4, "weight_decay": 1e-2, "token_dropout": 0.1,
    "hidden_dropout": 0.2, "sarcastic_weight": 2.0, "batch_posts": 32, "max_epochs": 40, "patience": 8,
    "seed": 1,
}
SEARCH = [
    {},
    {"lr": 1e-3},
    {"hidden": 128, "mapped": 64},
    {"hidden": 512, "mapped": 256},
    {"weight_decay": 1e-1},
    {"token_dropout": 0.25, "hidden_dropout": 0.5},
    {"sarcastic_weight": 3.0},
]
DEFAULT_SETTINGS = {**SEARCH_BASE, "lr": 1e-3}


# ---------------------------------------------------------------- data

class Posts:
    """Token states of a set of posts, concatenated: post i owns states[starts[i]:starts[i]+lengths[i]]."""

    def __init__(self, states: np.ndarray, offsets: np.ndarray, labels: np.ndarray, rows: np.ndarray):
        self.states = states
        self.starts = offsets[rows]
        self.lengths = offsets[rows + 1] - offsets[rows]
        self.labels = labels[rows]
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, picks: np.ndarray, token_keep: float, rng: np.random.Generator):
        """Token states of the picked posts, each token's post index, and the tokens per post.

        With token_keep < 1 every token (but at least one per post) is dropped with 1 - token_keep,
        so the mean runs over a random subset: dropout on tokens, the only augmentation here.
        """
        index = np.concatenate([np.arange(s, s + n) for s, n in zip(self.starts[picks], self.lengths[picks])])
        owner = np.repeat(np.arange(len(picks)), self.lengths[picks])
        if token_keep < 1.0:
            keep = rng.random(len(index)) < token_keep
            first = np.concatenate([[0], np.cumsum(self.lengths[picks])[:-1]])
            keep[first] = keep[first] | ~np.bincount(owner, weights=keep, minlength=len(picks)).astype(bool)
            index, owner = index[keep], owner[keep]
        counts = np.bincount(owner, minlength=len(picks)).astype(np.float32)
        return self.states[index], owner, counts


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows): `fraction` of each class to validation, shuffled with `seed`."""
    rng = np.random.default_rng(seed)
    validation = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        rng.shuffle(rows)
        validation.append(rows[: int(round(fraction * len(rows)))])
    validation = np.sort(np.concatenate(validation))
    train = np.setdiff1d(np.arange(len(labels)), validation)
    return train, validation


# ---------------------------------------------------------------- metrics

def scores(labels: np.ndarray, predicted: np.ndarray) -> dict:
    """F1, precision and recall of the sarcastic class, and accuracy."""
    tp = int(((predicted == 1) & (labels == 1)).sum())
    fp = int(((predicted == 1) & (labels == 0)).sum())
    fn = int(((predicted == 0) & (labels == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1_sarcastic": round(f1, 4), "precision": round(precision, 4), "recall": round(recall, 4),
            "accuracy": round(float((predicted == labels).mean()), 4)}


THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.01), 2)


def best_threshold(labels: np.ndarray, p_sarcastic: np.ndarray) -> tuple[float, dict]:
    """The threshold on P(sarcastic) (grid 0.05..0.95, step 0.01) with the highest F1; ties -> nearest 0.5."""
    best = None
    for t in sorted(THRESHOLDS, key=lambda t: abs(t - 0.5)):
        s = scores(labels, (p_sarcastic >= t).astype(np.int64))
        if best is None or s["f1_sarcastic"] > best[1]["f1_sarcastic"]:
            best = (float(t), s)
    return best


# ---------------------------------------------------------------- model

def init_head(hidden: int, mapped: int, d_text: int, rng: np.random.Generator) -> dict:
    """PyTorch nn.Linear's default init (uniform +-1/sqrt(fan_in)), [out, in] layout."""
    def linear(out_features, in_features):
        bound = 1.0 / np.sqrt(in_features)
        return (rng.uniform(-bound, bound, (out_features, in_features)).astype(np.float32),
                rng.uniform(-bound, bound, out_features).astype(np.float32))
    p = {}
    p["mlp_text.fc1.weight"], p["mlp_text.fc1.bias"] = linear(hidden, d_text)
    p["mlp_text.fc2.weight"], p["mlp_text.fc2.bias"] = linear(mapped, hidden)
    p["classifier.weight"], p["classifier.bias"] = linear(2, mapped)
    return p


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def forward(p: dict, tokens: np.ndarray, owner: np.ndarray, counts: np.ndarray, hidden_keep: float = 1.0,
            rng: np.random.Generator | None = None):
    """Logits [B, 2] and what the backward pass needs."""
    pre = tokens @ p["mlp_text.fc1.weight"].T + p["mlp_text.fc1.bias"]
    h = np.maximum(pre, 0.0)
    drop = None
    if hidden_keep < 1.0:
        drop = (rng.random(h.shape) < hidden_keep).astype(np.float32) / np.float32(hidden_keep)
        h = h * drop
    # Every post keeps at least one token and its tokens are contiguous, so reduceat sums each post.
    firsts = np.concatenate([[0], np.cumsum(counts[:-1]).astype(np.int64)])
    pooled = np.add.reduceat(h, firsts, axis=0) / counts[:, None]
    mapped = pooled @ p["mlp_text.fc2.weight"].T + p["mlp_text.fc2.bias"]
    logits = mapped @ p["classifier.weight"].T + p["classifier.bias"]
    return logits, (tokens, owner, counts, pre, drop, pooled, mapped)


def backward(p: dict, dlogits: np.ndarray, cache) -> dict:
    tokens, owner, counts, pre, drop, pooled, mapped = cache
    g = {"classifier.weight": dlogits.T @ mapped, "classifier.bias": dlogits.sum(0)}
    dmapped = dlogits @ p["classifier.weight"]
    g["mlp_text.fc2.weight"] = dmapped.T @ pooled
    g["mlp_text.fc2.bias"] = dmapped.sum(0)
    dpooled = (dmapped @ p["mlp_text.fc2.weight"]) / counts[:, None]
    dh = dpooled[owner]
    if drop is not None:
        dh = dh * drop
    dpre = dh * (pre > 0)
    g["mlp_text.fc1.weight"] = dpre.T @ tokens
    g["mlp_text.fc1.bias"] = dpre.sum(0)
    return g


def weighted_cross_entropy(logits: np.ndarray, labels: np.ndarray, class_weights: np.ndarray):
    """Mean of w_y * -log softmax(logits)_y over the batch (normalised by the weight sum), and dlogits."""
    probs = softmax(logits)
    w = class_weights[labels]
    loss = float(-(w * np.log(probs[np.arange(len(labels)), labels] + 1e-12)).sum() / w.sum())
    dlogits = probs.copy()
    dlogits[np.arange(len(labels)), labels] -= 1.0
    return loss, (dlogits * (w / w.sum())[:, None]).astype(np.float32)


class AdamW:
    """Adam with decoupled weight decay on the weight matrices (not the biases)."""

    def __init__(self, params: dict, lr: float, weight_decay: float, betas=(0.9, 0.999), eps=1e-8):
        self.lr, self.wd, (self.b1, self.b2), self.eps = lr, weight_decay, betas, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params: dict, grads: dict) -> None:
        self.t += 1
        c1 = 1.0 - self.b1 ** self.t
        c2 = 1.0 - self.b2 ** self.t
        for k, g in grads.items():
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * g
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * g * g
            update = (self.m[k] / c1) / (np.sqrt(self.v[k] / c2) + self.eps)
            if k.endswith(".weight"):
                update = update + self.wd * params[k]
            params[k] = (params[k] - self.lr * update).astype(np.float32)


def predict(p: dict, posts: Posts, batch_posts: int = 256) -> np.ndarray:
    """P(sarcastic) per post, no dropout."""
    out = []
    for start in range(0, len(posts), batch_posts):
        picks = np.arange(start, min(start + batch_posts, len(posts)))
        tokens, owner, counts = posts.batch(picks, 1.0, None)
        logits, _ = forward(p, tokens, owner, counts)
        out.append(softmax(logits)[:, 1])
    return np.concatenate(out)


def train_head(settings: dict, train: Posts, validation: Posts, log=print) -> dict:
    """Trains with early stopping on validation F1 (at its best threshold); returns the best epoch's head."""
    rng = np.random.default_rng(settings["seed"])
    p = init_head(settings["hidden"], settings["mapped"], train.states.shape[1], rng)
    opt = AdamW(p, settings["lr"], settings["weight_decay"])
    class_weights = np.array([1.0, settings["sarcastic_weight"]], dtype=np.float32)
    best = {"f1": -1.0}
    history = []
    for epoch in range(1, settings["max_epochs"] + 1):
        order = rng.permutation(len(train))
        losses = []
        for start in range(0, len(order), settings["batch_posts"]):
            picks = order[start:start + settings["batch_posts"]]
            tokens, owner, counts = train.batch(picks, 1.0 - settings["token_dropout"], rng)
            logits, cache = forward(p, tokens, owner, counts, 1.0 - settings["hidden_dropout"], rng)
            loss, dlogits = weighted_cross_entropy(logits, train.labels[picks], class_weights)
            opt.step(p, backward(p, dlogits, cache))
            losses.append(loss)
        p_val = predict(p, validation)
        threshold, val = best_threshold(validation.labels, p_val)
        history.append({"epoch": epoch, "train_loss": round(float(np.mean(losses)), 4),
                        "val_f1_best_threshold": val["f1_sarcastic"], "threshold": threshold})
        log(f"  epoch {epoch:3d} loss {np.mean(losses):.4f} val F1 {val['f1_sarcastic']:.4f} at {threshold:.2f}")
        if val["f1_sarcastic"] > best["f1"]:
            best = {"f1": val["f1_sarcastic"], "epoch": epoch, "threshold": threshold,
                    "params": {k: v.copy() for k, v in p.items()}}
        elif epoch - best["epoch"] >= settings["patience"]:
            break
    best["history"] = history
    return best


# ---------------------------------------------------------------- baselines

def logistic_regression(x_train, y_train, x_val, sarcastic_weight: float, weight_decay: float = 1e-3,
                        epochs: int = 300, lr: float = 0.05) -> np.ndarray:
    """Class-weighted L2 logistic regression (full-batch Adam on standardised inputs); P(sarcastic) on x_val."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    xt, xv = (x_train - mean) / std, (x_val - mean) / std
    w = np.zeros(xt.shape[1], dtype=np.float64)
    b = 0.0
    sample_weight = np.where(y_train == 1, sarcastic_weight, 1.0)
    sample_weight = sample_weight / sample_weight.sum()
    m = np.zeros(len(w) + 1)
    v = np.zeros(len(w) + 1)
    for t in range(1, epochs + 1):
        p = 1.0 / (1.0 + np.exp(-(xt @ w + b)))
        err = (p - y_train) * sample_weight
        g = np.concatenate([xt.T @ err + weight_decay * w, [err.sum()]])
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        step = lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        w -= step[:-1]
        b -= step[-1]
    return 1.0 / (1.0 + np.exp(-(xv @ w + b)))


def mean_vectors(posts: Posts) -> np.ndarray:
    """The masked mean of each post's token states: MiniLM's (unnormalised) sentence vector."""
    return np.stack([posts.states[s:s + n].mean(0) for s, n in zip(posts.starts, posts.lengths)]).astype(np.float64)


# ---------------------------------------------------------------- main

def run(settings: dict, train: Posts, validation: Posts, verbose: bool) -> dict:
    started = time.time()
    result = train_head(settings, train, validation, log=print if verbose else (lambda *_: None))
    p_val = predict(result["params"], validation)
    result["validation_at_threshold"] = scores(validation.labels, (p_val >= result["threshold"]).astype(np.int64))
    result["validation_at_0.5"] = scores(validation.labels, (p_val >= 0.5).astype(np.int64))
    result["seconds"] = round(time.time() - started, 1)
    result["p_val"] = p_val
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help="encode_minilm_tokens.py output (no extension)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="bundle folder to write")
    parser.add_argument("--search", action="store_true", help="also try the SEARCH grid and record it")
    args = parser.parse_args()

    meta = json.loads(Path(args.cache + ".json").read_text())
    if hashlib.sha256(Path(meta["data"]).read_bytes()).hexdigest() != meta["data_sha256"]:
        sys.exit("the data file changed since the cache was made: rerun encode_minilm_tokens.py")
    cache = np.load(args.cache + ".npz")
    states, offsets, labels = cache["states"], cache["offsets"], cache["labels"]
    train_rows, val_rows = stratified_split(labels, VALIDATION_FRACTION, SPLIT_SEED)
    train, validation = Posts(states, offsets, labels, train_rows), Posts(states, offsets, labels, val_rows)
    print(f"{len(train)} train ({int(train.labels.sum())} sarcastic), "
          f"{len(validation)} validation ({int(validation.labels.sum())} sarcastic)")

    baselines = {"all_sarcastic": scores(validation.labels, np.ones(len(validation), dtype=np.int64))}
    p_lr = logistic_regression(mean_vectors(train), train.labels.astype(np.float64), mean_vectors(validation),
                               DEFAULT_SETTINGS["sarcastic_weight"])
    t_lr, s_lr = best_threshold(validation.labels, p_lr)
    baselines["logreg_mean_minilm"] = {"at_threshold": s_lr, "threshold": t_lr,
                                       "at_0.5": scores(validation.labels, (p_lr >= 0.5).astype(np.int64))}
    print(f"baselines: {json.dumps(baselines)}")

    search = []
    if args.search:
        for change in SEARCH:
            settings = {**SEARCH_BASE, **change}
            r = run(settings, train, validation, verbose=False)
            search.append({"change": change, "best_epoch": r["epoch"], "threshold": r["threshold"],
                           "validation_at_threshold": r["validation_at_threshold"],
                           "validation_at_0.5": r["validation_at_0.5"], "seconds": r["seconds"]})
            print(f"search {change}: {search[-1]}")

    result = run(DEFAULT_SETTINGS, train, validation, verbose=True)
    print(f"head: epoch {result['epoch']}, threshold {result['threshold']}, "
          f"{result['validation_at_threshold']}, at 0.5 {result['validation_at_0.5']}, {result['seconds']} s")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in result["params"].items()},
              str(out / "sarcasm.safetensors"), metadata={"format": "pt"})
    metrics = {
        "data": {"file": Path(meta["data"]).name, "sha256": meta["data_sha256"], "posts": int(len(labels)),
                 "sarcastic": int(labels.sum()), "text_length": meta["text_length"],
                 "truncated_posts": meta["truncated_posts"]},
        "split": {"seed": SPLIT_SEED, "validation_fraction": VALIDATION_FRACTION, "stratified": True,
                  "train": len(train), "train_sarcastic": int(train.labels.sum()),
                  "validation": len(validation), "validation_sarcastic": int(validation.labels.sum())},
        "settings": DEFAULT_SETTINGS,
        "committed_weights": "the best validation epoch of the run on the training 80% (no retraining on all data)",
        "best_epoch": result["epoch"],
        "threshold": result["threshold"],
        "validation": result["validation_at_threshold"],
        "validation_at_0.5": result["validation_at_0.5"],
        "baselines": baselines,
        "training_seconds": result["seconds"],
        "history": result["history"],
    }
    metrics["search_base"] = SEARCH_BASE
    if args.search:
        metrics["search"] = search
    else:
        previous = out / "metrics.json"
        if previous.exists() and "search" in json.loads(previous.read_text()):
            metrics["search"] = json.loads(previous.read_text())["search"]
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(f"wrote {out}/sarcasm.safetensors and metrics.json")


if __name__ == "__main__":
    main()
