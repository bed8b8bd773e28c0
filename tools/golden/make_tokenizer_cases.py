"""Generates the tokenizer parity cases: >= 10,000 varied strings and the ids that the `tokenizers`
package gives them with the model's own tokenizer.json (truncation to 128, no padding).

Deterministic: a fixed seed and no dependence on the environment beyond the pinned packages.
Output: JSON lines {"text": ..., "ids": [...]} (a few MB, so it lives in the git-ignored models/golden/).

Run: models/.venv/bin/python tools/golden/make_tokenizer_cases.py \
        --tokenizer models/all-MiniLM-L6-v2/tokenizer.json --out models/golden/tokenizer-cases.jsonl
(scripts/setup-models.sh runs it.)
"""
from __future__ import annotations

import argparse
import json
import random

from tokenizers import Tokenizer

SEED = 5
MAX_LENGTH = 128

WORDS = ("the a an of to and in is it you that he was for on are with as his they be at one have this "
         "from or had by word but what some we can out other were all there when up use your how said "
         "each she which do their time if will way about many then them write would like so these her "
         "long make thing see him two has look more day could go come did number sound no most people "
         "sarcasm irony love hate great totally obviously monday coffee weather traffic best worst ever "
         "unbelievable congratulations photograph beautiful sunset breakfast running jumped quickly").split()
ACCENTED = ["café", "naïve", "résumé", "jalapeño", "über", "Ångström", "façade", "coöperate", "São Paulo",
            "Zürich", "Kraków", "smörgåsbord", "piñata", "crème brûlée", "e\u0301te\u0301", "n\u0303",
            "A\u030a", "ǅ", "ǈ", "Ǳ", "İstanbul", "ıi", "straße", "ﬁne ﬂow", "Æsir", "Œuvre", "ø", "Ł", "đ"]
EMOJI = ["😀", "😂", "🤣", "❤️", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "🏳️‍🌈", "🙄", "🥰", "🥲", "🫠", "🫶🏻", "🪿", "🧑‍💻",
         "✨", "🔥", "💯", "☕", "⚡️", "©", "®", "™", "🤷‍♀️", "😍😍😍", "🙃", "\U0001FAE8", "\U0001FA77"]
CJK = ["日本語のテキスト", "中文字符测试", "한국어 문장입니다", "漢字かなカナ", "繁體中文", "\U00020000\U0002A700",
       "\U0002B820\U0002B8FF\U0002B920", "\U0002CEA0\U0002EBE0", "\U00030000\U00031350", "\uF900\uFA6D",
       "ＦＵＬＬｗｉｄｔｈ", "ｶﾀｶﾅ", "〜「引用」。", "\u3000全角\u3000空白"]
SCRIPTS = ["Привет, как дела?", "ΟΔΥΣΣΕΥΣ σοφός", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก",
           "გამარჯობა", "Բարեւ", "ሰላም", "ᚠᚢᚦ", "𝐁𝐨𝐥𝐝 𝕕𝕠𝕦𝕓𝕝𝕖", "Ⅻ ⅷ", "²³¹ ½ ⅓", "∑∫√∞≠≈", "←↑→↓",
           "₹€£¥$¢", "«quotes» „Gänsefüßchen“ ‘single’", "—–‐‑‒", "¿¡", "·•‣", "§¶†‡", "°C µm Ω"]
CONTROL = ["\x00", "\x01", "\x07", "\x1b[31m", "\x7f", "\x85", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff",
           "\u00ad", "\ufffd", "\ue000", "\U000F0000", "\u0378", "\U000E0001", "\U000E0020", "\u2028", "\u2029",
           "\t", "\n", "\r\n", "\r", "\u00a0", "\u2003", "\u202f", "\u180e", "\u061c", "\u034f", "\ufe0f"]
SPECIALS = ["[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]", "[mask]", "[CLS", "[[SEP]]", "x[MASK]y"]
PUNCT = list("!?.,;:'\"()[]{}<>/\\|@#$%^&*-_+=~`") + ["...", "!!!", "?!?!", "--", "…", "‼", "⁉"]
TLDS = ["com", "org", "io", "co.uk", "de"]


def word(rng: random.Random) -> str:
    w = rng.choice(WORDS)
    r = rng.random()
    if r < 0.1:
        return w.upper()
    if r < 0.25:
        return w.capitalize()
    return w


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(word(rng) for _ in range(n))


def url(rng: random.Random) -> str:
    path = "/".join(rng.choice(WORDS) for _ in range(rng.randint(0, 3)))
    query = f"?id={rng.randint(0, 99999)}&ref={rng.choice(WORDS)}" if rng.random() < 0.4 else ""
    return f"{rng.choice(['http', 'https'])}://{rng.choice(['www.', ''])}{rng.choice(WORDS)}.{rng.choice(TLDS)}/{path}{query}"


def random_scalar(rng: random.Random) -> str:
    # Any scalar except surrogates (not representable in UTF-8); weighted toward the BMP.
    while True:
        cp = rng.randint(0x20, 0xFFFF) if rng.random() < 0.8 else rng.randint(0x10000, 0x10FFFF)
        if not 0xD800 <= cp <= 0xDFFF:
            return chr(cp)


def case(rng: random.Random, kind: int) -> str:
    if kind == 0:
        return sentence(rng, rng.randint(1, 25)) + rng.choice(["", ".", "!", "?", "!!!", " :)"])
    if kind == 1:
        parts = [sentence(rng, rng.randint(1, 6)) for _ in range(rng.randint(1, 4))]
        return " ".join(p + " " + "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 3))) for p in parts)
    if kind == 2:
        return " ".join(rng.choice(ACCENTED + WORDS) for _ in range(rng.randint(1, 12)))
    if kind == 3:
        return rng.choice(["", " "]).join(rng.choice(CJK + [sentence(rng, 2)]) for _ in range(rng.randint(1, 5)))
    if kind == 4:
        return f"{sentence(rng, rng.randint(0, 8))} {url(rng)} {sentence(rng, rng.randint(0, 5))}"
    if kind == 5:
        tags = " ".join("#" + rng.choice(WORDS) + rng.choice(["", rng.choice(WORDS).capitalize(), str(rng.randint(0, 2026))])
                        for _ in range(rng.randint(1, 5)))
        mentions = " ".join("@" + rng.choice(WORDS) + rng.choice(["", "_", "123", "_official"]) for _ in range(rng.randint(0, 3)))
        return f"{mentions} {sentence(rng, rng.randint(1, 10))} {tags}".strip()
    if kind == 6:
        return sentence(rng, rng.randint(1, 6)) + "".join(rng.choice(PUNCT) * rng.randint(1, 8) for _ in range(rng.randint(1, 4)))
    if kind == 7:
        # Very long posts: past the 128-id truncation, and words past the 100-character limit.
        if rng.random() < 0.5:
            return sentence(rng, rng.randint(100, 400))
        n = rng.choice([99, 100, 101, 150, 500])
        return f"{sentence(rng, 3)} {'a' * n} {rng.choice(WORDS) * (n // 5)} {sentence(rng, 3)}"
    if kind == 8:
        return rng.choice(["", " ", "\n", "\t\t", "   \n  ", "\u3000", "\u00a0", "\x00", "\u200b"])
    if kind == 9:
        return "".join(rng.choice([word(rng) + " ", rng.choice(CONTROL)]) for _ in range(rng.randint(1, 12)))
    if kind == 10:
        return " ".join(rng.choice(SCRIPTS + CJK + ACCENTED + [word(rng)]) for _ in range(rng.randint(1, 6)))
    if kind == 11:
        return " ".join(rng.choice(SPECIALS + WORDS) for _ in range(rng.randint(1, 8)))
    if kind == 12:
        return "".join(random_scalar(rng) for _ in range(rng.randint(1, 30)))
    if kind == 13:
        # Numbers, money, times, contractions, mixed case and digits inside words.
        return (f"I'm {rng.randint(0, 100)}% sure it's {rng.randint(1, 12)}:{rng.randint(0, 59):02d}pm, "
                f"${rng.randint(0, 9999)}.{rng.randint(0, 99):02d} for {rng.choice(WORDS)}{rng.randint(0, 99)} "
                f"can't won't y'all {word(rng)}-{word(rng)} e.g. U.S.A.")
    return " ".join(rng.choice(WORDS + ACCENTED + EMOJI + CJK + SCRIPTS + CONTROL + PUNCT + SPECIALS)
                    for _ in range(rng.randint(1, 40)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", required=True, help="the model's tokenizer.json")
    parser.add_argument("--out", required=True)
    parser.add_argument("--count", type=int, default=12000)
    args = parser.parse_args()

    rng = random.Random(SEED)
    kinds = 15
    texts = [case(rng, i % kinds) for i in range(args.count)]
    tokenizer = Tokenizer.from_file(args.tokenizer)
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_LENGTH)
    encodings = tokenizer.encode_batch(texts)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(json.dumps({"max_length": MAX_LENGTH, "count": len(texts)}) + "\n")
        for text, enc in zip(texts, encodings):
            f.write(json.dumps({"text": text, "ids": enc.ids}) + "\n")
    print(f"wrote {len(texts)} cases to {args.out}")


if __name__ == "__main__":
    main()
