"""Numpy reference of a model bundle end to end (Sources/Model/Bundle/BundleClassifier.swift): a post's
text and JPEG in, every head's probabilities and label out. It composes the other references the
way the Swift classifier composes its parts, one post at a time, float64:

  1. Text: the bundle's WordPiece vocabulary (lower-casing BERT tokenizer) gives ids [CLS] ... [SEP]
     truncated to min(text_encoder.max_tokens (default 77), max_position_embeddings), and the words
     with their piece ranges (ananet_reference.word_spans: words cut by truncation are dropped).
     bert_reference.forward gives the token states of the last layer, [n, d_t].
  2. Image (when the post has one and the manifest names an image encoder): Pillow decodes the JPEG
     (EXIF orientation applied, converted to RGB) at the DCT scale the Swift decoder picks (the
     largest 1/8, 1/4, 1/2 that keeps each side at least the encoder's input size, libjpeg's
     ceil(side / d)); tools/images/preprocess_reference.py resizes and normalises as the encoder's
     preprocessing says; the encoder's reference gives the regions (ViT: CLS + patch tokens after
     the final LayerNorm). Only `vit` image encoders are supported here.
  3. Heads, each over the post's features:
       clfa    clfa_reference.forward(token states, regions or None); the head's config is the
               manifest's "config" over clfa_reference.DEFAULT_CONFIG.
       ananet  word features [GloVe(word) ; mean of its pieces' states] for the first N_max words,
               then ananet_reference.forward(regions, features); a post without an image gets the
               label "no_image" and no probabilities (the task does not apply).
  4. The label: `decide` below, the manifest thresholds rule of LabelDecision.swift.

Usage as a library:
    bundle = load_bundle("Tests/ModelTests/Fixtures/tiny-bundle")
    result = classify(bundle, text, jpeg_bytes_or_None)
    result["sarcasm"]["probabilities"], result["sarcasm"]["label"], result["sarcasm"]["margin"]
"""
from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "reference"))
sys.path.insert(0, str(ROOT / "tools" / "images"))
import ananet_reference  # noqa: E402
import bert_reference  # noqa: E402
import clfa_reference  # noqa: E402
import preprocess_reference  # noqa: E402
import vit_reference  # noqa: E402

NO_IMAGE = "no_image"


# ------------------------------------------------------------------------------------- loading
def _tokenizer(vocab: Path):
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(str(vocab), lowercase=True)._tokenizer
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def vit_preprocess(folder: Path, config: dict) -> dict:
    """The preprocess_reference config of a ViT folder (ViTImageProcessorConfig.swift's mapping:
    squash to `size`, the file's filter, rescale and normalisation, NCHW)."""
    p = {}
    if (folder / "preprocessor_config.json").exists():
        p = json.loads((folder / "preprocessor_config.json").read_text())
    size = p.get("size", 224)
    height, width = (size["height"], size["width"]) if isinstance(size, dict) else (size, size)
    filters = {2: "bilinear", 3: "bicubic"}
    normalize = p.get("do_normalize", True)
    return {"width": width, "height": height, "resize_mode": "squash", "filter": filters[p.get("resample", 2)],
            "rescale_factor": p.get("rescale_factor", 1 / 255) if p.get("do_rescale", True) else 1.0,
            "mean": p.get("image_mean", [0.5] * 3) if normalize else [0, 0, 0],
            "std": p.get("image_std", [0.5] * 3) if normalize else [1, 1, 1], "layout": "nchw"}


def load_bundle(folder: str | Path) -> dict:
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    text = manifest["text_encoder"]
    assert text["kind"] == "bert", text["kind"]
    text_dir = folder / text["path"]
    bert_weights, bert_config = bert_reference.load_checkpoint(text_dir)
    max_tokens = min(text.get("max_tokens", 77), int(bert_config["max_position_embeddings"]))
    bundle = {"manifest": manifest, "tokenizer": _tokenizer(text_dir / "vocab.txt"), "max_tokens": max_tokens,
              "bert": (bert_weights, bert_config), "image": None, "vectors": None, "heads": []}
    if manifest.get("image_encoder"):
        image_dir = folder / manifest["image_encoder"]["path"]
        weights, config = vit_reference.load_checkpoint(image_dir)
        assert config.get("model_type") == "vit", "the bundle reference runs vit image encoders only"
        bundle["image"] = (weights, config, vit_preprocess(image_dir, config))
    if manifest.get("word_vectors"):
        bundle["vectors"] = ananet_reference.load_word_vectors(folder / manifest["word_vectors"]["path"])
    for head in manifest["heads"]:
        weights = load_file(str(folder / head["weights"]))
        if head["kind"] == "clfa":
            config = {**clfa_reference.DEFAULT_CONFIG, **head.get("config", {})}
        elif head["kind"] == "ananet":
            config = head["config"]
        else:
            raise ValueError(f"head kind {head['kind']} has no reference here")
        bundle["heads"].append((head, weights, config))
    return bundle


# ------------------------------------------------------------------------------------ the image
def dct_scale(width: int, height: int, need_width: int, need_height: int) -> int:
    """JPEGDownscale.atLeast: the largest 1/d (d in 8, 4, 2) keeping ceil(side / d) >= the need."""
    for d in (8, 4, 2):
        if -(-width // d) >= need_width and -(-height // d) >= need_height:
            return d
    return 1


def decode_jpeg(data: bytes, need_width: int, need_height: int) -> np.ndarray:
    """Pillow's decoding at the Swift decoder's DCT scale, upright, RGB: uint8 [H, W, 3]."""
    from PIL import Image, ImageOps

    image = Image.open(io.BytesIO(data))
    w, h = image.size
    swaps = (image.getexif().get(0x0112, 1) or 1) >= 5
    need = (need_height, need_width) if swaps else (need_width, need_height)
    d = dct_scale(w, h, *need)
    if d > 1:
        image.draft(image.mode, (w // d, h // d))
        want = (-(-w // d), -(-h // d))
        assert image.size == want, f"Pillow draft gave {image.size}, wanted {want} at 1/{d}"
    image = ImageOps.exif_transpose(image).convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def image_regions(bundle: dict, jpeg: bytes) -> np.ndarray:
    weights, config, pre = bundle["image"]
    rgb = decode_jpeg(jpeg, pre["width"], pre["height"])
    pixels = preprocess_reference.preprocess(rgb, pre)  # float32, as the Swift encoder is fed
    return vit_reference.forward(weights, config, pixels)["tokens"]


# ------------------------------------------------------------------------------------ the label
def decide(labels: list[str], thresholds: dict, p: np.ndarray) -> tuple[int, float]:
    """LabelDecision.decide, and the decision's margin: how far the probabilities are from a
    different label (the smallest distance of a probability to its threshold, and of the winner
    to the runner-up among the labels it was compared with)."""
    t = [thresholds.get(label) for label in labels]
    gaps = [abs(p[i] - t[i]) for i in range(len(labels)) if t[i] is not None]
    met = [i for i in range(len(labels)) if t[i] is not None and p[i] >= t[i]]
    candidates = met or [i for i in range(len(labels)) if t[i] is None] or list(range(len(labels)))
    ranked = sorted(candidates, key=lambda i: -p[i])
    if len(ranked) > 1:
        gaps.append(p[ranked[0]] - p[ranked[1]])
    return ranked[0], float(min(gaps)) if gaps else math.inf


# -------------------------------------------------------------------------------------- a post
def classify(bundle: dict, text: str, jpeg: bytes | None) -> dict:
    """{task: {"label", "probabilities" (list, label order; [] for no_image), "margin"}}."""
    ids, spans = ananet_reference.word_spans(bundle["tokenizer"], text, bundle["max_tokens"])
    states = bert_reference.forward(*bundle["bert"], ids)["layers"][-1]
    # The Swift heads read float32 states and regions; round here so the reference sees the same.
    states = states.astype(np.float32)
    regions = None
    if jpeg is not None and bundle["image"] is not None:
        regions = image_regions(bundle, jpeg).astype(np.float32)
    out = {}
    for head, weights, config in bundle["heads"]:
        if head["kind"] == "clfa":
            p = clfa_reference.forward(weights, config, states, regions)["probabilities"]
        elif regions is None:
            out[head["task"]] = {"label": NO_IMAGE, "probabilities": [], "margin": math.inf}
            continue
        else:
            lookup, vectors = bundle["vectors"]
            n_max = weights["alignment.classifier.weight"].shape[1] - int(config["region_count"])
            e = ananet_reference.word_features(spans, states, lookup, vectors, n_max)
            p = ananet_reference.forward(weights, config, regions, e.astype(np.float32))["probabilities"]
        winner, margin = decide(head["labels"], head.get("thresholds", {}), p)
        out[head["task"]] = {"label": head["labels"][winner], "probabilities": [float(x) for x in p], "margin": margin}
    return out
