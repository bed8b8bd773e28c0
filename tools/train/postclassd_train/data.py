"""Posts and their features for training, computed the way the engine computes them at serving time.

* Posts: a JSONL file, one post a line: {"id", "text", "image": path relative to the JSONL (or
  absolute) or absent, <label key>: label name}. The data's sha256 covers the JSONL and every image.
* Text: ids and words from the text encoder's tokenizer.json with the engine's truncation and word
  spans (ananet.WordSpanTokenizer), token states from the frozen encoder (bert.BertEncoder).
* Images: the engine's own region grids, from `postclassd encode-image --regions-out`, so that a
  head is trained on exactly the numbers it will be served (JPEG decoding, resizing, the encoder).
  The grids are cached under models/.cache/image-regions, keyed by the encoder's and each image's sha256.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .ananet import WordSpanTokenizer
from .bert import BertEncoder

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_CACHE = ROOT / "models" / ".cache" / "image-regions"


class DataError(Exception):
    """A problem with the user's data or setup, said so that they can fix it."""


@dataclass
class Post:
    id: str
    text: str
    image: Path | None
    record: dict = field(repr=False)

    def label(self, key: str) -> str | None:
        value = self.record.get(key)
        return None if value is None else str(value)


def read_posts(path: str | Path) -> list[Post]:
    """The posts of a JSONL file; image paths resolved against the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist: give a JSONL file of posts")
    posts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{number}: not JSON ({error})") from None
        if not isinstance(record, dict) or "id" not in record:
            raise DataError(f"{path}:{number}: a post is an object with at least an \"id\"")
        image = record.get("image")
        image_path = None
        if image:
            image_path = Path(image) if Path(image).is_absolute() else path.parent / image
            if not image_path.is_file():
                raise DataError(f"{path}:{number}: image {image_path} does not exist")
        posts.append(Post(str(record["id"]), str(record.get("text") or ""), image_path, record))
    if not posts:
        raise DataError(f"{path} has no posts")
    return posts


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def data_sha256(jsonl: str | Path, posts: list[Post]) -> str:
    """sha256 over the JSONL's bytes and each image's sha256 in post order: changes when anything the
    training reads changes."""
    h = hashlib.sha256(Path(jsonl).read_bytes())
    for post in posts:
        if post.image is not None:
            h.update(file_sha256(post.image).encode())
    return h.hexdigest()


# ----------------------------------------------------------------------------------------- text
@dataclass
class TextFeatures:
    """Per post: ids, words (text, start, end) and the encoder's token states [len(ids), d]."""
    ids: list[list[int]]
    words: list[list[tuple[str, int, int]]]
    states: list[torch.Tensor]


def encode_texts(texts: list[str], encoder_folder: Path, max_tokens: int, batch_size: int = 64) -> TextFeatures:
    """Tokenises as the engine does and runs the frozen encoder (float32, no gradients)."""
    encoder = BertEncoder.load(encoder_folder)
    limit = min(max_tokens, int(encoder.config["max_position_embeddings"]))
    tokenizer = WordSpanTokenizer(encoder_folder, limit)
    ids, words = [], []
    for text in texts:
        i, w = tokenizer(text)
        ids.append(i)
        words.append(w)
    states: list[torch.Tensor] = []
    with torch.no_grad():
        for start in range(0, len(ids), batch_size):
            chunk = ids[start:start + batch_size]
            length = max(len(s) for s in chunk)
            batch = torch.zeros(len(chunk), length, dtype=torch.long)
            mask = torch.zeros(len(chunk), length, dtype=torch.long)
            for b, s in enumerate(chunk):
                batch[b, :len(s)] = torch.tensor(s)
                mask[b, :len(s)] = 1
            out = encoder(batch, mask)
            states.extend(out[b, :len(s)].clone() for b, s in enumerate(chunk))
    return TextFeatures(ids, words, states)


def pad_states(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, L, d] zero-padded token states and the [B, L] mask."""
    length = max(s.shape[0] for s in states)
    out = torch.zeros(len(states), length, states[0].shape[1])
    mask = torch.zeros(len(states), length)
    for b, s in enumerate(states):
        out[b, :s.shape[0]] = s
        mask[b, :s.shape[0]] = 1
    return out, mask


# --------------------------------------------------------------------------------------- images
def find_postclassd(explicit: str | None = None) -> Path:
    """The daemon binary that encodes images: --postclassd, $POSTCLASSD_BIN, or a built one in .build."""
    given = [c for c in (explicit, os.environ.get("POSTCLASSD_BIN")) if c]
    candidates = given[:1] or [str(ROOT / ".build" / kind / "postclassd") for kind in ("release", "debug")]
    built = [Path(c) for c in candidates if os.access(c, os.X_OK)]
    if not built:
        raise DataError(f"no postclassd binary at {' or '.join(candidates)}: build it (swift build) or pass --postclassd PATH")
    return max(built, key=lambda p: p.stat().st_mtime)  # the newer build when both exist


def image_regions(images: list[Path], encoder_folder: Path, postclassd: Path, cache: Path = DEFAULT_CACHE,
                  batch_size: int = 16) -> torch.Tensor:
    """The engine's region grids [N, K, d] of `images`, in order.

    Cached per image under cache/<encoder sha256>/<image sha256>.safetensors, so a dataset is
    encoded once, and a later set that shares images (a test split, predictions) encodes only
    what is new, in `encode-image` runs of up to 500 files.
    """
    key = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        key.update(file_sha256(encoder_folder / name).encode())
    folder = cache / key.hexdigest()[:32]
    digests = [file_sha256(image) for image in images]
    missing: list[tuple[str, int]] = []          # (digest, first index), each new image once
    seen: set[str] = set()
    for i, digest in enumerate(digests):
        if digest not in seen and not (folder / f"{digest}.safetensors").exists():
            missing.append((digest, i))
        seen.add(digest)
    # 500 files per run: the command line stays short and the run's grid file (250 KB per image
    # for EfficientNet-Lite0) small.
    for start in range(0, len(missing), 500):
        _encode(missing[start:start + 500], images, encoder_folder, postclassd, folder, batch_size)
    return torch.stack([load_file(str(folder / f"{d}.safetensors"))["regions"] for d in digests])


def _encode(missing: list[tuple[str, int]], images: list[Path], encoder_folder: Path, postclassd: Path,
            folder: Path, batch_size: int) -> None:
    """One `encode-image --regions-out` run over the (digest, index) pairs; each grid to its cache file."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        out = Path(tmp) / "regions.safetensors"
        files = [str(images[i]) for _, i in missing]
        run = subprocess.run([str(postclassd), "encode-image", "--encoder", str(encoder_folder), "--batch-size",
                              str(batch_size), "--regions-out", str(out), *files],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if not out.exists():
            raise DataError(f"{postclassd} encode-image failed (status {run.returncode}): {run.stderr.strip()[-2000:]}")
        grid = load_file(str(out))
        bad = [files[r] for r in range(len(files)) if grid["decoded"][r] == 0]
        if bad:
            lines = [line for line in run.stdout.splitlines() if '"error"' in line][:3]
            raise DataError(f"{len(bad)} image(s) cannot be decoded by the engine, e.g. {bad[:3]}: "
                            f"{' '.join(lines)}; fix or drop them (the daemon would dead-letter these posts)")
        for r, (digest, _) in enumerate(missing):
            single = Path(tmp) / f"{digest}.safetensors"
            save_file({"regions": grid["regions"][r].contiguous()}, str(single))
            os.replace(single, folder / f"{digest}.safetensors")
