"""Builds the tiny model bundle fixture, its posts and the bundle reference's expected labels (committed).

Writes Tests/ModelTests/Fixtures/tiny-bundle/:
  manifest.json        format 1: text encoder (max_tokens 24), image encoder, GloVe, two heads
  text-encoder/        the tiny-bert fixture's config.json, vocab.txt, model.safetensors (copied)
  image-encoder/       the tiny-vit fixture's config.json, preprocessor_config.json, model.safetensors
                       (copied): 32x32 input, 17 tokens (CLS + 16 patches) of width 32, so K = 17
  glove/               a 16-word, 8-dim table in tools/convert_glove.py's format; many of the posts'
                       words are missing from it
  heads/sarcasm.safetensors      CLFA (F16): mapping nets 32 -> 48 -> 32 for text and image (the
                       ViT's width), 2 layers with textSelfAttn, imageCrossAttn and a feed-forward
                       (32 -> 64 -> 32), 4 attention heads, a learned no-image token of 2 rows, 2 labels
  heads/correlation.safetensors  AnANet (F32): d 16, words 8 + 32, K 17 regions of width 32,
                       N_max 10, P 24, 3 labels; config region_count 17, lambda 0.7, eta 1.3
  posts.jsonl          14 posts in the daemon's input schema {"id", "text", "image": base64 JPEG}:
                       with and without images (JPEGs made here: 7x5 to 300x260, wide, tall, grey,
                       progressive, 4:4:4; the big ones decode at a DCT scale), empty, short and
                       long texts (two longer than max_tokens, one cutting a word), words missing
                       from the GloVe table, and one post whose image is not a JPEG
  expected.jsonl       per post, in order: {"id", "labels": {task: {"label", "probabilities":
                       {label: p}, "margin"}}} from tools/reference/bundle_reference.py (a post
                       without an image gets correlation "no_image" with no probabilities), or
                       {"id", "error": "undecodable_image"}

Label robustness. The Swift engine decodes JPEGs with the system libjpeg(-turbo) and the reference
with Pillow's bundled one, which can differ by a level here and there, and computes in float32
where the reference uses float64. So the labels are made hard to flip:
  * an image post whose correlation head puts "irrelevant" and "implicit" (the labels decided by
    argmax) within MIN_MARGIN = 0.02 of each other gets a new random picture (up to 20 tries);
  * each head's threshold ("sarcastic", "explicit") is put in the middle of the widest gap between
    the posts' probabilities of that label within their middle range, so both outcomes occur and
    no post lies near the threshold;
  * the script fails if any decision (threshold or argmax) is closer than MIN_MARGIN; the margin of
    every post is written to expected.jsonl.

Run: models/.venv/bin/python tools/golden/make_tiny_bundle.py   (seed fixed: same output every run,
given the pinned Pillow of tools/images/requirements.txt)
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "ModelTests" / "Fixtures"
sys.path.insert(0, str(ROOT / "tools" / "reference"))
import ananet_reference  # noqa: E402
import bundle_reference  # noqa: E402

SEED = 4  # the first of 1, 2, ... under which every label wins somewhere and every margin holds
MIN_MARGIN = 0.02
MAX_TOKENS = 24
TEXT_WIDTH, IMAGE_WIDTH, REGIONS = 32, 32, 17           # the tiny-bert and tiny-vit fixtures
CLFA = dict(mapping_hidden=48, hidden=32, inner=64, heads=4, layers=2, no_image_tokens=2, labels=2)
ANANET = dict(d=16, glove=8, max_words=10, proj=24, labels=3)
SARCASM_LABELS = ["not_sarcastic", "sarcastic"]
CORRELATION_LABELS = ["irrelevant", "implicit", "explicit"]

# Missing on purpose (words of the posts): mat, world, sarcasm, great, naive, cafe, monday, love,
# fun, oh, weather, lovely, ... and every emoji or accented original.
GLOVE_WORDS = ["the", "cat", "sat", "on", "hello", ",", ".", "!", "is", "not", "said", "dog", "you", "a",
               "sun", "zebra"]

# (id, text, image spec or None). Image specs: (width, height, options) for make_jpeg.
LONG = ("the cat sat on the mat and the dog sat on the cat , hello world , not fun at all , said you "
        "to the dog on the mat again")
POSTS = [
    ("p01", "The cat sat on the mat.", (32, 32, {})),
    ("p02", "hello world", None),
    ("p03", "", (48, 20, {})),
    ("p04", LONG, (20, 60, {})),
    ("p05", "Oh great, another Monday. Sarcasm is fun!", None),
    ("p06", "naïve café 🙂 you said the dog is not fun", (7, 5, {})),
    ("p07", "sun", (100, 70, {})),
    ("p08", "hello hello hello, the dog sat on a zebra", (300, 260, {})),
    ("p09", LONG + " and on and on", None),
    ("p10", "the weather is lovely today", (40, 40, {"grey": True})),
    ("p11", "not sarcasm at all, said the cat", (64, 48, {"progressive": True})),
    ("p12", "dog", (130, 64, {"subsampling": 0})),
    ("p13", "this image is broken", "broken"),
    ("p14", "great", None),
]
BROKEN = {post_id for post_id, _, spec in POSTS if spec == "broken"}


# ----------------------------------------------------------------------------------- the weights
def clfa_weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    w: dict[str, np.ndarray] = {}

    def linear(name, out, inp, scale=1.5):
        w[name + ".weight"] = (rng.standard_normal((out, inp)) * scale / np.sqrt(inp)).astype(np.float16)
        w[name + ".bias"] = (rng.standard_normal(out) * 0.1).astype(np.float16)

    def norm(name, width):
        w[name + ".weight"] = (1 + rng.standard_normal(width) * 0.1).astype(np.float16)
        w[name + ".bias"] = (rng.standard_normal(width) * 0.1).astype(np.float16)

    h, m = CLFA["hidden"], CLFA["mapping_hidden"]
    linear("mlp_text.fc1", m, TEXT_WIDTH)
    linear("mlp_text.fc2", h, m)
    linear("mlp_image.fc1", m, IMAGE_WIDTH)
    linear("mlp_image.fc2", h, m)
    w["no_image_token"] = rng.standard_normal((CLFA["no_image_tokens"], IMAGE_WIDTH)).astype(np.float16)
    for i in range(CLFA["layers"]):
        p = f"attention_net.layer.{i}."
        for sub in ("textSelfAttn", "imageCrossAttn"):
            for proj in ("query", "key", "value"):
                linear(p + sub + ".bertCoAttn." + proj, h, h)
            linear(p + sub + ".output.dense", h, h)
            norm(p + sub + ".output.LayerNorm", h)
        linear(p + "intermediate.dense", CLFA["inner"], h)
        linear(p + "output.dense", h, CLFA["inner"])
        norm(p + "output.LayerNorm", h)
    # Logits of a few units: probabilities spread over (0, 1) rather than piled at 0 and 1.
    linear("classifier", CLFA["labels"], h, scale=2.0)
    return w


def ananet_weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    d, labels, proj = ANANET["d"], ANANET["labels"], ANANET["proj"]
    width, h = ANANET["glove"] + TEXT_WIDTH, ANANET["d"] // 2

    def normal(*shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    w = {
        "region_proj.weight": normal(d, IMAGE_WIDTH, std=1 / np.sqrt(IMAGE_WIDTH)),
        "region_proj.bias": normal(d, std=0.1),
        "association.proj.weight": normal(proj, d, std=1 / np.sqrt(d)),
        "association.classifier.weight": normal(labels, 2 * proj, std=2 / np.sqrt(2 * proj)),
        "association.classifier.bias": normal(labels, std=0.1),
        "alignment.classifier.weight": normal(labels, ANANET["max_words"] + REGIONS, std=0.5),
        "alignment.classifier.bias": normal(labels, std=0.1),
    }
    for suffix in ["", "_reverse"]:
        bound = 1 / np.sqrt(h)  # torch.nn.GRU's own init
        w["gru.weight_ih_l0" + suffix] = rng.uniform(-bound, bound, (3 * h, width)).astype(np.float32)
        w["gru.weight_hh_l0" + suffix] = rng.uniform(-bound, bound, (3 * h, h)).astype(np.float32)
        w["gru.bias_ih_l0" + suffix] = rng.uniform(-bound, bound, 3 * h).astype(np.float32)
        w["gru.bias_hh_l0" + suffix] = rng.uniform(-bound, bound, 3 * h).astype(np.float32)
    return w


# ------------------------------------------------------------------------------------- the images
def make_jpeg(rng: np.random.Generator, width: int, height: int, options: dict) -> bytes:
    """A smooth random picture (a colour gradient and a few soft discs), JPEG-encoded by Pillow."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / max(width - 1, 1), y / max(height - 1, 1)
    base = rng.uniform(40, 215, 3)
    slope = rng.uniform(-80, 80, (2, 3))
    img = base + u[..., None] * slope[0] + v[..., None] * slope[1]
    for _ in range(3):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.15, 0.5)
        blob = np.exp(-((u - cx) ** 2 + (v - cy) ** 2) / (r * r))
        img += blob[..., None] * rng.uniform(-90, 90, 3)
    picture = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    if options.get("grey"):
        picture = picture.convert("L")
    out = io.BytesIO()
    save = {"quality": 85, "progressive": bool(options.get("progressive"))}
    if "subsampling" in options:
        save["subsampling"] = options["subsampling"]
    picture.save(out, "JPEG", **save)
    return out.getvalue()


# ---------------------------------------------------------------------------------------- helpers
def widest_gap_threshold(values: list[float]) -> float:
    """The middle of the widest gap between sorted values, among gaps that leave at least a
    quarter of the values (at least one) on each side."""
    s = sorted(values)
    lo = max(1, len(s) // 4)
    best = max(range(lo, len(s) - lo + 1), key=lambda i: s[i] - s[i - 1])
    return round((s[best - 1] + s[best]) / 2, 4)


def cuts_a_word(bundle: dict, text: str) -> bool:
    """Whether truncation to max_tokens splits a word's pieces."""
    ids, spans = ananet_reference.word_spans(bundle["tokenizer"], text, 10_000)  # untruncated
    body_end = 1 + MAX_TOKENS - 2
    return len(ids) > MAX_TOKENS and any(start < body_end < end for _, start, end in spans)


def copy_files(source: Path, target: Path, names: list[str]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(source / name, target / name)


def write_manifest(out: Path, thresholds: dict[str, dict[str, float]]) -> None:
    manifest = {
        "format": 1, "name": "tiny-bundle", "version": "0.0.1",
        "description": "Random weights for tests (tools/golden/make_tiny_bundle.py); the labels mean nothing.",
        "text_encoder": {"kind": "bert", "path": "text-encoder", "max_tokens": MAX_TOKENS},
        "image_encoder": {"kind": "vit", "path": "image-encoder"},
        "word_vectors": {"kind": "glove", "path": "glove"},
        "heads": [
            {"task": "sarcasm", "kind": "clfa", "weights": "heads/sarcasm.safetensors", "labels": SARCASM_LABELS,
             "thresholds": thresholds["sarcasm"],
             "config": {"attention_heads": CLFA["heads"], "layer_norm_eps": 1e-12, "text_length": MAX_TOKENS,
                        "no_image": "learned_token"},
             "description": "random CLFA, 2 layers, image cross-attention, learned no-image token"},
            {"task": "correlation", "kind": "ananet", "weights": "heads/correlation.safetensors",
             "labels": CORRELATION_LABELS, "thresholds": thresholds["correlation"],
             "config": {"region_count": REGIONS, "lambda": 0.7, "eta": 1.3},
             "description": "random AnANet over the ViT's 17 tokens"},
        ],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(FIXTURES / "tiny-bundle"))
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    rng = np.random.default_rng(args.seed)

    copy_files(FIXTURES / "tiny-bert", out / "text-encoder", ["config.json", "vocab.txt", "model.safetensors"])
    copy_files(FIXTURES / "tiny-vit", out / "image-encoder",
               ["config.json", "preprocessor_config.json", "model.safetensors"])
    ananet_reference.write_word_vectors(
        out / "glove", GLOVE_WORDS, rng.standard_normal((len(GLOVE_WORDS), ANANET["glove"])).astype(np.float32),
        source={"package": "test fixture", "script": "tools/golden/make_tiny_bundle.py"})
    (out / "heads").mkdir()
    save_file(clfa_weights(rng), str(out / "heads" / "sarcasm.safetensors"))
    save_file(ananet_weights(rng), str(out / "heads" / "correlation.safetensors"))
    # Placeholder thresholds: the reference's probabilities do not depend on them.
    write_manifest(out, {"sarcasm": {}, "correlation": {}})
    bundle = bundle_reference.load_bundle(out)

    # Images: draw pictures until the argmax part of the correlation decision is clear.
    posts, results = [], []
    for post_id, text, spec in POSTS:
        jpeg = None
        if spec == "broken":
            jpeg = b"this is not a JPEG, just bytes"
        elif spec is not None:
            for attempt in range(20):
                jpeg = make_jpeg(rng, *spec)
                p = bundle_reference.classify(bundle, text, jpeg)["correlation"]["probabilities"]
                if abs(p[0] - p[1]) >= MIN_MARGIN:
                    break
            else:
                raise SystemExit(f"{post_id}: no picture in 20 gives irrelevant/implicit {MIN_MARGIN} apart")
        record = {"id": post_id, "text": text}
        if jpeg is not None:
            record["image"] = base64.b64encode(jpeg).decode("ascii")
        posts.append(record)
        results.append(None if spec == "broken" else bundle_reference.classify(bundle, text, jpeg))

    # The coverage the docstring promises.
    cut = [i for i, t, _ in POSTS if cuts_a_word(bundle, t)]
    assert cut, "no post has a word cut by truncation"

    # Thresholds in the widest gaps, then the final decisions with them.
    valid = [r for r in results if r is not None]
    thresholds = {
        "sarcasm": {"sarcastic": widest_gap_threshold([r["sarcasm"]["probabilities"][1] for r in valid])},
        "correlation": {"explicit": widest_gap_threshold(
            [r["correlation"]["probabilities"][2] for r in valid if r["correlation"]["probabilities"]])},
    }
    write_manifest(out, thresholds)
    bundle = bundle_reference.load_bundle(out)
    lines, summary = [], []
    for record in posts:
        if record["id"] in BROKEN:
            lines.append({"id": record["id"], "error": "undecodable_image"})
            continue
        jpeg = base64.b64decode(record["image"]) if "image" in record else None
        result = bundle_reference.classify(bundle, record["text"], jpeg)
        labels = {}
        for head in bundle["manifest"]["heads"]:
            r = result[head["task"]]
            if r["margin"] < MIN_MARGIN:
                raise SystemExit(f"{record['id']} {head['task']}: decision margin {r['margin']:.4f} < {MIN_MARGIN}")
            labels[head["task"]] = {"label": r["label"],
                                    "probabilities": dict(zip(head["labels"], r["probabilities"])),
                                    "margin": None if math.isinf(r["margin"]) else round(r["margin"], 4)}
        lines.append({"id": record["id"], "labels": labels})
        summary.append(f"{record['id']}: " + ", ".join(f"{t} {v['label']}" for t, v in labels.items()))

    won = {x["labels"][task]["label"] for x in lines if "labels" in x for task in ("sarcasm", "correlation")}
    missing = set(SARCASM_LABELS + CORRELATION_LABELS + [bundle_reference.NO_IMAGE]) - won
    if missing:
        raise SystemExit(f"labels {sorted(missing)} never win: pick another seed")

    (out / "posts.jsonl").write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in posts))
    (out / "expected.jsonl").write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
    for path in out.rglob("*"):
        if path.is_file():
            path.chmod(0o644)  # save_file creates files 0600; keep the committed modes ordinary
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print("\n".join(summary))
    print(f"thresholds {thresholds}")
    print(f"wrote {out}: {len(posts)} posts, {size // 1024} KB")


if __name__ == "__main__":
    main()
