"""Per-code-point behaviour of the reference BERT normaliser and pre-tokenizer.

For every Unicode scalar c (surrogates excluded), the words that `tokenizers` makes of "a" + c + "a"
with the model's tokenizer.json: one line "<hex c>\t<words>", words separated by "|", each word its
scalars in hex separated by spaces. The Swift test compares its BasicTokenizer on every line, which
catches Unicode-version differences (categories, decompositions) that sampled strings would miss.
About 20 MB, so it lives in the git-ignored models/golden/.

Run: models/.venv/bin/python tools/golden/make_codepoint_table.py \
        --tokenizer models/all-MiniLM-L6-v2/tokenizer.json --out models/golden/codepoint-table.tsv
(scripts/setup-models.sh runs it.)
"""
from __future__ import annotations

import argparse

from tokenizers import Tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    tokenizer = Tokenizer.from_file(args.tokenizer)
    normalizer, pre_tokenizer = tokenizer.normalizer, tokenizer.pre_tokenizer
    with open(args.out, "w", encoding="ascii") as f:
        for c in range(0x110000):
            if 0xD800 <= c <= 0xDFFF:
                continue
            words = [w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str("a" + chr(c) + "a"))]
            f.write("%x\t%s\n" % (c, "|".join(" ".join("%x" % ord(ch) for ch in w) for w in words)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
