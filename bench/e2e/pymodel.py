"""The default bundle's work, done the way a Python service would: tokenizers, Pillow, ONNX Runtime
and numpy. Mirrors Sources/Model/Bundle (BundleClassifier, CLFATaskHead, ZeroShotCorrelationHead)
closely enough that both sides do the same amount of work per post:

- text: all-MiniLM-L6-v2 WordPiece (lower-cased, [CLS] ... [SEP], at most `max_tokens` = 77),
  padded to the batch's longest; MiniLM in ONNX Runtime (the graph bench/model exports once with
  torch.onnx, models/all-MiniLM-L6-v2/bench/model.onnx); sentence vector = masked mean of the
  token states ([CLS] and [SEP] included).
- image: Pillow decode with DCT scaling (`draft`, as the Swift decoder's `shortestSideAtLeast`),
  EXIF orientation, shortest side 256 bicubic, centre crop 224, (x - mean) / std from the
  encoder's config.json, NCHW; EfficientNet-Lite0 in ONNX Runtime (graph from
  bench/image/efficientnet_ort.py), logits only (the sarcasm head is text-only).
- sarcasm (clfa, 0 layers): relu(fc1) -> fc2 per token, masked mean, classifier, softmax,
  manifest thresholds (LabelDecision's rule).
- correlation (zero_shot_imagenet): softmax over ImageNet, top concepts, cosine between the post's
  unit sentence vector and the class prompts' (computed once at load), name-match bonus,
  thresholds, pseudo-probabilities, evidence words.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps
from safetensors.numpy import load_file
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "image"))
from efficientnet_ort import build_graph  # noqa: E402

STOPWORDS = set("""the and for are but not you all any can had her was one our out has him his how its may new
now old see two who did get got let say she too use that with have this will your from they been were what when
them than then there their these those some just like into over also very only more most such much about after
again before being could would should which while where here because really still yet my me its it's i'm another
finally today tomorrow yesterday love great wow what's""".split())


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def session(model, threads: int, spinning: bool) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class Words:
    """A post's words (lower-cased text and token positions), as the Swift tokenizer's WordSpans."""

    def __init__(self, text: str, encoding):
        spans: dict[int, list[int]] = {}
        offsets: dict[int, tuple[int, int]] = {}
        for pos, w in enumerate(encoding.word_ids):
            if w is None:
                continue
            spans.setdefault(w, []).append(pos)
            a, b = encoding.offsets[pos]
            lo, hi = offsets.get(w, (a, b))
            offsets[w] = (min(lo, a), max(hi, b))
        self.items = [(text[offsets[w][0]:offsets[w][1]].lower(), spans[w]) for w in sorted(spans)]


class Bundle:
    def __init__(self, folder: Path, threads: int = 2, spinning: bool = False, cache: Path | None = None):
        """`cache`: a folder for the class prompts' vectors (1000 MiniLM passes, ~10-40 s on a
        small machine; postclassd computes them at every start, the bench does not wait for it twice)."""
        manifest = json.loads((folder / "manifest.json").read_text())
        self.identity = {"name": manifest["name"], "version": manifest["version"]}
        self.max_tokens = manifest["text_encoder"]["max_tokens"]
        text_dir = (folder / manifest["text_encoder"]["path"]).resolve()
        image_dir = (folder / manifest["image_encoder"]["path"]).resolve()
        self.tokenizer = Tokenizer.from_file(str(text_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_tokens)
        onnx_text = text_dir / "bench" / "model.onnx"
        if not onnx_text.exists():
            sys.exit(f"{onnx_text} is missing: run bench/model/run.sh once (it exports MiniLM with torch.onnx)")
        self.text = session(str(onnx_text), threads, spinning)
        self.image = session(build_graph(image_dir).SerializeToString(), threads, spinning)
        pre = json.loads((image_dir / "config.json").read_text())["preprocess"]
        assert pre["resize_mode"] == "shortest_side_center_crop" and pre["filter"] == "bicubic"
        self.crop = (pre["width"], pre["height"])
        self.short_side = pre["shortest_side"]
        self.scale = np.float32(pre["rescale_factor"]) / np.array(pre["std"], np.float32)
        self.mean_scaled = np.array(pre["mean"], np.float32) / np.float32(pre["rescale_factor"])
        raw_names = (image_dir / "imagenet_classes.txt").read_text().splitlines()
        self.heads = {}
        for head in manifest["heads"]:
            if head["kind"] == "clfa":
                if head.get("text_adapter"):
                    raise SystemExit(f"{folder}: the sarcasm head reads LoRA-adapted encoder layers (text_adapter), "
                                     "which this Python service does not run yet: it would do less work than postclassd. "
                                     "Mirror them here first (issue 29), or bench a bundle without text_adapter")
                w = load_file(str(folder / head["weights"]))
                self.sarcasm = dict(task=head["task"], labels=head["labels"],
                                    thresholds=[head.get("thresholds", {}).get(l) for l in head["labels"]],
                                    w1=w["mlp_text.fc1.weight"].T.copy(), b1=w["mlp_text.fc1.bias"],
                                    w2=w["mlp_text.fc2.weight"].T.copy(), b2=w["mlp_text.fc2.bias"],
                                    wc=w["classifier.weight"].T.copy(), bc=w["classifier.bias"])
            elif head["kind"] == "zero_shot_imagenet":
                cfg = head["config"]
                if "prompt" not in cfg:
                    raise SystemExit(f"{folder}: the zero-shot head is the calibrated scorer (templates, calibration), "
                                     "which this Python service does not mirror yet (it knows the single-prompt, "
                                     "two-threshold head). Mirror it here first (issue 29)")
                prompts = [cfg["prompt"].replace("{}", n) for n in raw_names]
                key = hashlib.sha256("\n".join(prompts).encode() + str(onnx_text.stat().st_mtime_ns).encode()).hexdigest()[:16]
                cached = cache / f"concepts-{key}.npy" if cache else None
                if cached and cached.exists():
                    vectors = np.load(cached)
                else:
                    vectors = np.concatenate([self.encode_text(prompts[i:i + 64])[2] for i in range(0, len(prompts), 64)])
                    if cached:
                        cache.mkdir(parents=True, exist_ok=True)
                        np.save(cached, vectors)
                self.zero_shot = dict(task=head["task"], labels=head["labels"], cfg=cfg, concepts=unit(vectors),
                                      names=[n.split(",")[0].strip() for n in raw_names],
                                      words=[{w for w in re.split(r"[^\w]+", n.lower()) if len(w) > 2 and w not in STOPWORDS}
                                             for n in raw_names])

    # --- text -------------------------------------------------------------------------------

    def tokenize(self, texts: list[str]):
        encodings = self.tokenizer.encode_batch(texts)
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), length), np.int64)
        mask = np.zeros((len(texts), length), np.int64)
        for b, e in enumerate(encodings):
            ids[b, :len(e.ids)] = e.ids
            mask[b, :len(e.ids)] = 1
        return ids, mask, [Words(t, e) for t, e in zip(texts, encodings)]

    def text_states(self, ids, mask):
        states = self.text.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask})[0]
        m = mask[..., None].astype(np.float32)
        sentences = (states * m).sum(1) / np.maximum(m.sum(1), 1)
        return states, sentences

    def encode_text(self, texts):
        ids, mask, _ = self.tokenize(texts)
        states, sentences = self.text_states(ids, mask)
        return states, mask, sentences

    # --- image ------------------------------------------------------------------------------

    def load_image(self, jpeg: bytes) -> np.ndarray:
        im = Image.open(io.BytesIO(jpeg))
        w, h = im.size
        s = min(w, h)
        im.draft("RGB", (math.ceil(self.short_side * w / s), math.ceil(self.short_side * h / s)))
        im = ImageOps.exif_transpose(im).convert("RGB")
        w, h = im.size
        if w <= h:
            size = (self.short_side, self.short_side * h // w)
        else:
            size = (self.short_side * w // h, self.short_side)
        im = im.resize(size, Image.Resampling.BICUBIC)
        cw, ch = self.crop
        left, top = (size[0] - cw) // 2, (size[1] - ch) // 2
        im = im.crop((left, top, left + cw, top + ch))
        x = (np.asarray(im, np.float32) - self.mean_scaled) * self.scale
        return x.transpose(2, 0, 1)

    def image_logits(self, pixels: np.ndarray) -> np.ndarray:
        return self.image.run(["logits"], {"pixels": pixels})[0]

    # --- heads ------------------------------------------------------------------------------

    def sarcasm_labels(self, states, mask):
        h = self.sarcasm
        x = np.maximum(states @ h["w1"] + h["b1"], 0) @ h["w2"] + h["b2"]
        m = mask[..., None].astype(np.float32)
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1)
        probs = softmax(pooled @ h["wc"] + h["bc"])
        out = []
        for p in probs:
            met = [i for i, t in enumerate(h["thresholds"]) if t is not None and p[i] >= t]
            free = [i for i, t in enumerate(h["thresholds"]) if t is None]
            pick = max(met or free or range(len(p)), key=lambda i: p[i])
            out.append({"label": h["labels"][pick], "probabilities": dict(zip(h["labels"], map(float, p))),
                        "head": "clfa-text-only"})
        return out

    def correlation_label(self, logits, sentence, words: Words, states):
        z = self.zero_shot
        cfg = z["cfg"]
        probs = softmax(logits)
        ranked = np.argsort(-probs)[:cfg["top_concepts"]]
        candidates = [c for i, c in enumerate(ranked) if i == 0 or probs[c] >= cfg["min_concept_probability"]]
        text = unit(sentence)
        best = None
        for c in candidates:
            similarity = float(text @ z["concepts"][c])
            named = [w for w, _ in words.items if w in z["words"][c] or (len(w) > 3 and w.endswith("s") and w[:-1] in z["words"][c])]
            score = similarity + (cfg["name_match_bonus"] if named else 0)
            if best is None or score > best[2]:
                best = (c, similarity, score, named)
        c, similarity, s, named = best
        lo, hi, t = cfg["implicit_threshold"], cfg["explicit_threshold"], cfg["temperature"]
        pseudo = softmax(np.array([(lo - s) / t, min(s - lo, hi - s) / t, (s - hi) / t]))
        winner = 2 if s >= hi else (1 if s >= lo else 0)
        if named:
            matched = list(dict.fromkeys(named))
        else:
            scored = []
            for w, pieces in words.items:
                if len(w) > 2 and w not in STOPWORDS and w[:1].isalpha():
                    scored.append((w, float(unit(states[pieces].sum(0)) @ z["concepts"][c])))
            matched = list(dict.fromkeys(w for w, _ in sorted(scored, key=lambda x: -x[1])))[:cfg["evidence_words"]]
        return {"label": z["labels"][winner], "probabilities": dict(zip(z["labels"], map(float, pseudo))),
                "head": "zero-shot-imagenet",
                "evidence": {"concept": z["names"][c], "concept_probability": f"{probs[c]:.3f}",
                             "similarity": f"{similarity:.3f}", "score": f"{s:.3f}",
                             "match": "named" if named else "similar", "words": " ".join(matched)}}

    @staticmethod
    def no_image(task: str):
        return {"label": "no_image", "probabilities": {}, "head": "zero-shot-imagenet",
                "evidence": {"reason": "the post has no image"}}
