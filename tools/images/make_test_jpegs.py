#!/usr/bin/env python3
"""Makes the JPEG test images for postclassd's decoder and preprocessing tests.

Source pictures are scikit-image's bundled sample photos (no download). For
every JPEG it also writes Pillow's decoding of the same file (after
`ImageOps.exif_transpose`, converted to RGB) as raw interleaved RGB bytes
(`NAME.rgb`), so the Swift tests need no image library to compare against.

Two outputs:
  * small images (committed) in Tests/ModelTests/Fixtures/images/, listed in
    manifest.json there;
  * large images (4000x3000, and the 1200x900 benchmark picture) in the
    git-ignored models/test-images/, listed in manifest.json there. The Swift
    tests skip the large-image checks when that folder is missing.

Pins (the committed bytes depend on Pillow's bundled libjpeg-turbo):
    pip install -r tools/images/requirements.txt

Usage:
    python3 tools/images/make_test_jpegs.py            # small and large
    python3 tools/images/make_test_jpegs.py --no-large # small only
    python3 tools/images/make_test_jpegs.py --no-small # large only (what CI needs)
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
import skimage.data

ROOT = Path(__file__).resolve().parents[2]
SMALL_DIR = ROOT / "Tests" / "ModelTests" / "Fixtures" / "images"
LARGE_DIR = ROOT / "models" / "test-images"


# ---------------------------------------------------------------- helpers

def photo(name: str, size: tuple[int, int] | None = None) -> Image.Image:
    """A scikit-image sample photo as a Pillow image, optionally resized (LANCZOS)."""
    arr = getattr(skimage.data, name)()
    im = Image.fromarray(arr)
    if size is not None:
        im = im.resize(size, Image.Resampling.LANCZOS)
    return im


def encode(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", **kw)
    return buf.getvalue()


def pillow_rgb(data: bytes, scale: int = 1) -> np.ndarray:
    """Pillow's decoding, upright and RGB; `scale` > 1 uses libjpeg's DCT scaling via draft()."""
    im = Image.open(io.BytesIO(data))
    if scale > 1:
        w, h = im.size
        im.draft(im.mode, (w // scale, h // scale))
        want = (-(-w // scale), -(-h // scale))
        if im.size != want:
            raise SystemExit(f"Pillow draft gave {im.size}, wanted {want} at 1/{scale}")
    im.load()
    im = ImageOps.exif_transpose(im)
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def exif_app1(orientation: int, big_endian: bool) -> bytes:
    """An APP1 Exif segment whose IFD0 holds Make and Orientation (tag 0x0112)."""
    e = ">" if big_endian else "<"
    make = b"postclassd\x00"  # 11 bytes: stored after the IFD
    entries = 2
    ifd_offset = 8
    data_offset = ifd_offset + 2 + 12 * entries + 4
    tiff = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, ifd_offset)
    tiff += struct.pack(e + "H", entries)
    tiff += struct.pack(e + "HHII", 0x010F, 2, len(make), data_offset)  # Make, ASCII
    # SHORT value left-justified in the 4-byte field, in the file's byte order.
    tiff += struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff += struct.pack(e + "I", 0)  # no next IFD
    tiff += make
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def insert_segment(jpeg: bytes, segment: bytes, after_app0: bool) -> bytes:
    """Puts a marker segment right after SOI, or after the JFIF APP0 if asked and present."""
    assert jpeg[:2] == b"\xff\xd8"
    pos = 2
    if after_app0 and jpeg[2:4] == b"\xff\xe0":
        pos = 4 + struct.unpack(">H", jpeg[4:6])[0]
    return jpeg[:pos] + segment + jpeg[pos:]


def set_adobe_transform(jpeg: bytes, transform: int) -> bytes:
    """Rewrites the transform flag of the Adobe APP14 marker (0 CMYK, 2 YCCK)."""
    i = jpeg.find(b"\xff\xee")
    while i >= 0:
        if jpeg[i + 4:i + 9] == b"Adobe":
            b = bytearray(jpeg)
            b[i + 4 + 11] = transform
            return bytes(b)
        i = jpeg.find(b"\xff\xee", i + 2)
    raise SystemExit("no Adobe marker found")


def ycck_jpeg(rgb: Image.Image) -> bytes:
    """A YCCK JPEG (Adobe transform 2) whose Adobe-inverted CMYK meaning is close to `rgb`.

    Pillow cannot write YCCK, so: choose inverted CMYK samples (c', m', y', k')
    with R ~ c' * k' / 255, turn (255 - c', 255 - m', 255 - y') into YCbCr with
    the JFIF equations (libjpeg's YCCK->CMYK inverts exactly this), write the
    four planes as a plain 4-component JPEG via Pillow's CMYK path (which
    stores 255 - value), then flip the Adobe transform flag to 2.
    """
    a = np.asarray(rgb, dtype=np.float64)
    k = np.clip(a.max(axis=2) + 20, 1, 255)  # inverted K: some real black ink in dark areas
    cmy = np.clip(np.round(a * 255.0 / k[..., None]), 0, 255)
    r, g, b = (255 - cmy[..., 0], 255 - cmy[..., 1], 255 - cmy[..., 2])
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168735892 * r - 0.331264108 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418687589 * g - 0.081312411 * b + 128
    planes = np.stack([y, cb, cr, k], axis=2)
    stored = np.clip(np.round(planes), 0, 255).astype(np.uint8)
    im = Image.fromarray(255 - stored, mode="CMYK")
    return set_adobe_transform(encode(im, quality=92), 2)


class Writer:
    def __init__(self, folder: Path):
        self.folder = folder
        self.items: list[dict] = []
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, name: str, data: bytes, kind: str, scales=(1,), **info) -> None:
        (self.folder / f"{name}.jpg").write_bytes(data)
        entry = {"name": name, "kind": kind, "bytes": len(data), **info, "expected": []}
        for s in scales:
            rgb = pillow_rgb(data, s)
            suffix = "" if s == 1 else f"_s{s}"
            (self.folder / f"{name}{suffix}.rgb").write_bytes(rgb.tobytes())
            entry["expected"].append(
                {"scale": s, "file": f"{name}{suffix}.rgb", "width": int(rgb.shape[1]), "height": int(rgb.shape[0])})
        self.items.append(entry)

    def finish(self) -> None:
        manifest = {
            "generator": "tools/images/make_test_jpegs.py",
            "pillow": Image.__version__,
            "scikit_image": skimage.__version__,
            "images": self.items,
        }
        (self.folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        total = sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())
        print(f"{self.folder}: {len(self.items)} images, {total / 1e6:.2f} MB", file=sys.stderr)


# ---------------------------------------------------------------- image sets

def make_small(folder: Path) -> None:
    w = Writer(folder)
    astro = photo("astronaut", (192, 192))
    w.add("astronaut_baseline", encode(astro, quality=90), "baseline", scales=(1, 2, 4, 8))
    coffee = photo("coffee", (240, 160))
    w.add("coffee_progressive", encode(coffee, quality=85, progressive=True), "progressive", scales=(1, 2, 4, 8))
    camera = photo("camera", (160, 160))  # grayscale source
    w.add("camera_gray", encode(camera, quality=90), "grayscale", scales=(1, 2))
    chelsea = photo("chelsea", (180, 120))
    w.add("chelsea_cmyk", encode(chelsea.convert("CMYK"), quality=92), "cmyk", scales=(1, 2))
    w.add("chelsea_ycck", ycck_jpeg(chelsea), "ycck", scales=(1,))
    rocket = photo("rocket")
    w.add("rocket_444_odd", encode(rocket.resize((201, 134), Image.Resampling.LANCZOS), quality=92, subsampling=0),
          "baseline_444", scales=(1, 2))
    w.add("rocket_422", encode(rocket.resize((131, 77), Image.Resampling.LANCZOS), quality=80, subsampling=1),
          "baseline_422", scales=(1,))
    # Every EXIF orientation, both TIFF byte orders, on a non-square picture so
    # that a wrong rotation cannot pass. Little-endian ones sit right after
    # SOI, big-endian ones after the JFIF APP0.
    small_cat = photo("chelsea", (48, 32))
    base = encode(small_cat, quality=90)
    for o in range(1, 9):
        for big in (False, True):
            data = insert_segment(base, exif_app1(o, big), after_app0=big)
            w.add(f"orientation_{o}_{'be' if big else 'le'}", data, "orientation", orientation=o,
                  byte_order="MM" if big else "II")
    # An orientation on a progressive, downscaled decode too.
    data = insert_segment(encode(coffee, quality=85, progressive=True), exif_app1(6, True), after_app0=False)
    w.add("coffee_progressive_orientation_6", data, "orientation", orientation=6, byte_order="MM", scales=(1, 4))
    # Tiny pictures: single pixel and sizes below one MCU.
    astro_full = photo("astronaut")
    for (tw, th) in [(1, 1), (7, 5), (1, 9), (17, 3)]:
        crop = astro_full.crop((200, 180, 200 + tw, 180 + th))
        w.add(f"tiny_{tw}x{th}", encode(crop, quality=95), "tiny")
    w.add("tiny_7x5_progressive", encode(astro_full.crop((250, 250, 257, 255)), quality=95, progressive=True), "tiny")
    w.finish()


def make_large(folder: Path) -> None:
    w = Writer(folder)
    big = photo("astronaut", (4000, 3000))
    w.add("astronaut_4000x3000", encode(big, quality=85), "large", scales=(1, 8))
    w.add("astronaut_4000x3000_progressive", encode(big, quality=85, progressive=True), "large_progressive",
          scales=(4,))
    bench = photo("coffee", (1200, 900))
    w.add("coffee_1200x900_q85", encode(bench, quality=85), "bench", scales=(1, 4))
    w.finish()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-small", action="store_true", help="skip the committed small images")
    ap.add_argument("--no-large", action="store_true", help="skip the git-ignored large images")
    ap.add_argument("--small-dir", type=Path, default=SMALL_DIR)
    ap.add_argument("--large-dir", type=Path, default=LARGE_DIR)
    args = ap.parse_args()
    if not args.no_small:
        make_small(args.small_dir)
    if not args.no_large:
        make_large(args.large_dir)


if __name__ == "__main__":
    main()
