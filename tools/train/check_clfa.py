"""Checks postclassd_train/clfa.py (batched, padded, torch) against tools/reference/clfa_reference.py
(one post at a time, numpy float64), the yardstick the Swift engine is golden-tested against.

Heads checked: the three committed golden fixtures (Tests/ModelTests/Fixtures/clfa: every sub-layer
with a learned no-image token; the text-only rule with a layer lacking textSelfAttn; a 0-layer
text-only head) on their padded inputs, and heads built by clfa.py itself (so its own parameter
names are the ones the reference reads) on random batches with and without images, all or none.
Passes when every post's probabilities and logits agree within 1e-5 in float64 and 1e-4 in float32.

Run: models/.venv-train/bin/python tools/train/check_clfa.py
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
import clfa_reference  # noqa: E402
from postclassd_train.clfa import CLFAHead, CLFAShape  # noqa: E402

TOLERANCE = {torch.float64: 1e-5, torch.float32: 1e-4}


def compare(name: str, weights: dict[str, np.ndarray], config: dict, text: np.ndarray, lengths: list[int],
            image: np.ndarray | None, has_image: list[bool]) -> float:
    """Largest difference over logits and probabilities of every post, both dtypes; fails past the tolerance."""
    ref_config = dict(clfa_reference.DEFAULT_CONFIG, **config)
    expected = []
    for b, n in enumerate(lengths):
        stages = clfa_reference.forward(weights, ref_config, text[b, :n], image[b] if has_image[b] else None)
        expected.append(np.concatenate([stages["logits"], stages["probabilities"]]))
    expected = np.array(expected)
    head = CLFAHead.from_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in weights.items()}, config)
    worst = 0.0
    for dtype in (torch.float64, torch.float32):
        model = head.to(dtype).eval()
        mask = (torch.arange(text.shape[1])[None, :] < torch.tensor(lengths)[:, None]).to(dtype)
        with torch.no_grad():
            logits = model(torch.from_numpy(text).to(dtype), mask,
                           None if image is None else torch.from_numpy(image).to(dtype), torch.tensor(has_image))
        got = torch.cat([logits, logits.softmax(-1)], dim=1).double().numpy()
        diff = float(np.abs(got - expected).max())
        print(f"{name:40s} {str(dtype):14s} max |diff| {diff:.2e}")
        if not diff <= TOLERANCE[dtype]:
            raise SystemExit(f"{name}: {dtype} differs from the reference by {diff:.2e} > {TOLERANCE[dtype]}")
        worst = max(worst, diff)
    return worst


def fixture_cases() -> None:
    for name in ("full", "text-only-rule", "text-only-head"):
        folder = ROOT / "Tests" / "ModelTests" / "Fixtures" / "clfa" / name
        weights = load_file(str(folder / "model.safetensors"))
        config = json.loads((folder / "config.json").read_text())
        inputs = load_file(str(folder / "inputs.safetensors"))
        expected = json.loads((folder / "expected.json").read_text())
        compare(f"fixture {name}", weights, config, inputs["text"].astype(np.float64), expected["lengths"],
                inputs["image"].astype(np.float64), expected["has_image"])


def random_head(shape: CLFAShape, seed: int) -> dict[str, np.ndarray]:
    """A head built by clfa.py with every parameter redrawn (LayerNorm affine included), as numpy."""
    torch.manual_seed(seed)
    head = CLFAHead(shape)
    with torch.no_grad():
        for name, p in head.named_parameters():
            scale = 1.0 / np.sqrt(p.shape[-1]) if p.dim() == 2 else 0.1
            p.copy_(torch.randn_like(p) * scale * (1.5 if p.dim() == 2 else 1.0) + (1.0 if "LayerNorm.weight" in name else 0.0))
    return {k: v.numpy().astype(np.float64) for k, v in head.state_dict().items()}


def own_cases() -> None:
    rng = np.random.default_rng(0)
    shapes = {
        "learned token, 2 layers": CLFAShape(text_width=12, image_width=10, hidden=16, mapping_hidden=20, layers=2,
                                             inner=24, attention_heads=4, no_image_tokens=3),
        "text_only rule, no self-attn in layer 1": CLFAShape(text_width=12, image_width=10, hidden=16, mapping_hidden=20,
                                                             layers=2, text_self_attention=[True, False], inner=24,
                                                             attention_heads=2, labels=3, no_image="text_only"),
        "text-only head, 1 layer": CLFAShape(text_width=12, hidden=16, mapping_hidden=20, layers=1, inner=24,
                                             attention_heads=4),
    }
    for i, (name, shape) in enumerate(shapes.items()):
        weights = random_head(shape, seed=i)
        config = {"attention_heads": shape.attention_heads, "no_image": shape.no_image}
        b, length, k = 5, 9, 7
        text = rng.standard_normal((b, length, shape.text_width))
        image = rng.standard_normal((b, k, 10))
        lengths = [2, 9, 5, 3, 9]
        for pattern in ([True, False, True, False, False], [True] * b, [False] * b):
            compare(f"{name} {''.join('I' if x else '-' for x in pattern)}", weights, config, text, lengths,
                    image, pattern)
        compare(f"{name} image=None", weights, config, text, lengths, None, [False] * b)


def main() -> None:
    torch.set_num_threads(1)
    fixture_cases()
    own_cases()
    print("clfa.py agrees with clfa_reference.py")


if __name__ == "__main__":
    main()
