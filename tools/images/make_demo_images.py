"""Writes the demo photos (scikit-image's bundled samples, public domain or CC0) as JPEGs.

Usage: models/.venv/bin/python tools/images/make_demo_images.py OUT_DIR
The README's demo posts (scripts/demo/posts.tsv) name these files.
"""
import sys
from pathlib import Path

import numpy as np
import skimage.data as data
from PIL import Image

PHOTOS = {
    "astronaut": data.astronaut,
    "camera": data.camera,
    "chelsea": data.chelsea,
    "clock": data.clock,
    "coffee": data.coffee,
    "coins": data.coins,
    "hubble": data.hubble_deep_field,
    "rocket": data.rocket,
}


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, load in PHOTOS.items():
        pixels = np.asarray(load())
        image = Image.fromarray(pixels).convert("RGB")
        image.save(out / f"{name}.jpg", quality=90)
        print(f"{name}.jpg {image.width}x{image.height}")


if __name__ == "__main__":
    main()
