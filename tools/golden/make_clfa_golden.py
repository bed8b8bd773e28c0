"""Builds the small random-weight CLFA heads and their expected outputs (committed).

Writes three heads under Tests/ModelTests/Fixtures/clfa/, each a folder with
  config.json          the head's config (attention_heads, layer_norm_eps, text_length, no_image),
  model.safetensors    the weights under the authors' names (F16, or F32 for the tiny one),
  inputs.safetensors   `text` [B, L, d_t] and `image` [B, K, d_i] (F32; padding rows and the
                       image rows of posts without an image hold random values the head must ignore),
  expected.json        the posts' valid lengths and has_image flags, and the stage names,
  expected.safetensors per post b: p{b}.{stage} for the stages text, image (when the post uses
                       image tokens), layer.{i}, pooled, logits, probabilities of
                       tools/reference/clfa_reference.py, float32, valid rows only (the
                       reference's per-sub-layer stages are left out to keep the fixture small).

Heads:
  full            3 layers with every sub-layer, learned no-image token (3 tokens), hidden 64
                  (mapping nets d -> 96 -> 64), FFN 64 -> 128 -> 64, 4 heads of 16, d_t 32, d_i 24, K 5
  text-only-rule  2 layers, layer 1 without textSelfAttn, no_image "text_only", hidden 32, 2 heads,
                  d_t 20, d_i 12, K 4, 3 labels
  text-only-head  0 layers, no mlp_image (mapping net + pooling + classifier), config with defaults

The reference runs on the stored (rounded) weights, so expected values match what the head loads.
Run: models/.venv/bin/python tools/golden/make_clfa_golden.py   (seed fixed: same output every run)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "reference"))
import clfa_reference  # noqa: E402

SEED = 20261207
TEXT_LENGTH = 16  # the fixtures' padded length L (real heads: 77)
# Posts: (valid text tokens, has image). One short with an image, one at full length without, one
# at full length with, and one in between without.
POSTS = [(3, True), (TEXT_LENGTH, False), (7, False), (TEXT_LENGTH, True)]

HEADS = {
    "full": dict(d_t=32, d_i=24, mapping_hidden=96, hidden=64, inner=128, heads=4, labels=2, k=5,
                 layers=[("textSelfAttn", "imageCrossAttn", "ffn")] * 3, no_image="learned_token",
                 no_image_tokens=3, dtype=np.float16),
    "text-only-rule": dict(d_t=20, d_i=12, mapping_hidden=40, hidden=32, inner=48, heads=2, labels=3, k=4,
                           layers=[("textSelfAttn", "imageCrossAttn", "ffn"), ("imageCrossAttn", "ffn")],
                           no_image="text_only", no_image_tokens=0, dtype=np.float16),
    "text-only-head": dict(d_t=32, d_i=None, mapping_hidden=48, hidden=24, inner=None, heads=None, labels=2,
                           k=5, layers=[], no_image=None, no_image_tokens=0, dtype=np.float32),
}


def make_weights(rng: np.random.Generator, spec: dict) -> dict[str, np.ndarray]:
    dtype = spec["dtype"]
    w: dict[str, np.ndarray] = {}

    def linear(name: str, out: int, inp: int) -> None:
        w[name + ".weight"] = (rng.standard_normal((out, inp)) * 1.5 / np.sqrt(inp)).astype(dtype)
        w[name + ".bias"] = (rng.standard_normal(out) * 0.1).astype(dtype)

    def norm(name: str, width: int) -> None:
        w[name + ".weight"] = (1 + rng.standard_normal(width) * 0.1).astype(dtype)
        w[name + ".bias"] = (rng.standard_normal(width) * 0.1).astype(dtype)

    h = spec["hidden"]
    linear("mlp_text.fc1", spec["mapping_hidden"], spec["d_t"])
    linear("mlp_text.fc2", h, spec["mapping_hidden"])
    if spec["d_i"] is not None:
        linear("mlp_image.fc1", spec["mapping_hidden"], spec["d_i"])
        linear("mlp_image.fc2", h, spec["mapping_hidden"])
    if spec["no_image_tokens"]:
        w["no_image_token"] = rng.standard_normal((spec["no_image_tokens"], spec["d_i"])).astype(dtype)
    for i, parts in enumerate(spec["layers"]):
        p = f"attention_net.layer.{i}."
        for sub in ("textSelfAttn", "imageCrossAttn"):
            if sub in parts:
                for proj in ("query", "key", "value"):
                    linear(p + sub + ".bertCoAttn." + proj, h, h)
                linear(p + sub + ".output.dense", h, h)
                norm(p + sub + ".output.LayerNorm", h)
        if "ffn" in parts:
            linear(p + "intermediate.dense", spec["inner"], h)
            linear(p + "output.dense", h, spec["inner"])
            norm(p + "output.LayerNorm", h)
    linear("classifier", spec["labels"], h)
    # The classifier above gives logits of a few units; scale it down so the probabilities are not
    # all 0 or 1 and a wrong stage would show in them too.
    w["classifier.weight"] = (w["classifier.weight"].astype(np.float64) * 0.3).astype(dtype)
    return w


def write_head(out: Path, name: str, spec: dict, rng: np.random.Generator) -> None:
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    config = {"text_length": TEXT_LENGTH}
    if spec["heads"] is not None:
        config.update({"attention_heads": spec["heads"], "layer_norm_eps": 1e-12})
    if spec["no_image"] is not None:
        config["no_image"] = spec["no_image"]
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file(make_weights(rng, spec), str(folder / "model.safetensors"))

    batch, k = len(POSTS), spec["k"]
    text = rng.standard_normal((batch, TEXT_LENGTH, spec["d_t"])).astype(np.float32)
    image = rng.standard_normal((batch, k, spec["d_i"] or 8)).astype(np.float32)
    save_file({"text": text, "image": image}, str(folder / "inputs.safetensors"))

    weights, cfg = clfa_reference.load_head(folder)  # the stored, rounded weights
    expected, stage_names = {}, []
    for b, (n, has_image) in enumerate(POSTS):
        stages = clfa_reference.forward(weights, cfg, text[b, :n], image[b] if has_image else None)
        stages = {s: v for s, v in stages.items() if s.count(".") < 2}  # no per-sub-layer stages
        stage_names.append(sorted(stages))
        for stage, value in stages.items():
            expected[f"p{b}.{stage}"] = value.astype(np.float32)
    save_file(expected, str(folder / "expected.safetensors"))
    meta = {"lengths": [n for n, _ in POSTS], "has_image": [h for _, h in POSTS],
            "layers": clfa_reference.layer_count(weights), "labels": spec["labels"], "stages": stage_names}
    (folder / "expected.json").write_text(json.dumps(meta, indent=1) + "\n")
    for path in folder.iterdir():
        path.chmod(0o644)  # save_file creates files 0600; keep the committed modes ordinary
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"wrote {folder}: {meta['layers']} layers, {len(weights)} tensors, {size // 1024} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "Tests" / "ModelTests" / "Fixtures" / "clfa"))
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    for name, spec in HEADS.items():
        write_head(Path(args.out), name, spec, rng)


if __name__ == "__main__":
    main()
