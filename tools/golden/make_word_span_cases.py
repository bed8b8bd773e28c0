"""Generates the word-span parity cases: 300 varied strings with the words the numpy reference
(tools/reference/ananet_reference.py, `word_spans`) derives from the `tokenizers` package and the
all-MiniLM-L6-v2 tokenizer.json: ids, and per word its normalised text and piece range.

The strings come from make_tokenizer_cases.py's generator (emoji, accents, CJK, URLs, control
characters, typed special tokens, long posts, random code points); max_length cycles through
16, 32 and 128 so truncation cuts words often. Each case's ids are checked against `tokenizers`'
own truncation, and its word texts against the normaliser + pre-tokenizer run on the whole text.

Output (committed, ~110 KB): JSON lines {"text", "max_length", "ids", "words": [[text, start, end], ...]}
Run: models/.venv/bin/python tools/golden/make_word_span_cases.py \
        --tokenizer models/all-MiniLM-L6-v2/tokenizer.json --out Tests/ModelTests/Fixtures/ananet/word-spans.jsonl
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "reference"))
sys.path.insert(0, str(ROOT / "tools" / "golden"))
import ananet_reference as ref  # noqa: E402
from make_tokenizer_cases import case  # noqa: E402

SEED = 7
COUNT = 300
MAX_LENGTHS = [16, 32, 128]
# Long posts are cut to this many characters: past every max_length here, and the file stays small.
MAX_CHARACTERS = 400


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", required=True, help="all-MiniLM-L6-v2's tokenizer.json")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    tokenizer = Tokenizer.from_file(args.tokenizer)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    truncating = Tokenizer.from_file(args.tokenizer)
    truncating.no_padding()
    rng = random.Random(SEED)
    cut_words = 0
    with open(args.out, "w", encoding="utf-8") as f:
        for i in range(COUNT):
            text = case(rng, i % 15)[:MAX_CHARACTERS]
            max_length = MAX_LENGTHS[i % len(MAX_LENGTHS)]
            ids, words = ref.word_spans(tokenizer, text, max_length)
            truncating.enable_truncation(max_length)
            assert ids == truncating.encode(text).ids, text
            _, all_words = ref.word_spans(tokenizer, text, 10**6)
            cut_words += any(s[1] < len(ids) - 1 < s[2] for s in all_words)
            if "[" not in text:
                # Without typed special tokens the words are exactly the pre-tokenizer's.
                normalised = tokenizer.normalizer.normalize_str(text)
                expected = [w for w, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalised)]
                assert [w for w, _, _ in all_words] == expected, (text, all_words, expected)
            f.write(json.dumps({"text": text, "max_length": max_length, "ids": ids,
                                "words": [list(w) for w in words]}, ensure_ascii=False) + "\n")
    print(f"wrote {COUNT} cases to {args.out} ({cut_words} with a word cut by truncation)")


if __name__ == "__main__":
    main()
