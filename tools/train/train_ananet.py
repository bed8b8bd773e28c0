"""Trains an AnANet correlation head (MODEL-SPEC.md, "Correlation head: AnANet") on a user's posts
and exports a bundle the engine serves.

Inputs as the engine computes them: the word features e_j = [GloVe(w_j) ; mean of the word's
piece states] over the engine's word spans (the base bundle's word vectors and frozen text
encoder), and the engine's own image region grids (`postclassd encode-image --regions-out`,
cached). The head (postclassd_train/ananet.py) is fit with AdamW on cross-entropy over its final
logits (the paper's auxiliary invariant and orthogonal losses are not used); the epoch with the best
validation macro-F1 is kept. Posts without an image are skipped: the engine labels them no_image.

Data: JSONL, one post a line: {"id", "text", "image": path (relative to the JSONL, or absolute),
"<label key>": label name}. Posts whose label is null are skipped.

Writes --out like train_clfa.py: manifest.json, components, heads/<task>.safetensors, training.json.

Example (the synthetic set of tools/train/make_synthetic.py):
  models/.venv-train/bin/python tools/train/train_ananet.py --data models/synthetic/train.jsonl \
      --label-key correlation --test models/synthetic/test.jsonl --out models/correlation-synthetic
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from postclassd_train.ananet import AnANetHead, AnANetShape, WordVectorTable  # noqa: E402
from postclassd_train.bundle import BaseBundle, export_bundle  # noqa: E402
from postclassd_train.data import DataError, read_posts  # noqa: E402
from postclassd_train.features import AnANetWords, ananet_logits, post_features  # noqa: E402
from postclassd_train.training import (common_arguments, fit, label_indices, make_deterministic,  # noqa: E402
                                       metrics, require_new_out, require_posts, split,
                                       training_record)
from train_clfa import write_predictions  # noqa: E402


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(parser, task="correlation", labels="irrelevant,implicit,explicit")
    a = parser.add_argument
    a("--width", type=int, default=256, help="d: width of V and T (the BiGRU has d/2 per direction); even")
    a("--projection", type=int, default=200, help="P: the association net's shared projection (the paper: 200)")
    a("--max-words", type=int, default=32, help="N_max: word slots of the alignment net; later words are dropped")
    a("--lambda", dest="lam", type=float, default=0.7, help="weight of the association logits (the paper: 0.7)")
    a("--eta", type=float, default=1.3, help="weight of the alignment logits (the paper: 1.3)")
    return parser.parse_args(argv)


def labelled_with_image(path: str, key: str):
    return [p for p in read_posts(path) if p.label(key) is not None and p.image is not None]


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    require_new_out("train_ananet", args.out)
    started = time.time()
    make_deterministic(args.seed)
    labels = args.labels.split(",")
    base = BaseBundle(args.base)
    vectors = base.component("word_vectors")
    if vectors is None or base.component("image_encoder") is None:
        raise SystemExit(f"train_ananet: {args.base} needs word_vectors and an image_encoder in its manifest")

    try:
        posts = labelled_with_image(args.data, args.label_key)
        if args.val:
            train_posts, val_posts = posts, labelled_with_image(args.val, args.label_key)
        else:
            train_posts, val_posts = split(posts, args.val_fraction, args.seed)
        test_posts = labelled_with_image(args.test, args.label_key) if args.test else []
        everything = train_posts + val_posts + test_posts
        features = post_features(everything, base, images=True, postclassd=args.postclassd, cache=args.cache)
    except DataError as error:
        raise SystemExit(f"train_ananet: {error}") from None
    require_posts("train_ananet", train_posts, val_posts, "labelled posts with an image")
    table = WordVectorTable(vectors)
    words = AnANetWords(features, table, args.max_words)
    n_train, n_val = len(train_posts), len(val_posts)
    offsets = {"train": 0, "val": n_train, "test": n_train + n_val}
    train_gold = torch.tensor(label_indices(train_posts, args.label_key, labels, args.data))
    val_gold = label_indices(val_posts, args.label_key, labels, args.val or args.data)

    grid = features.regions[0]
    shape = AnANetShape(region_width=grid.shape[1], region_count=grid.shape[0], word_width=words.width,
                        max_words=args.max_words, width=args.width, projection=args.projection, labels=len(labels),
                        lam=args.lam, eta=args.eta, dropout=args.dropout)
    head = AnANetHead(shape)
    print(f"train_ananet: {n_train} train, {n_val} validation, {len(test_posts)} test posts with images; "
          f"{sum(p.numel() for p in head.parameters())} parameters", file=sys.stderr)

    def run(model, indices, part):
        return ananet_logits(model, features, words, [offsets[part] + i for i in indices])

    result = fit(head, n_train, run, train_gold, n_val, val_gold, labels, args.epochs, args.lr, args.weight_decay,
                 args.batch_size, args.seed, log=lambda line: print(line, file=sys.stderr))
    held_out = {}
    with torch.no_grad():
        for name, part, part_posts, source in (("validation", "val", val_posts, args.val or args.data),
                                               ("test", "test", test_posts, args.test or "")):
            if part_posts:
                predicted = run(head, list(range(len(part_posts))), part).argmax(-1).tolist()
                held_out[name] = metrics(predicted, label_indices(part_posts, args.label_key, labels, source), labels)
    record = training_record("tools/train/train_ananet.py", "ananet", args, labels,
                             {"train": n_train, "validation": n_val, "test": len(test_posts)}, head.settings(), result,
                             held_out, base.manifest, started)
    out = export_bundle(args.out, base, args.task, "ananet", head, labels, head.manifest_config(),
                        f"AnANet (d {shape.width}, P {shape.projection}, N_max {shape.max_words}, K {shape.region_count}) "
                        f"trained on {Path(args.data).name}", record,
                        only_head={"text_encoder", "image_encoder", "word_vectors"} if args.only_this_head else None)
    print(json.dumps({"out": str(out), "best_epoch": result.best_epoch, "held_out":
                      {k: {"accuracy": v["accuracy"], "macro_f1": v["macro_f1"]} for k, v in held_out.items()}}))
    if args.predict:
        write_predictions(out, args)


if __name__ == "__main__":
    main()
