"""Checks postclassd_train/ananet.py (batched, padded words, packed BiGRU, torch) against
tools/reference/ananet_reference.py (one post at a time, numpy float64), the yardstick the Swift
engine is golden-tested against.

Cases: the committed golden fixture (Tests/ModelTests/Fixtures/ananet: its head, GloVe table,
5 posts with 0 words, GloVe misses, exactly N_max and more than N_max words), word features
included; and heads built by ananet.py itself (so its parameter names are the ones the reference
reads) on random batches whose word counts run from 0 to N_max. Passes when every post's logits
and probabilities agree within 1e-5 in float64 and 1e-4 in float32, and the word features within
1e-6.

Run: models/.venv-train/bin/python tools/train/check_ananet.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "reference"))
sys.path.insert(0, str(ROOT / "tools" / "train"))
import ananet_reference  # noqa: E402
from postclassd_train.ananet import AnANetHead, AnANetShape, WordVectorTable, pad_words, word_features  # noqa: E402

TOLERANCE = {torch.float64: 1e-5, torch.float32: 1e-4}


def compare(name: str, weights: dict[str, np.ndarray], config: dict, regions: np.ndarray,
            words: list[np.ndarray]) -> None:
    expected = []
    for b, e in enumerate(words):
        stages = ananet_reference.forward(weights, config, regions[b], e)
        expected.append(np.concatenate([stages["logits"], stages["probabilities"]]))
    expected = np.array(expected)
    head = AnANetHead.from_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in weights.items()}, config)
    for dtype in (torch.float64, torch.float32):
        model = head.to(dtype).eval()
        padded, counts = pad_words([torch.from_numpy(e).to(dtype) for e in words], words[0].shape[1])
        with torch.no_grad():
            logits = model(torch.from_numpy(regions).to(dtype), padded, counts)
        got = torch.cat([logits, logits.softmax(-1)], dim=1).double().numpy()
        diff = float(np.abs(got - expected).max())
        print(f"{name:36s} {str(dtype):14s} max |diff| {diff:.2e}")
        if not diff <= TOLERANCE[dtype]:
            raise SystemExit(f"{name}: {dtype} differs from the reference by {diff:.2e} > {TOLERANCE[dtype]}")


def fixture_case() -> None:
    folder = ROOT / "Tests" / "ModelTests" / "Fixtures" / "ananet"
    weights = load_file(str(folder / "model.safetensors"))
    config = json.loads((folder / "config.json").read_text())
    inputs = json.loads((folder / "inputs.json").read_text())
    tensors = load_file(str(folder / "inputs.safetensors"))
    expected = load_file(str(folder / "expected.safetensors"))
    table = WordVectorTable(folder / "glove")
    words = []
    for b, post in enumerate(inputs["posts"]):
        states = torch.from_numpy(tensors[f"p{b}.token_states"].astype(np.float64))
        spans = [tuple(w) for w in post["words"]]
        e = word_features(spans, states, table, inputs["max_words"]).numpy()
        diff = float(np.abs(e - expected[f"p{b}.e"]).max()) if e.size else 0.0
        if not diff <= 1e-6:
            raise SystemExit(f"fixture post {b}: word features differ by {diff:.2e}")
        words.append(e)
    print(f"fixture word features agree (posts with {[len(w) for w in words]} words)")
    compare("fixture", weights, config, tensors["regions"].astype(np.float64), words)


def own_cases() -> None:
    rng = np.random.default_rng(1)
    shape = AnANetShape(region_width=6, region_count=4, word_width=7, max_words=5, width=8, projection=3, labels=3)
    torch.manual_seed(0)
    head = AnANetHead(shape)
    with torch.no_grad():
        for p in head.parameters():
            p.copy_(torch.randn_like(p) * 0.7)
    weights = {k: v.numpy().astype(np.float64) for k, v in head.state_dict().items()}
    config = head.manifest_config()
    regions = rng.standard_normal((6, 4, 6))
    for counts in ([0, 1, 5, 3, 2, 5], [5] * 6, [3, 0, 0, 1, 2, 4]):
        words = [rng.standard_normal((n, 7)) for n in counts]
        compare(f"own head, words {counts}", weights, config, regions, words)


def main() -> None:
    torch.set_num_threads(1)
    fixture_case()
    own_cases()
    print("ananet.py agrees with ananet_reference.py")


if __name__ == "__main__":
    main()
