"""Writes a bundle's trained heads' probabilities (torch, float32) for the posts of a JSONL, and
optionally those posts in the daemon's input schema: the two sides of a training-to-serving
parity check (`postclassd classify POSTS --model BUNDLE` must give the same probabilities).

Output, one line per post in input order: {"id", "labels": {task: {"label", "probabilities":
{label: p}}}}; an AnANet head gives a post without an image {"label": "no_image"}. Only the
bundle's clfa and ananet heads are run.

Run: models/.venv-train/bin/python tools/train/predict.py --bundle DIR --data posts.jsonl \
         --out predictions.jsonl [--posts-out daemon-posts.jsonl]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from postclassd_train.data import DEFAULT_CACHE, DataError, read_posts  # noqa: E402
from postclassd_train.features import predict, write_daemon_posts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--data", required=True, help="posts, JSONL as the trainers read them")
    parser.add_argument("--out", required=True)
    parser.add_argument("--posts-out", help="also write the posts in the daemon's input schema (base64 JPEG)")
    parser.add_argument("--postclassd", help="the binary that encodes images (default: $POSTCLASSD_BIN or .build/*/postclassd)")
    parser.add_argument("--cache", default=str(DEFAULT_CACHE))
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        posts = read_posts(args.data)
        lines = predict(args.bundle, posts, postclassd=args.postclassd, cache=args.cache)
    except DataError as error:
        raise SystemExit(f"predict: {error}") from None
    Path(args.out).write_text("".join(json.dumps(line) + "\n" for line in lines))
    if args.posts_out:
        write_daemon_posts(posts, args.posts_out)


if __name__ == "__main__":
    main()
