#!/usr/bin/env python3
"""Summary of bench/image/run.sh: Swift against Pillow like for like, each ratio taken within a
round (both sides on the same machine state) and then the median over rounds.

Two pairs, because DCT scaling (libjpeg decoding straight to 1/2, 1/4 or 1/8 size) is most of
the win at 1200x900 -> 224x224 and either side can use it: Swift with `dctDownscale` against
Pillow with `Image.draft()`, and both decoding at full size. Comparing Swift with scaling against
Pillow without it (the headline before issue 29) credited the decoder setting to Swift.

Usage: summarize_jpeg.py ROUND_JSON...   each file {"round": n, "swift": {...}, "pillow": {...}}"""
import json
import statistics
import sys

PAIRS = [  # (label, Swift key, Pillow key)
    ("with DCT scaling", "swift_decode_preprocess_dct", "pillow_draft_decode_resize"),
    ("without DCT scaling", "swift_decode_preprocess_full", "pillow_decode_resize"),
]
BAR = 2.0  # issue 6: Swift decode + preprocess at least 2x Pillow's decode + resize


def main() -> None:
    rounds = [json.load(open(path)) for path in sys.argv[1:]]
    met = True
    for label, swift_key, pillow_key in PAIRS:
        ratios = [r["swift"][swift_key] / r["pillow"][pillow_key] for r in rounds]
        swift = statistics.median(r["swift"][swift_key] for r in rounds)
        pillow = statistics.median(r["pillow"][pillow_key] for r in rounds)
        ratio = statistics.median(ratios)
        met = met and ratio >= BAR
        print(f"{label}: Swift {swift:.1f} images/s, Pillow {pillow:.1f} images/s (medians over {len(rounds)} rounds); "
              f"Swift / Pillow {ratio:.2f}x (rounds: {', '.join(f'{x:.2f}x' for x in ratios)})")
    print(f"bar (>= {BAR:g}x Pillow decode + resize, like for like, both pairs):", "met" if met else "NOT met")


if __name__ == "__main__":
    main()
