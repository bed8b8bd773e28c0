"""Per-post features for the heads, batching, and the bundle's heads run in torch over them: what
the trainers train on and what `predict` (the parity side of training-to-serving tests) reports."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from .ananet import AnANetHead, WordVectorTable, pad_words, word_features
from .bundle import BaseBundle
from .clfa import CLFAHead
from .data import DEFAULT_CACHE, Post, TextFeatures, encode_texts, find_postclassd, image_regions, pad_states


@dataclass
class PostFeatures:
    """Everything the heads read, per post."""
    posts: list[Post]
    text: TextFeatures
    regions: list[torch.Tensor | None]        # [K, d] of the engine's image encoder, None without image

    def subset(self, indices: list[int]) -> "PostFeatures":
        t = self.text
        return PostFeatures([self.posts[i] for i in indices],
                            TextFeatures([t.ids[i] for i in indices], [t.words[i] for i in indices],
                                         [t.states[i] for i in indices]),
                            [self.regions[i] for i in indices])


def post_features(posts: list[Post], bundle: BaseBundle, images: bool, postclassd: str | None = None,
                  cache: str | Path = DEFAULT_CACHE) -> PostFeatures:
    """Text features always; the engine's image regions when `images` (posts with an image only)."""
    text = encode_texts([p.text for p in posts], bundle.component("text_encoder"), bundle.max_tokens)
    regions: list[torch.Tensor | None] = [None] * len(posts)
    with_image = [i for i, p in enumerate(posts) if p.image is not None]
    if images and with_image:
        encoder = bundle.component("image_encoder")
        if encoder is None:
            raise SystemExit(f"{bundle.folder} has no image_encoder: the head needs image features")
        grid = image_regions([posts[i].image for i in with_image], encoder, find_postclassd(postclassd), Path(cache))
        for row, i in enumerate(with_image):
            regions[i] = grid[row]
    return PostFeatures(posts, text, regions)


# ---------------------------------------------------------------------------------------- CLFA
def clfa_inputs(features: PostFeatures, indices: list[int]):
    """(text [B, L, d_t], mask [B, L], image [B, K, d_i] or None, has_image [B])."""
    text, mask = pad_states([features.text.states[i] for i in indices])
    has_image = torch.tensor([features.regions[i] is not None for i in indices])
    image = None
    if bool(has_image.any()):
        first = next(features.regions[i] for i in indices if features.regions[i] is not None)
        image = torch.stack([features.regions[i] if features.regions[i] is not None else torch.zeros_like(first)
                             for i in indices])
    return text, mask, image, has_image


def clfa_logits(head: CLFAHead, features: PostFeatures, indices: list[int]) -> torch.Tensor:
    return head(*clfa_inputs(features, indices))


# -------------------------------------------------------------------------------------- AnANet
class AnANetWords:
    """Each post's word features e [N, G + D] (the first N_max words), computed once."""

    def __init__(self, features: PostFeatures, table: WordVectorTable, max_words: int):
        self.rows = [word_features(w, s, table, max_words) for w, s in zip(features.text.words, features.text.states)]
        self.width = table.dims + features.text.states[0].shape[1]


def ananet_logits(head: AnANetHead, features: PostFeatures, words: AnANetWords, indices: list[int]) -> torch.Tensor:
    regions = torch.stack([features.regions[i] for i in indices])
    padded, counts = pad_words([words.rows[i] for i in indices], words.width)
    return head(regions, padded, counts)


# ------------------------------------------------------------------------------------- predict
def load_heads(bundle: BaseBundle) -> list[tuple[dict, torch.nn.Module]]:
    """The bundle's clfa and ananet heads (manifest entry, module in eval mode)."""
    heads = []
    for entry in bundle.manifest["heads"]:
        if entry["kind"] not in ("clfa", "ananet"):
            continue
        weights = load_file(str(bundle.folder / entry["weights"]))
        config = entry.get("config") or {}
        module = CLFAHead.from_state_dict(weights, config) if entry["kind"] == "clfa" \
            else AnANetHead.from_state_dict(weights, config)
        heads.append((entry, module.eval()))
    return heads


def predict(bundle_folder: str | Path, posts: list[Post], postclassd: str | None = None,
            cache: str | Path = DEFAULT_CACHE, batch_size: int = 64) -> list[dict]:
    """Per post {"id", "labels": {task: {"label", "probabilities": {label: p}}}} from the bundle's
    trained heads in torch (float32), labels by the manifest's thresholds as the engine decides;
    an AnANet head gives a post without an image {"label": "no_image"} as the engine does."""
    bundle = BaseBundle(bundle_folder)
    heads = load_heads(bundle)
    images = any(isinstance(h, AnANetHead) or h.has_image_branch for _, h in heads)
    features = post_features(posts, bundle, images=images, postclassd=postclassd, cache=cache)
    out = [{"id": p.id, "labels": {}} for p in posts]
    for entry, head in heads:
        labels = entry["labels"]
        thresholds = entry.get("thresholds") or {}
        if entry["kind"] == "clfa":
            indices = list(range(len(posts)))
            run = lambda idx: clfa_logits(head, features, idx)  # noqa: E731
        else:
            table = WordVectorTable(bundle.component("word_vectors"))
            words = AnANetWords(features, table, head.shape.max_words)
            indices = [i for i in range(len(posts)) if features.regions[i] is not None]
            run = lambda idx: ananet_logits(head, features, words, idx)  # noqa: E731
            for i in range(len(posts)):
                if features.regions[i] is None:
                    out[i]["labels"][entry["task"]] = {"label": "no_image", "probabilities": {}}
        with torch.no_grad():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start:start + batch_size]
                probabilities = run(chunk).softmax(-1)
                for i, p in zip(chunk, probabilities.tolist()):
                    out[i]["labels"][entry["task"]] = {"label": labels[decide(p, labels, thresholds)],
                                                       "probabilities": dict(zip(labels, p))}
    return out


def decide(p: list[float], labels: list[str], thresholds: dict[str, float]) -> int:
    """The engine's LabelDecision: a thresholded label that reaches its threshold (the most probable
    such), else the most probable label without a threshold, else argmax."""
    reached = [i for i, name in enumerate(labels) if name in thresholds and p[i] >= thresholds[name]]
    if reached:
        return max(reached, key=lambda i: p[i])
    free = [i for i, name in enumerate(labels) if name not in thresholds]
    return max(free or range(len(p)), key=lambda i: p[i])


def write_daemon_posts(posts: list[Post], path: str | Path) -> None:
    """The posts in the daemon's input schema ({"id", "text", "image": base64 JPEG}) for `postclassd classify`."""
    lines = []
    for post in posts:
        record = {"id": post.id, "text": post.text}
        if post.image is not None:
            record["image"] = base64.b64encode(post.image.read_bytes()).decode("ascii")
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    Path(path).write_text("".join(lines), encoding="utf-8")
