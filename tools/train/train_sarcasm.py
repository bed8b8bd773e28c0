"""Fine-tunes the sarcasm head of a postclassd bundle: LoRA adapters on the text encoder's top
layers plus a text-only CLFA head, trained on labelled posts (iSarcasmEval train by default).

    models/.venv-train/bin/python tools/train/train_sarcasm.py --cv 5 --seeds 0,1,2   # the protocol
    models/.venv-train/bin/python tools/train/train_sarcasm.py --out DIR               # train + export
    models/.venv-train/bin/python tools/train/train_sarcasm.py --predict posts.jsonl --out DIR

What is trained: rank-r adapters on every product of the encoder's top `--adapter-layers` layers
(0 = the encoder stays frozen) and the head: per token fc2(ReLU(fc1(x))), masked mean, classifier.
The frozen bottom layers are run once over the data and cached, so a run costs the top layers only.

The protocol (`--cv`): k stratified folds, repeated over seeds. Each outer fold is scored by a model
that never saw it, and the threshold it is scored at was picked on a calibration split of the
training folds (`--calibration`), by the F1 at `--prior` (see postclassd_train/protocol.py). The
export runs the same procedure on all posts, so cross-validation describes the exported model's
recipe. Nothing else is chosen on the data: epochs and rates are fixed settings.

Export (`--out DIR`): a bundle folder (manifest.json from --base-bundle with this sarcasm head), heads/sarcasm.safetensors (the head), heads/sarcasm-adapter.safetensors (the
adapters, `<weight>.lora_A` / `.lora_B`, scale folded into B), training.json (data sha256, seed,
settings, calibration scores, threshold, torch version), head-entry.json (the manifest head entry).
"""
from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from postclassd_train import protocol  # noqa: E402
from postclassd_train.bert import BertEncoder  # noqa: E402
from postclassd_train.bundle import write_bundle  # noqa: E402
from postclassd_train.lora import adapter_tensors, add_lora  # noqa: E402
from postclassd_train.text import PostTokenizer, pad  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "isarcasmeval" / "train.En.csv"
LABELS = ["not_sarcastic", "sarcastic"]


class TextOnlyCLFA(nn.Module):
    """The CLFA head with no image side and no fusion layers, under the engine's tensor names."""

    def __init__(self, width: int, hidden: int, out: int, dropout: float):
        super().__init__()
        self.mlp_text = nn.Module()
        self.mlp_text.fc1 = nn.Linear(width, hidden)
        self.mlp_text.fc2 = nn.Linear(hidden, out)
        self.classifier = nn.Linear(out, 2)
        self.dropout = nn.Dropout(dropout)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        t = self.mlp_text.fc2(self.dropout(torch.relu(self.mlp_text.fc1(states))))
        m = mask.to(t.dtype)[..., None]
        pooled = (t * m).sum(1) / m.sum(1)
        return self.classifier(pooled)


class SarcasmModel(nn.Module):
    """The encoder's layers from `first` on (with adapters) and the head, over cached states."""

    def __init__(self, encoder: BertEncoder, first: int, rank: int, alpha: float, head: TextOnlyCLFA, full: bool = False):
        super().__init__()
        self.encoder = copy.deepcopy(encoder)
        self.first = first
        if full:
            # Every weight of the top layers trains (a comparison for the adapters; not exportable).
            for p in self.encoder.parameters():
                p.requires_grad_(False)
            self.adapters = [p for layer in self.encoder.encoder.layer[first:] for p in layer.parameters()]
            for p in self.adapters:
                p.requires_grad_(True)
        else:
            self.adapters = add_lora(self.encoder, first, rank, alpha) if first < encoder.layer_count else []
        self.head = head

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder.forward_layers(hidden, mask, start=self.first)
        return self.head(states, mask)


def load_posts(path: Path, text_column: str, label_column: str, rephrase_column: str | None):
    """Texts, 0/1 labels and (where the file has them) rephrases, from CSV or JSONL. A label is
    1/0, true/false, or a label name (sarcastic / not_sarcastic)."""
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    else:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"{path}: no posts")
    for column in (text_column, label_column):
        if column not in rows[0]:
            raise SystemExit(f"{path}: no column '{column}' (columns: {', '.join(rows[0])}); pass --text-column / --label-column")

    def label(value) -> int:
        text = str(value).strip().lower()
        if text in ("1", "true", "sarcastic"):
            return 1
        if text in ("0", "false", "not_sarcastic"):
            return 0
        raise SystemExit(f"{path}: label '{value}' is not 1/0, true/false or sarcastic/not_sarcastic")

    texts = [str(r[text_column] or "") for r in rows]
    labels = np.array([label(r[label_column]) for r in rows], dtype=np.int64)
    rephrases = [str(r.get(rephrase_column) or "").strip() if rephrase_column else "" for r in rows]
    return texts, labels, rephrases


class BottomCache:
    """The frozen layers' output for every text, computed once: a list of [len, d] tensors."""

    def __init__(self, encoder: BertEncoder, ids: list[list[int]], first: int, batch: int = 64):
        self.states: list[torch.Tensor] = [None] * len(ids)  # type: ignore[list-item]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        with torch.no_grad():
            for start in range(0, len(order), batch):
                picks = order[start:start + batch]
                hidden, mask = pad([ids[i] for i in picks])
                out = encoder.forward_layers(encoder.embed(hidden), mask, end=first)
                for row, i in enumerate(picks):
                    self.states[i] = out[row, :len(ids[i])].clone()

    def batch(self, picks) -> tuple[torch.Tensor, torch.Tensor]:
        length = max(self.states[i].shape[0] for i in picks)
        d = self.states[picks[0]].shape[1]
        hidden = torch.zeros(len(picks), length, d)
        mask = torch.zeros(len(picks), length, dtype=torch.long)
        for row, i in enumerate(picks):
            n = self.states[i].shape[0]
            hidden[row, :n] = self.states[i]
            mask[row, :n] = 1
        return hidden, mask


def length_batches(rows: np.ndarray, lengths: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length (less padding): shuffle, sort within chunks of 8 batches."""
    rows = rows.copy()
    rng.shuffle(rows)
    batches = []
    for start in range(0, len(rows), size * 8):
        chunk = rows[start:start + size * 8]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + size] for i in range(0, len(chunk), size)]
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def train(cache: BottomCache, labels: np.ndarray, rows: np.ndarray, encoder: BertEncoder, args, seed: int) -> SarcasmModel:
    """One model on `rows` (indices into the cache, rephrase negatives included by the caller)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    first = encoder.layer_count - args.adapter_layers
    head = TextOnlyCLFA(encoder.config["hidden_size"], args.hidden, args.out_width, args.dropout)
    model = SarcasmModel(encoder, first, args.rank, args.alpha, head, full=args.tune == "full")
    params = [{"params": model.adapters, "lr": args.adapter_lr}, {"params": head.parameters(), "lr": args.lr}]
    optimiser = torch.optim.AdamW(params, weight_decay=args.weight_decay)
    lengths = np.array([s.shape[0] for s in cache.states])
    steps = args.epochs * ((len(rows) + args.batch - 1) // args.batch)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1.0 - step / max(1, steps))
    weights = torch.tensor([1.0, args.positive_weight])
    model.train()
    for _ in range(args.epochs):
        for picks in length_batches(rows, lengths, args.batch, rng):
            hidden, mask = cache.batch(picks)
            loss = nn.functional.cross_entropy(model(hidden, mask), torch.from_numpy(labels[picks]), weight=weights)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    return model.eval()


def predict(model: SarcasmModel, cache: BottomCache, rows: np.ndarray, batch: int = 64) -> np.ndarray:
    """P(sarcastic) per row."""
    out = np.zeros(len(rows))
    order = np.argsort([cache.states[r].shape[0] for r in rows], kind="stable")
    with torch.no_grad():
        for start in range(0, len(rows), batch):
            picks = order[start:start + batch]
            hidden, mask = cache.batch(rows[picks])
            out[picks] = model(hidden, mask).softmax(-1)[:, 1].double().numpy()
    return out


class Dataset:
    """The posts, their rephrases as extra negatives (rows past the posts), and the frozen cache."""

    def __init__(self, args, encoder: BertEncoder, tokenizer: PostTokenizer):
        self.texts, self.labels, rephrases = load_posts(Path(args.data), args.text_column, args.label_column,
                                                        args.rephrase_column)
        if args.limit:
            self.texts, self.labels, rephrases = self.texts[:args.limit], self.labels[:args.limit], rephrases[:args.limit]
        self.n = len(self.texts)
        self.rephrase_of = {i: r for i, r in enumerate(rephrases) if r and self.labels[i] == 1}
        self.extra_rows = {}
        all_texts = list(self.texts)
        all_labels = list(self.labels)
        if args.rephrase_negatives:
            for i, text in self.rephrase_of.items():
                self.extra_rows[i] = len(all_texts)
                all_texts.append(text)
                all_labels.append(0)
        self.all_labels = np.array(all_labels)
        first = encoder.layer_count - args.adapter_layers
        started = time.time()
        self.cache = BottomCache(encoder, tokenizer.ids(all_texts), first)
        print(f"encoded {len(all_texts)} texts through layers 0..{first - 1} in {time.time() - started:.0f}s", file=sys.stderr)

    def training_rows(self, rows: np.ndarray) -> np.ndarray:
        """`rows` plus the rephrases of their sarcastic posts (never a rephrase of a held-out post)."""
        extra = [self.extra_rows[r] for r in rows if r in self.extra_rows]
        return np.concatenate([rows, np.array(extra, dtype=rows.dtype)])


def fit_and_calibrate(data: Dataset, encoder: BertEncoder, rows: np.ndarray, args, seed: int):
    """The recipe: fit on rows minus a calibration split, pick the threshold on that split."""
    fit, calibration = protocol.stratified_split(rows, data.labels, args.calibration, seed + 1000)
    model = train(data.cache, data.all_labels, data.training_rows(fit), encoder, args, seed)
    p = predict(model, data.cache, calibration)
    threshold = protocol.best_threshold(p, data.labels[calibration], args.prior)
    return model, threshold, protocol.scores(p, data.labels[calibration], threshold, args.prior)


def cross_validate(data: Dataset, encoder: BertEncoder, args) -> dict:
    results = []
    for seed in args.seeds:
        for f, held in enumerate(protocol.stratified_folds(data.labels, args.cv, seed)):
            started = time.time()
            rows = np.setdiff1d(np.arange(data.n), held)
            model, threshold, _ = fit_and_calibrate(data, encoder, rows, args, seed * 100 + f)
            p = predict(model, data.cache, held)
            y = data.labels[held]
            result = {"seed": seed, "fold": f, "threshold": threshold,
                      "at_prior": protocol.scores(p, y, threshold, args.prior),
                      "at_prior_threshold_0.5": protocol.scores(p, y, 0.5, args.prior),
                      "as_is": protocol.scores(p, y, threshold),
                      "seconds": round(time.time() - started, 1)}
            results.append(result)
            print(f"seed {seed} fold {f}: threshold {threshold:.2f}  F1@{args.prior} {result['at_prior']['f1']:.3f}  "
                  f"F1 as-is {result['as_is']['f1']:.3f}  ({result['seconds']}s)", file=sys.stderr)
    summary = {}
    for key in ("at_prior", "at_prior_threshold_0.5", "as_is"):
        f1 = np.array([r[key]["f1"] for r in results])
        summary[key] = {"f1_mean": float(f1.mean()), "f1_std": float(f1.std(ddof=1)) if len(f1) > 1 else 0.0,
                        "precision_mean": float(np.mean([r[key]["precision"] for r in results])),
                        "recall_mean": float(np.mean([r[key]["recall"] for r in results]))}
    return {"folds": results, "summary": summary}


def settings(args) -> dict:
    keys = ("adapter_layers", "tune", "rank", "alpha", "epochs", "batch", "lr", "adapter_lr", "weight_decay", "hidden",
            "out_width", "dropout", "positive_weight", "rephrase_negatives", "calibration", "prior", "max_tokens")
    return {k: getattr(args, k) for k in keys}


def export(data: Dataset, encoder: BertEncoder, args) -> None:
    out = Path(args.out)
    (out / "heads").mkdir(parents=True, exist_ok=True)
    seed = args.seeds[0]
    model, threshold, calibration = fit_and_calibrate(data, encoder, np.arange(data.n), args, seed)
    head = {k: v.detach().float().contiguous() for k, v in model.head.state_dict().items()}
    save_file(head, str(out / "heads" / "sarcasm.safetensors"))
    (out / "heads" / "sarcasm.safetensors").chmod(0o644)  # save_file makes 0600; the daemon may run as another user
    entry = {"task": "sarcasm", "kind": "clfa", "weights": "heads/sarcasm.safetensors", "labels": LABELS,
             "thresholds": {"sarcastic": threshold},
             "config": {"attention_heads": 8, "layer_norm_eps": 1e-12, "text_length": args.max_tokens,
                        "no_image": "text_only"}}
    adapters = adapter_tensors(model.encoder)
    if adapters:
        save_file(adapters, str(out / "heads" / "sarcasm-adapter.safetensors"))
        (out / "heads" / "sarcasm-adapter.safetensors").chmod(0o644)
        entry["text_adapter"] = "heads/sarcasm-adapter.safetensors"
    (out / "head-entry.json").write_text(json.dumps(entry, indent=2) + "\n")
    if args.base_bundle:
        write_bundle(out, Path(args.base_bundle), [entry], name=out.name,
                     description=f"{Path(args.base_bundle).name} with a sarcasm head fine-tuned by tools/train/train_sarcasm.py (training.json)")
    record = {"data": {"path": str(Path(args.data).name), "sha256": hashlib.sha256(Path(args.data).read_bytes()).hexdigest(),
                       "posts": data.n, "sarcastic": int(data.labels.sum())},
              "seed": seed, "settings": settings(args), "threshold": threshold,
              "calibration_split": calibration, "torch": torch.__version__}
    if args.cv_record:
        record["cross_validation"] = json.loads(Path(args.cv_record).read_text())["summary"]
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"exported to {out}: threshold {threshold:.2f}, calibration F1@{args.prior} {calibration['f1']:.3f}", file=sys.stderr)


def predict_file(encoder: BertEncoder, tokenizer: PostTokenizer, args) -> None:
    """torch's probabilities for an exported head (and adapter) on a JSONL of posts: one line per post."""
    out = Path(args.out)
    entry = json.loads((out / "head-entry.json").read_text())
    head_weights = load_file(str(out / entry["weights"]))
    hidden, width = head_weights["mlp_text.fc1.weight"].shape
    head = TextOnlyCLFA(width, hidden, head_weights["mlp_text.fc2.weight"].shape[0], 0.0)
    head.load_state_dict(head_weights)
    model_encoder = copy.deepcopy(encoder)
    if "text_adapter" in entry:
        factors = load_file(str(out / entry["text_adapter"]))
        for name, b in factors.items():
            weight_name, part = name.rsplit(".", 1)
            if part == "lora_B":
                parameter = model_encoder.get_parameter(weight_name)
                with torch.no_grad():
                    parameter += b @ factors[weight_name + ".lora_A"]
    posts = [json.loads(line) for line in Path(args.predict).read_text().splitlines() if line.strip()]
    ids = tokenizer.ids([p.get("text") or "" for p in posts])
    with torch.no_grad():
        for post, seq in zip(posts, ids):
            mask = torch.ones(1, len(seq), dtype=torch.long)
            states = model_encoder(torch.tensor([seq]), mask)
            p = head(states, mask).softmax(-1)[0].tolist()
            print(json.dumps({"id": post.get("id"), "probabilities": p}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="CSV or JSONL of labelled posts")
    parser.add_argument("--text-column", default="tweet")
    parser.add_argument("--label-column", default="sarcastic")
    parser.add_argument("--rephrase-column", default="rephrase", help="non-sarcastic restatements of sarcastic posts")
    parser.add_argument("--rephrase-negatives", action="store_true", help="train on the rephrases as extra negatives")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N posts (quick runs and tests)")
    parser.add_argument("--encoder", default=str(ROOT / "models" / "all-MiniLM-L6-v2"))
    parser.add_argument("--max-tokens", type=int, default=77)
    parser.add_argument("--adapter-layers", type=int, default=2, help="top layers that get adapters (0: frozen encoder)")
    parser.add_argument("--tune", choices=("lora", "full"), default="lora",
                        help="how the top layers train: LoRA adapters (exportable), or every weight (for comparison only)")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=16.0)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3, help="the head's learning rate")
    parser.add_argument("--adapter-lr", type=float, default=5e-4)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--out-width", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--positive-weight", type=float, default=1.0, help="cross-entropy weight of the sarcastic class")
    parser.add_argument("--calibration", type=float, default=0.15, help="share of the training posts that picks the threshold")
    parser.add_argument("--prior", type=float, default=0.14, help="sarcastic share where the model is served")
    parser.add_argument("--cv", type=int, default=0, help="k-fold cross-validation instead of export")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (cross-validation repeats; export uses the first)")
    parser.add_argument("--cv-out", help="where --cv writes its record (JSON)")
    parser.add_argument("--cv-record", help="a --cv record to copy into training.json")
    parser.add_argument("--out", help="bundle output folder (export), or the exported folder (--predict)")
    parser.add_argument("--base-bundle", default=str(ROOT / "models" / "default"),
                        help="the bundle whose encoders and other heads the export keeps ('' for the head files only)")
    parser.add_argument("--predict", help="JSONL of posts: print torch's probabilities of the exported head in --out")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    encoder = BertEncoder.load(args.encoder)
    tokenizer = PostTokenizer(args.encoder, args.max_tokens)
    if args.predict:
        if not args.out:
            raise SystemExit("--predict needs --out, the exported bundle folder")
        predict_file(encoder, tokenizer, args)
        return
    data = Dataset(args, encoder, tokenizer)
    if args.cv:
        record = {"settings": settings(args), "seeds": args.seeds, "k": args.cv, **cross_validate(data, encoder, args)}
        print(json.dumps(record["summary"], indent=2))
        if args.cv_out:
            Path(args.cv_out).write_text(json.dumps(record, indent=2) + "\n")
    elif args.out:
        if args.tune == "full" and args.adapter_layers:
            raise SystemExit("--tune full is for comparisons only: the engine takes a fine-tuned encoder as LoRA adapters (--tune lora)")
        export(data, encoder, args)
    else:
        raise SystemExit("nothing to do: pass --cv K (evaluate) or --out DIR (train and export)")


if __name__ == "__main__":
    main()
