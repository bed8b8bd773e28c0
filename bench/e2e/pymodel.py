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
  manifest thresholds (LabelDecision's rule). A head with `text_adapter` (LoRA on the top layers,
  as the default bundle's) runs as postclassd runs it: the shared MiniLM pass also returns the input
  of the first adapted layer, and the head's own copy of the layers from there (adapters merged) runs
  on it; both graphs come from bench/e2e/export_adapted.py (run.sh makes them).
- correlation (zero_shot_imagenet, calibrated): softmax over ImageNet, candidate concepts, cosine
  between the post's unit sentence vector and every class description (the bundle's precomputed
  `concept_vectors`), the calibration's features (similarity with the name-match bonus, similarity
  expected under the image's classes, z-score over all classes), GloVe relatedness of the candidates'
  names (postclassd computes it whenever the bundle has word vectors), logistic regression, evidence
  words (tools/reference/zero_shot_reference.py is the arithmetic's reference).
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
sys.path.insert(0, str(ROOT / "tools" / "reference"))
import zero_shot_reference  # noqa: E402
from efficientnet_ort import build_graph  # noqa: E402

STOPWORDS = zero_shot_reference.STOPWORDS


def is_content(word: str) -> bool:
    return len(word) > 2 and word[0].isalpha() and word not in STOPWORDS


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


class ZeroShot:
    """The calibrated `zero_shot_imagenet` scorer (Sources/Model/Bundle/ZeroShotScorer.swift) in float32
    numpy, as a service would write it; tools/reference/zero_shot_reference.py is its float64 reference."""

    def __init__(self, cfg: dict, concepts: np.ndarray, raw_names: list[str], word_vectors):
        self.cfg = cfg
        self.concepts = unit(concepts.astype(np.float32))
        self.class_words = [zero_shot_reference.name_words(n) for n in raw_names]
        calibration = cfg["calibration"]
        self.features = calibration["features"]
        self.weights = np.asarray(calibration["weights"], np.float32)
        self.bias = np.asarray(calibration["bias"], np.float32)
        self.lookup, self.vectors = word_vectors if word_vectors is not None else ({}, None)
        self.class_vectors = None
        if self.vectors is not None:
            self.class_vectors = [unit(np.array([self.vectors[self.lookup[u]] for u in sorted(words) if u in self.lookup],
                                                np.float32).reshape(-1, self.vectors.shape[1]))
                                  for words in self.class_words]

    def _names(self, c: int, content: list[str]) -> list[str]:
        words = self.class_words[c]
        return [w for w in content if w in words or (len(w) > 3 and w.endswith("s") and w[:-1] in words)]

    def _related(self, content: list[str], candidates: list[int]) -> tuple[float, str]:
        if self.class_vectors is None:
            return 0.0, ""
        known = [w for w in content if w in self.lookup]
        if not known:
            return 0.0, ""
        text = unit(np.array([self.vectors[self.lookup[w]] for w in known], np.float32))
        best, word = 0.0, ""
        for c in candidates:
            if len(self.class_vectors[c]):
                cos = self.class_vectors[c] @ text.T
                i = int(np.argmax(cos))
                if cos.flat[i] > best:
                    best, word = float(cos.flat[i]), known[i % len(known)]
        return best, word

    def score(self, logits: np.ndarray, sentence: np.ndarray, words: list[str]) -> dict:
        cfg = self.cfg
        p = softmax(logits.astype(np.float32))
        ranked = np.argsort(-p, kind="stable")[:cfg.get("top_concepts", 5)]
        candidates = [int(ranked[0])] + [int(c) for c in ranked[1:] if p[c] >= cfg.get("min_concept_probability", 0.05)]
        sims = self.concepts @ unit(sentence.astype(np.float32))
        content = [w for w in words if is_content(w)]
        named_by = [self._names(c, content) for c in candidates]
        bonus = cfg.get("name_match_bonus", 0.3)
        scores = [float(sims[c]) + (bonus if n else 0.0) for c, n in zip(candidates, named_by)]
        best = max(range(len(candidates)), key=lambda i: (scores[i], -candidates[i]))
        all_named = {w for n in named_by for w in n}
        named = [w for w in content if w in all_named]
        related, related_word = self._related(content, candidates)
        spread = float(sims.std())
        features = {"similarity": scores[best], "similarity_mix": float(p @ sims),
                    "similarity_z": (float(sims[candidates].max()) - float(sims.mean())) / spread if spread > 0 else 0.0,
                    "named": 1.0 if named else 0.0, "related": related}
        z = self.weights @ np.array([features[f] for f in self.features], np.float32) + self.bias
        probabilities = softmax(z)
        c = candidates[best]
        return {"features": features, "probabilities": probabilities, "label": int(np.argmax(probabilities)),
                "concept": c, "concept_probability": float(p[c]), "similarity": float(sims[c]),
                "named": named, "related_word": related_word}


class Bundle:
    """A bundle folder's encoders and heads, loaded once; `threads` intra-op threads per ONNX Runtime session."""

    def __init__(self, folder: Path, threads: int = 2, spinning: bool = False):
        manifest = json.loads((folder / "manifest.json").read_text())
        self.identity = {"name": manifest["name"], "version": manifest["version"]}
        self.max_tokens = manifest["text_encoder"]["max_tokens"]
        text_dir = (folder / manifest["text_encoder"]["path"]).resolve()
        image_dir = (folder / manifest["image_encoder"]["path"]).resolve()
        self.tokenizer = Tokenizer.from_file(str(text_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_tokens)
        onnx_text = text_dir / "bench" / "model.onnx"
        self.image = session(build_graph(image_dir).SerializeToString(), threads, spinning)
        pre = json.loads((image_dir / "config.json").read_text())["preprocess"]
        assert pre["resize_mode"] == "shortest_side_center_crop" and pre["filter"] == "bicubic"
        self.crop = (pre["width"], pre["height"])
        self.short_side = pre["shortest_side"]
        self.scale = np.float32(pre["rescale_factor"]) / np.array(pre["std"], np.float32)
        self.mean_scaled = np.array(pre["mean"], np.float32) / np.float32(pre["rescale_factor"])
        raw_names = (image_dir / "imagenet_classes.txt").read_text().splitlines()
        word_vectors = None
        if manifest.get("word_vectors"):
            word_vectors = zero_shot_reference.load_word_vectors((folder / manifest["word_vectors"]["path"]).resolve())
        self.adapted = None
        for head in manifest["heads"]:
            if head["kind"] == "clfa":
                w = load_file(str(folder / head["weights"]))
                self.sarcasm = dict(task=head["task"], labels=head["labels"],
                                    thresholds=[head.get("thresholds", {}).get(l) for l in head["labels"]],
                                    w1=w["mlp_text.fc1.weight"].T.copy(), b1=w["mlp_text.fc1.bias"],
                                    w2=w["mlp_text.fc2.weight"].T.copy(), b2=w["mlp_text.fc2.bias"],
                                    wc=w["classifier.weight"].T.copy(), bc=w["classifier.bias"])
                if head.get("text_adapter"):
                    adapter = folder / head["text_adapter"]
                    first = min(int(name.split(".")[2]) for name in load_file(str(adapter)))
                    keep = text_dir / "bench" / f"keep-{first}.onnx"
                    layers = text_dir / "bench" / f"adapted-{hashlib.sha256(adapter.read_bytes()).hexdigest()[:16]}.onnx"
                    if not keep.exists() or not layers.exists():
                        sys.exit(f"{folder}: the sarcasm head's adapted layers have no ONNX graphs yet: run "
                                 f"models/.bench-venv/bin/python bench/e2e/export_adapted.py {text_dir} {adapter}")
                    onnx_text = keep
                    self.adapted = session(str(layers), threads, spinning)
            elif head["kind"] == "zero_shot_imagenet":
                cfg = head["config"]
                if "calibration" not in cfg or "concept_vectors" not in cfg:
                    raise SystemExit(f"{folder}: the zero-shot head has no calibration or precomputed concept_vectors; "
                                     "this Python service mirrors the calibrated head of the default bundle only")
                concepts = load_file(str(folder / cfg["concept_vectors"]))["concepts"]
                self.zero_shot = dict(task=head["task"], labels=head["labels"], cfg=cfg,
                                      scorer=ZeroShot(cfg, concepts, raw_names, word_vectors),
                                      names=[n.split(",")[0].strip() for n in raw_names])
        if not onnx_text.exists():
            sys.exit(f"{onnx_text} is missing: run bench/model/run.sh once (it exports MiniLM with torch.onnx)")
        self.text = session(str(onnx_text), threads, spinning)

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
        """The shared pass: token states, sentence vectors and (for an adapted head) the input of its
        first layer, else None."""
        outputs = self.text.run(None, {"input_ids": ids, "attention_mask": mask})
        states, kept = outputs[0], (outputs[1] if self.adapted is not None else None)
        m = mask[..., None].astype(np.float32)
        sentences = (states * m).sum(1) / np.maximum(m.sum(1), 1)
        return states, sentences, kept

    def encode_text(self, texts):
        ids, mask, _ = self.tokenize(texts)
        states, sentences, kept = self.text_states(ids, mask)
        return states, mask, sentences, kept

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

    def sarcasm_labels(self, states, mask, kept=None):
        h = self.sarcasm
        if self.adapted is not None:
            states = self.adapted.run(None, {"layer_input": kept, "attention_mask": mask})[0]
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
        s = z["scorer"].score(logits, sentence, [w for w, _ in words.items])
        c = s["concept"]
        if s["named"]:
            match, matched = "named", list(dict.fromkeys(s["named"]))
        elif s["related_word"] and "related" in z["cfg"]["calibration"]["features"]:
            match, matched = "related", [s["related_word"]]
        else:
            concept = z["scorer"].concepts[c]
            scored = [(w, float(unit(states[pieces].sum(0)) @ concept)) for w, pieces in words.items if is_content(w)]
            match = "similar"
            matched = list(dict.fromkeys(w for w, _ in sorted(scored, key=lambda x: -x[1])))[:z["cfg"].get("evidence_words", 3)]
        used = [(name, f"{s['features'][name]:.3f}") for name in z["cfg"]["calibration"]["features"] if name != "similarity"]
        return {"label": z["labels"][s["label"]], "probabilities": dict(zip(z["labels"], map(float, s["probabilities"]))),
                "head": "zero-shot-imagenet",
                "evidence": dict([("concept", z["names"][c]), ("concept_probability", f"{s['concept_probability']:.3f}"),
                                  ("similarity", f"{s['similarity']:.3f}"), *used,
                                  ("match", match), ("words", " ".join(matched))])}

    @staticmethod
    def no_image(task: str):
        return {"label": "no_image", "probabilities": {}, "head": "zero-shot-imagenet",
                "evidence": {"reason": "the post has no image"}}
