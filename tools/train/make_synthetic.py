"""A seeded synthetic multimodal set for the trainers' tests: drawn scenes with captions whose
image-text relation (explicit / implicit / irrelevant) and sarcasm are known by construction.

Why synthetic: no public set with both labels ships with the repository, and the tests need data
that trains in seconds and on which "learned something" has a sure answer.

Each picture draws one object (sun, house, tree, car, cat face, ball, fish, flower; built from
Pillow primitives with jittered colours, sizes and positions) over a varied background (sky and
grass, plain, gradient, stripes, noise), saved as JPEG. In the training split a picture is shared
by --captions-per-image posts, one per relation, so that the relation is learnt from the pair; the
test split draws a new picture for every post (held out: pictures never seen in training). A caption is
  * explicit: names the drawn object ("look at this little house");
  * implicit: related but not named (sun -> "what a hot day at the beach");
  * irrelevant: another object's caption or an unrelated remark ("my math homework is due");
and, independently, sarcastic (a sarcastic template, often contradicting the picture: "oh great,
another rainy day" over a sun) or not. About one post in ten has no image (for the CLFA no-image
rule); its correlation label is null.

Writes OUT/{images/*.jpg, train.jsonl, test.jsonl}, default models/synthetic (git-ignored). Each line:
{"id", "text", "image": "images/<id>.jpg" (relative to the JSONL) or absent, "sarcasm":
"sarcastic"|"not_sarcastic", "correlation": "explicit"|"implicit"|"irrelevant"|null}. The trainers
read one of the label keys with --label-key.

Run: models/.venv-train/bin/python tools/train/make_synthetic.py [--out DIR] [--train 360] [--test 120] [--seed 7]
         [--captions-per-image 3]
"""
from __future__ import annotations

import argparse
import json
import math
import random
import shutil
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
SIZE = 160

# Per object: words that name it (explicit), related remarks that do not (implicit), and
# sarcastic remarks about the same scene (the sarcasm marker plus, often, a contradiction).
OBJECTS: dict[str, dict[str, list[str]]] = {
    "sun": {"names": ["sun", "sunshine"],
            "implicit": ["what a hot day at the beach", "time for sunscreen and sunglasses", "summer is finally here",
                         "it is so bright outside today"],
            "sarcastic_implicit": ["oh great, another rainy day", "wow, so cold and gloomy out here",
                                   "just love this freezing winter weather"]},
    "house": {"names": ["house", "home"],
              "implicit": ["we finally got the keys today", "moving day with all the boxes", "the mortgage papers are signed",
                           "new neighbours next door"],
              "sarcastic_implicit": ["oh great, the landlord raised the rent again", "yeah, paying rent forever is so much fun",
                                     "just love fixing a leaking roof every weekend"]},
    "tree": {"names": ["tree", "oak"],
             "implicit": ["autumn leaves everywhere in the park", "birds singing in the branches", "a shady spot for a picnic",
                          "the forest smells amazing"],
             "sarcastic_implicit": ["oh great, raking leaves all weekend", "just love the pollen season, my eyes are thrilled",
                                    "wow, more branches on my car, perfect"]},
    "car": {"names": ["car", "auto"],
            "implicit": ["finally got my driving licence", "road trip this weekend", "stuck in traffic on the highway",
                         "filled up the tank this morning"],
            "sarcastic_implicit": ["oh great, another traffic jam", "just love paying for gas every week",
                                   "wow, a flat tyre on the highway, perfect timing"]},
    "cat": {"names": ["cat", "kitten"],
            "implicit": ["someone wants their dinner right now", "purring on my lap all evening", "found fur all over the sofa",
                         "the litter box needs cleaning"],
            "sarcastic_implicit": ["oh great, hairballs on the carpet again", "just love being woken at 5am by meowing",
                                   "wow, the sofa is scratched to pieces, thanks"]},
    "ball": {"names": ["ball", "football"],
             "implicit": ["who wants to play at the park", "the match starts at noon", "scored a goal at practice",
                          "the kids are playing in the garden"],
             "sarcastic_implicit": ["oh great, it went through the window again", "just love losing every single match",
                                    "wow, another goal against us, brilliant"]},
    "fish": {"names": ["fish", "goldfish"],
             "implicit": ["cleaning the aquarium today", "gone fishing at the lake", "bubbles in the tank",
                          "sushi night with friends"],
             "sarcastic_implicit": ["oh great, the aquarium is leaking again", "just love cleaning the tank every day",
                                    "wow, caught nothing at the lake all day, amazing"]},
    "flower": {"names": ["flower", "rose"],
               "implicit": ["spring is in the garden", "the bees are busy today", "a bouquet for my mother",
                            "the garden smells lovely"],
               "sarcastic_implicit": ["oh great, my allergies are back", "just love sneezing all spring",
                                      "wow, the weeds are winning again, fantastic"]},
}
EXPLICIT = ["look at this {adj}{name}", "a {adj}{name} in the picture", "my photo of a {adj}{name}",
            "here is a {adj}{name} for you", "this {adj}{name} made my day"]
SARCASTIC_EXPLICIT = ["oh great, another {adj}{name}, just what i needed", "wow, a {adj}{name}, how very exciting",
                      "yeah right, the most amazing {adj}{name} ever", "just love staring at a {adj}{name} all day"]
UNRELATED = ["my math homework is due tomorrow", "the meeting was moved to friday", "reading a good book tonight",
             "the bus was late this morning", "cooking pasta for dinner", "learning to play the guitar"]
SARCASTIC_UNRELATED = ["oh great, another meeting that could have been an email", "just love doing taxes on a sunday",
                       "wow, the printer is broken again, perfect", "yeah right, mondays are the best"]
ADJECTIVES = ["", "", "little ", "big ", "nice ", "bright "]


# ------------------------------------------------------------------------------------ drawing
def jitter(rng: random.Random, colour: tuple[int, int, int], amount: int = 30) -> tuple[int, int, int]:
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in colour)


def background(rng: random.Random) -> Image.Image:
    kind = rng.choice(["sky", "plain", "gradient", "stripes", "noise"])
    img = Image.new("RGB", (SIZE, SIZE), jitter(rng, (200, 200, 200), 50))
    d = ImageDraw.Draw(img)
    if kind == "sky":
        d.rectangle([0, 0, SIZE, SIZE * 2 // 3], fill=jitter(rng, (130, 180, 235)))
        d.rectangle([0, SIZE * 2 // 3, SIZE, SIZE], fill=jitter(rng, (90, 160, 80)))
    elif kind == "gradient":
        a, b = jitter(rng, (60, 60, 120), 60), jitter(rng, (230, 220, 200), 25)
        for y in range(SIZE):
            t = y / (SIZE - 1)
            d.line([0, y, SIZE, y], fill=tuple(int(a[i] * (1 - t) + b[i] * t) for i in range(3)))
    elif kind == "stripes":
        c = jitter(rng, (170, 170, 190), 60)
        for x in range(0, SIZE, rng.randint(12, 24)):
            d.rectangle([x, 0, x + 5, SIZE], fill=c)
    elif kind == "noise":
        for _ in range(60):
            x, y = rng.randrange(SIZE), rng.randrange(SIZE)
            r = rng.randint(2, 6)
            d.ellipse([x - r, y - r, x + r, y + r], fill=jitter(rng, (150, 150, 150), 80))
    return img


def draw_object(d: ImageDraw.ImageDraw, rng: random.Random, kind: str) -> None:
    s = rng.randint(40, 62)                         # half size
    cx, cy = rng.randint(s + 4, SIZE - s - 4), rng.randint(s + 4, SIZE - s - 4)
    if kind == "sun":
        r = s * 0.55
        for i in range(12):
            a = i * math.pi / 6
            d.line([cx, cy, cx + math.cos(a) * s, cy + math.sin(a) * s], fill=jitter(rng, (250, 200, 30)), width=4)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=jitter(rng, (255, 215, 40)))
    elif kind == "house":
        wall = jitter(rng, (200, 120, 80), 50)
        d.rectangle([cx - s * 0.8, cy - s * 0.1, cx + s * 0.8, cy + s], fill=wall)
        d.polygon([(cx - s, cy - s * 0.1), (cx, cy - s), (cx + s, cy - s * 0.1)], fill=jitter(rng, (150, 40, 40)))
        d.rectangle([cx - s * 0.2, cy + s * 0.4, cx + s * 0.2, cy + s], fill=jitter(rng, (90, 60, 30)))
        d.rectangle([cx + s * 0.35, cy + s * 0.1, cx + s * 0.65, cy + s * 0.4], fill=jitter(rng, (180, 220, 250)))
    elif kind == "tree":
        d.rectangle([cx - s * 0.15, cy, cx + s * 0.15, cy + s], fill=jitter(rng, (110, 70, 30)))
        for dx, dy in ((0, -0.4), (-0.4, -0.05), (0.4, -0.05)):
            r = s * 0.5
            x, y = cx + dx * s, cy + dy * s
            d.ellipse([x - r, y - r, x + r, y + r], fill=jitter(rng, (40, 140, 50), 35))
    elif kind == "car":
        body = jitter(rng, rng.choice([(200, 30, 30), (30, 60, 200), (230, 230, 230), (30, 30, 30)]), 25)
        d.rectangle([cx - s, cy - s * 0.1, cx + s, cy + s * 0.4], fill=body)
        d.polygon([(cx - s * 0.55, cy - s * 0.1), (cx - s * 0.3, cy - s * 0.5), (cx + s * 0.35, cy - s * 0.5),
                   (cx + s * 0.6, cy - s * 0.1)], fill=body)
        d.rectangle([cx - s * 0.25, cy - s * 0.42, cx + s * 0.3, cy - s * 0.12], fill=(190, 220, 240))
        for wx in (-0.55, 0.55):
            r = s * 0.25
            d.ellipse([cx + wx * s - r, cy + s * 0.4 - r, cx + wx * s + r, cy + s * 0.4 + r], fill=(20, 20, 20))
    elif kind == "cat":
        fur = jitter(rng, rng.choice([(240, 150, 50), (90, 90, 90), (230, 230, 220)]), 25)
        d.polygon([(cx - s * 0.8, cy - s * 0.2), (cx - s * 0.6, cy - s), (cx - s * 0.2, cy - s * 0.55)], fill=fur)
        d.polygon([(cx + s * 0.8, cy - s * 0.2), (cx + s * 0.6, cy - s), (cx + s * 0.2, cy - s * 0.55)], fill=fur)
        d.ellipse([cx - s * 0.85, cy - s * 0.7, cx + s * 0.85, cy + s * 0.8], fill=fur)
        for ex in (-0.35, 0.35):
            d.ellipse([cx + ex * s - s * 0.12, cy - s * 0.2, cx + ex * s + s * 0.12, cy + s * 0.05], fill=(40, 160, 60))
        d.polygon([(cx - s * 0.1, cy + s * 0.15), (cx + s * 0.1, cy + s * 0.15), (cx, cy + s * 0.3)], fill=(230, 120, 150))
        for side in (-1, 1):
            for dy in (0.25, 0.4):
                d.line([cx + side * s * 0.2, cy + s * dy, cx + side * s * 0.95, cy + s * (dy - 0.1)], fill=(20, 20, 20), width=2)
    elif kind == "ball":
        r = s * 0.8
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(245, 245, 245), outline=(20, 20, 20), width=3)
        for dx, dy in ((0, 0), (-0.45, -0.45), (0.45, -0.45), (-0.5, 0.4), (0.5, 0.4)):
            q = s * 0.18
            d.regular_polygon((cx + dx * s, cy + dy * s, q), 5, fill=(20, 20, 20))
    elif kind == "fish":
        body = jitter(rng, (250, 140, 20), 30)
        d.ellipse([cx - s * 0.8, cy - s * 0.45, cx + s * 0.5, cy + s * 0.45], fill=body)
        d.polygon([(cx + s * 0.4, cy), (cx + s, cy - s * 0.45), (cx + s, cy + s * 0.45)], fill=body)
        d.ellipse([cx - s * 0.55, cy - s * 0.15, cx - s * 0.4, cy], fill=(10, 10, 10))
    elif kind == "flower":
        d.line([cx, cy, cx, cy + s], fill=(40, 130, 40), width=5)
        petal = jitter(rng, rng.choice([(230, 40, 80), (250, 200, 230), (160, 80, 220)]), 25)
        for i in range(6):
            a = i * math.pi / 3
            x, y, r = cx + math.cos(a) * s * 0.4, cy - s * 0.2 + math.sin(a) * s * 0.4, s * 0.28
            d.ellipse([x - r, y - r, x + r, y + r], fill=petal)
        r = s * 0.2
        d.ellipse([cx - r, cy - s * 0.2 - r, cx + r, cy - s * 0.2 + r], fill=(250, 210, 40))


def draw(rng: random.Random, kind: str, path: Path) -> None:
    img = background(rng)
    draw_object(ImageDraw.Draw(img), rng, kind)
    img.save(path, "JPEG", quality=rng.choice([80, 88, 95]))


# ----------------------------------------------------------------------------------- captions
def caption(rng: random.Random, kind: str, relation: str, sarcastic: bool) -> str:
    spec = OBJECTS[kind]
    adj = rng.choice(ADJECTIVES)
    if relation == "explicit":
        template = rng.choice(SARCASTIC_EXPLICIT if sarcastic else EXPLICIT)
        return template.format(adj=adj, name=rng.choice(spec["names"]))
    if relation == "implicit":
        return rng.choice(spec["sarcastic_implicit"] if sarcastic else spec["implicit"])
    # Irrelevant: about another object (named or not), or about nothing in any picture.
    other = rng.choice([k for k in OBJECTS if k != kind])
    if rng.random() < 0.6:
        return caption(rng, other, rng.choice(["explicit", "implicit"]), sarcastic)
    return rng.choice(SARCASTIC_UNRELATED if sarcastic else UNRELATED)


def make_posts(rng: random.Random, count: int, prefix: str, images: Path, per_image: int) -> list[dict]:
    """`count` posts; each drawn picture is shared by `per_image` consecutive posts whose captions
    take turns through explicit, implicit and irrelevant, so one picture is seen with each relation
    (the relation then depends on the pair, not on the picture alone)."""
    posts = []
    kinds = list(OBJECTS)
    relations = ["explicit", "implicit", "irrelevant"]
    picture, kind = None, None
    for i in range(count):
        post_id = f"{prefix}{i:04d}"
        if i % per_image == 0:
            n = i // per_image
            kind = kinds[n % len(kinds)]
            picture = f"images/{prefix}img{n:04d}.jpg"
            draw(rng, kind, images / Path(picture).name)
        relation = relations[(i // (per_image * len(kinds)) + i) % 3] if per_image > 1 \
            else relations[(i // len(kinds)) % 3]
        sarcastic = rng.random() < 0.5
        post: dict = {"id": post_id, "text": caption(rng, kind, relation, sarcastic)}
        if rng.random() < 0.1:
            post["correlation"] = None        # no image: no image-text relation to judge
        else:
            post["image"] = picture
            post["correlation"] = relation
        post["sarcasm"] = "sarcastic" if sarcastic else "not_sarcastic"
        posts.append(post)
    rng.shuffle(posts)
    return posts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "models" / "synthetic"))
    parser.add_argument("--train", type=int, default=360)
    parser.add_argument("--test", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--captions-per-image", type=int, default=3,
                        help="training posts per drawn picture (the test split always draws one per post)")
    args = parser.parse_args()
    out = Path(args.out)
    if (out / "images").exists():
        shutil.rmtree(out / "images")
    (out / "images").mkdir(parents=True)
    rng = random.Random(args.seed)
    for split, count, per_image in (("train", args.train, args.captions_per_image), ("test", args.test, 1)):
        posts = make_posts(rng, count, f"{split}-", out / "images", max(1, per_image))
        (out / f"{split}.jsonl").write_text("".join(json.dumps(p) + "\n" for p in posts))
    print(f"wrote {out}: {args.train} train and {args.test} test posts")


if __name__ == "__main__":
    main()
