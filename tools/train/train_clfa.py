"""Trains a full CLFA head (MODEL-SPEC.md, "Sarcasm head: CLFA") on a user's posts and exports a
bundle the engine serves.

The text encoder (the base bundle's, e.g. all-MiniLM-L6-v2) is frozen: its token states are
computed once. Image tokens are the engine's own region grids (`postclassd encode-image
--regions-out`, cached). The head (postclassd_train/clfa.py) is trained with AdamW on
cross-entropy; the epoch with the best validation macro-F1 is kept.

Data: JSONL, one post a line: {"id", "text", "image": path (relative to the JSONL, or absolute;
optional), "<label key>": label name}. Posts whose label is null are skipped.

Writes --out: manifest.json (the base's, with this head), the base's components (linked or copied),
heads/<task>.safetensors, training.json (data sha256, seed, settings, per-epoch metrics, held-out
metrics, torch version), and with --predict the head's probabilities for another JSONL.

Example (the synthetic set of tools/train/make_synthetic.py):
  models/.venv-train/bin/python tools/train/train_clfa.py --data models/synthetic/train.jsonl \
      --label-key sarcasm --test models/synthetic/test.jsonl --out models/sarcasm-synthetic
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from postclassd_train.bundle import BaseBundle, export_bundle  # noqa: E402
from postclassd_train.clfa import CLFAHead, CLFAShape  # noqa: E402
from postclassd_train.data import DataError, read_posts  # noqa: E402
from postclassd_train.features import (clfa_logits, post_features, predict,  # noqa: E402
                                       write_daemon_posts)
from postclassd_train.training import (common_arguments, fit, label_indices, make_deterministic,  # noqa: E402
                                       metrics, require_new_out, require_posts, split,
                                       training_record)


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(parser, task="sarcasm", labels="not_sarcastic,sarcastic")
    a = parser.add_argument
    a("--hidden", type=int, default=256, help="h: width of mapped tokens and attention (the paper: 512)")
    a("--mapping-hidden", type=int, default=512, help="width inside the mapping nets (the paper: 1536)")
    a("--layers", type=int, default=2, help="attention_net layers (the paper: 3; 0 = mapping net, pooling, classifier)")
    a("--heads", type=int, default=8, help="attention heads")
    a("--inner", type=int, default=512, help="feed-forward width (the paper: 2048)")
    a("--no-self-attention", action="store_true", help="layers without textSelfAttn")
    a("--text-only", action="store_true", help="no image branch: the head reads text only")
    a("--no-image", choices=["learned_token", "text_only"], default="learned_token",
      help="posts without an image: attend to a learned token, or skip image cross-attention")
    a("--no-image-tokens", type=int, default=1, help="rows of the learned no-image token")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    require_new_out("train_clfa", args.out)
    started = time.time()
    make_deterministic(args.seed)
    labels = args.labels.split(",")
    base = BaseBundle(args.base)
    use_images = not args.text_only

    try:
        posts = [p for p in read_posts(args.data) if p.label(args.label_key) is not None]
        if args.val:
            train_posts = posts
            val_posts = [p for p in read_posts(args.val) if p.label(args.label_key) is not None]
        else:
            train_posts, val_posts = split(posts, args.val_fraction, args.seed)
        test_posts = [p for p in read_posts(args.test) if p.label(args.label_key) is not None] if args.test else []
        everything = train_posts + val_posts + test_posts
        features = post_features(everything, base, images=use_images, postclassd=args.postclassd, cache=args.cache)
    except DataError as error:
        raise SystemExit(f"train_clfa: {error}") from None
    require_posts("train_clfa", train_posts, val_posts)
    n_train, n_val = len(train_posts), len(val_posts)
    train = features.subset(list(range(n_train)))
    val = features.subset(list(range(n_train, n_train + n_val)))
    test = features.subset(list(range(n_train + n_val, len(everything))))
    train_gold = torch.tensor(label_indices(train_posts, args.label_key, labels, args.data))
    val_gold = label_indices(val_posts, args.label_key, labels, args.val or args.data)

    image_width = None
    if use_images:
        grid = next((r for r in features.regions if r is not None), None)
        if grid is None:
            raise SystemExit("train_clfa: no post has an image; pass --text-only for a text-only head")
        image_width = grid.shape[1]
    shape = CLFAShape(text_width=train.text.states[0].shape[1], image_width=image_width, hidden=args.hidden,
                      mapping_hidden=args.mapping_hidden, layers=args.layers,
                      text_self_attention=not args.no_self_attention, inner=args.inner, attention_heads=args.heads,
                      labels=len(labels), no_image=args.no_image if use_images else "text_only",
                      no_image_tokens=args.no_image_tokens, dropout=args.dropout)
    head = CLFAHead(shape)
    print(f"train_clfa: {n_train} train, {n_val} validation, {len(test_posts)} test posts; "
          f"{sum(p.numel() for p in head.parameters())} parameters", file=sys.stderr)
    sets = {"train": train, "val": val}
    result = fit(head, n_train, lambda m, idx, s: clfa_logits(m, sets[s], idx), train_gold, n_val, val_gold, labels,
                 args.epochs, args.lr, args.weight_decay, args.batch_size, args.seed,
                 log=lambda line: print(line, file=sys.stderr))

    held_out = {}
    with torch.no_grad():
        for name, part, gold in (("validation", val, val_gold),
                                 ("test", test, label_indices(test_posts, args.label_key, labels, args.test or ""))):
            if not part.posts:
                continue
            predicted = clfa_logits(head, part, list(range(len(part.posts)))).argmax(-1).tolist()
            held_out[name] = metrics(predicted, gold, labels)
    config = head.manifest_config(text_length=base.max_tokens)
    parts = f"{shape.layers} layer(s)" + ("" if use_images else ", text only")
    record = training_record("tools/train/train_clfa.py", "clfa", args, labels,
                             {"train": n_train, "validation": n_val, "test": len(test_posts)}, head.settings(), result,
                             held_out, base.manifest, started)
    out = export_bundle(args.out, base, args.task, "clfa", head, labels, config,
                        f"CLFA ({parts}, hidden {shape.hidden}) trained on {Path(args.data).name}", record,
                        only_head=({"text_encoder", "image_encoder"} if use_images else {"text_encoder"})
                        if args.only_this_head else None)
    print(json.dumps({"out": str(out), "best_epoch": result.best_epoch, "held_out":
                      {k: {"accuracy": v["accuracy"], "macro_f1": v["macro_f1"]} for k, v in held_out.items()}}))
    if args.predict:
        write_predictions(out, args)


def write_predictions(bundle: Path, args: argparse.Namespace) -> None:
    """--predict: the exported bundle's heads in torch over another JSONL (and its daemon-schema posts)."""
    try:
        posts = read_posts(args.predict)
        lines = predict(bundle, posts, postclassd=args.postclassd, cache=args.cache)
    except DataError as error:
        raise SystemExit(f"--predict: {error}") from None
    target = Path(args.predictions_out or bundle / "predictions.jsonl")
    target.write_text("".join(json.dumps(line) + "\n" for line in lines))
    if args.posts_out:
        write_daemon_posts(posts, args.posts_out)


if __name__ == "__main__":
    main()
