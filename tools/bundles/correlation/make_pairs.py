"""Writes the correlation evaluation set: openly licensed photos as JPEGs, and captioned pairs.

Usage: models/.venv/bin/python tools/bundles/correlation/make_pairs.py
           [--images models/correlation-images] [--pairs tools/bundles/correlation/pairs.tsv]

Every photo ships inside an installed wheel (scikit-image's bundled samples, scikit-learn's
china.jpg and flower.jpg, matplotlib's grace_hopper.jpg): nothing is downloaded. Each photo has
nine hand-written captions, three per label (explicit: the text says what the picture shows;
implicit: about something related, not naming it; irrelevant: unrelated). Photos are split
between `tune` (thresholds and coefficients may be chosen on these) and `report` (nothing is
chosen on these) by a seeded shuffle of the photos, so no photo is in both splits.
The JPEGs (git-ignored) go under models/; the pairs TSV is committed.
"""
import argparse
import random
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
SPLIT_SEED = 28

# name -> (loader description, licence). Loaders are resolved in load_photo.
PHOTOS = {
    "astronaut": ("skimage.data.astronaut", "public domain (NASA portrait of Eileen Collins)"),
    "camera": ("skimage.data.camera", "CC0 (photographer Lav Varshney)"),
    "chelsea": ("skimage.data.chelsea", "CC0 (photographer Stefan van der Walt)"),
    "coffee": ("skimage.data.coffee", "CC0 (photographer Rachel Michetti)"),
    "coins": ("skimage.data.coins", "no known copyright restrictions (Brooklyn Museum collection)"),
    "rocket": ("skimage.data.rocket", "public domain (SpaceX)"),
    "hubble": ("skimage.data.hubble_deep_field", "public domain (NASA)"),
    "clock": ("skimage.data.clock", "public domain (photographer Stefan van der Walt)"),
    "brick": ("skimage.data.brick", "CC0 (CC0Textures Bricks25)"),
    "grass": ("skimage.data.grass", "CC0 (DeviantArt, linolafett)"),
    "gravel": ("skimage.data.gravel", "CC0 (CC0Textures Gravel04)"),
    "retina": ("skimage.data.retina", "CC0 1.0 (Wikimedia Commons, Mikael Haggstrom)"),
    "horse": ("skimage.data.horse", "CC0 (openclipart, Andreas Preuss)"),
    "notes": ("skimage.data.text", "public domain (Wikipedia File:Corner.png)"),
    "tissue": ("skimage.data.immunohistochemistry", "no known copyright restrictions"),
    "pagoda": ("sklearn china.jpg", "CC BY 2.0 (Flickr, danielbuechele)"),
    "dahlia": ("sklearn flower.jpg", "CC BY 2.0 (Flickr, vultilion)"),
    "hopper": ("matplotlib sample_data grace_hopper.jpg", "public domain (official US Navy photograph)"),
}

# photo -> {label: [captions]}. Written like posts; explicit ones name what is shown in ordinary
# words, implicit ones are about something related without naming it.
CAPTIONS = {
    "astronaut": {
        "explicit": ["official portrait of an astronaut in her spacesuit",
                     "astronaut posing next to the american flag, so proud",
                     "NASA portrait day: flight suit, flag, big smile"],
        "implicit": ["she has logged hundreds of hours in orbit and still answers fan mail",
                     "zero gravity training in the pool starts monday",
                     "mission patch sewn on, ready for launch week"],
        "irrelevant": ["can anyone recommend a decent plumber in leeds",
                       "this soup recipe needs way more garlic",
                       "lost my headphones on the bus again"],
    },
    "camera": {
        "explicit": ["old black and white shot of a photographer with his camera on a tripod",
                     "a man behind a film camera in the park",
                     "cameraman setting up his tripod on the lawn"],
        "implicit": ["waiting for the perfect light takes patience",
                     "developing my own film this weekend, wish me luck",
                     "f/8 and be there, as they say"],
        "irrelevant": ["the price of oat milk is out of control",
                       "my sourdough starter died :(",
                       "traffic on the ring road is a nightmare today"],
    },
    "chelsea": {
        "explicit": ["my tabby cat staring me down",
                     "look at this cat's whiskers",
                     "our kitty doing her judgy face"],
        "implicit": ["someone knocked my mug off the table again",
                     "3am zoomies woke up the whole house",
                     "who needs an alarm clock when breakfast is demanded at 5"],
        "irrelevant": ["the quarterly report is finally done",
                       "rain all week, of course",
                       "new tyres on the bike today"],
    },
    "coffee": {
        "explicit": ["first coffee of the day, in my favourite cup",
                     "flat white in a proper china cup and saucer",
                     "a cup of coffee with a little spoon"],
        "implicit": ["can't function before nine without caffeine",
                     "the barista spelled my name wrong again",
                     "ran out of beans, panic mode"],
        "irrelevant": ["the match went to penalties and we lost",
                       "booked flights to lisbon!!",
                       "my tomatoes finally turned red"],
    },
    "coins": {
        "explicit": ["a tray of ancient greek coins",
                     "old silver coins laid out in rows",
                     "grandad's coin collection, finally sorted"],
        "implicit": ["numismatics club meets thursday, bring your magnifier",
                     "these drachmas have survived two thousand years",
                     "the museum's roman hoard exhibit is worth the trip"],
        "irrelevant": ["my dog learned to open the fridge",
                       "pasta night again",
                       "can't believe it snowed in april"],
    },
    "rocket": {
        "explicit": ["rocket on the launch pad at dawn",
                     "the falcon 9 rocket standing ready",
                     "a rocket on the pad before liftoff"],
        "implicit": ["t minus ten minutes and counting",
                     "the whole beach shook when it went up",
                     "another batch of satellites heading to orbit tonight"],
        "irrelevant": ["knitting a scarf for my niece",
                       "the dentist was fine actually",
                       "new season of my favourite show drops friday"],
    },
    "hubble": {
        "explicit": ["the hubble deep field, thousands of galaxies",
                     "galaxies scattered across deep space",
                     "a telescope image full of distant galaxies"],
        "implicit": ["makes you feel very small, doesn't it",
                     "light that left before the earth even existed",
                     "stargazing tonight if the clouds clear"],
        "irrelevant": ["cleaned out the garage finally",
                       "my kid scored her first goal",
                       "the printer at work is jammed again"],
    },
    "clock": {
        "explicit": ["the old wall clock in the kitchen",
                     "blurry photo of a clock, my hands were shaking",
                     "a round clock face on the wall"],
        "implicit": ["is it five o'clock yet",
                     "daylight saving always messes me up",
                     "running late as usual, sorry everyone"],
        "irrelevant": ["best burrito in town, no contest",
                       "we adopted two goldfish",
                       "my favourite band just announced a tour"],
    },
    "brick": {
        "explicit": ["close up of an old brick wall",
                     "rows of bricks and mortar",
                     "the brick wall behind our house"],
        "implicit": ["the builders finally finished the extension",
                     "my back hurts from building the garden wall",
                     "the third little pig had the right idea"],
        "irrelevant": ["best pizza I've had since naples",
                       "train cancelled, working from the station cafe",
                       "happy birthday mum!"],
    },
    "grass": {
        "explicit": ["blades of grass up close",
                     "freshly cut grass in the back garden",
                     "just grass, nothing else, but I like the texture"],
        "implicit": ["hay fever season has started, my eyes are streaming",
                     "first barbecue of the summer in the back garden",
                     "the sheep next door would love this"],
        "irrelevant": ["my laptop battery died mid meeting",
                       "learning to play the ukulele",
                       "the stock market looks rough this week"],
    },
    "gravel": {
        "explicit": ["a path of loose gravel",
                     "pebbles and gravel on the driveway",
                     "close-up of small grey stones on the path"],
        "implicit": ["the new driveway crunches every time someone arrives",
                     "my bike skidded on the path again",
                     "landscaping the front yard this weekend"],
        "irrelevant": ["the wedding was beautiful",
                       "exam results come out tomorrow",
                       "my cat refuses to eat the new food"],
    },
    "retina": {
        "explicit": ["photo of the back of my eye from the optician",
                     "my retina scan, look at all the blood vessels",
                     "a fundus photograph of a healthy eye"],
        "implicit": ["they put drops in and now everything is too bright",
                     "the optometrist says my prescription hasn't changed",
                     "can't read anything for hours after the dilation"],
        "irrelevant": ["new sofa arrived",
                       "marathon training, week six",
                       "making jam with the kids"],
    },
    "horse": {
        "explicit": ["a black silhouette of a horse",
                     "horse outline for the stable sign",
                     "shape of a horse standing still"],
        "implicit": ["riding lessons start saturday",
                     "the paddock needs new fencing before spring",
                     "mucking out at 6am builds character"],
        "irrelevant": ["the library is closing early today",
                       "my code finally compiles",
                       "painted the bathroom blue"],
    },
    "notes": {
        "explicit": ["my handwritten maths notes",
                     "equations scribbled on a page of my notebook",
                     "handwriting on paper, calculus homework"],
        "implicit": ["exam tomorrow and I still don't get integration",
                     "the professor went way too fast today",
                     "coffee and problem sets all night"],
        "irrelevant": ["we got a puppy!!",
                       "beach day",
                       "the bakery sold out of croissants"],
    },
    "tissue": {
        "explicit": ["stained tissue under the microscope",
                     "a microscope slide of stained cells",
                     "histology slide, the brown stain marks the protein"],
        "implicit": ["pathology lab late shift again",
                     "my thesis finally has its figures",
                     "the antibody worked on the third try"],
        "irrelevant": ["my neighbour's hedge is out of control",
                       "went ice skating for the first time in years",
                       "this week's crossword beat me"],
    },
    "pagoda": {
        "explicit": ["the pagoda at the summer palace",
                     "a tall chinese temple tower above the trees",
                     "temple on the hill overlooking the lake"],
        "implicit": ["beijing in autumn is unbeatable",
                     "climbed so many steps my legs are jelly",
                     "the tour guide told us all about the emperors"],
        "irrelevant": ["my bread rose perfectly",
                       "spreadsheet hell all afternoon",
                       "can't find my keys anywhere"],
    },
    "dahlia": {
        "explicit": ["an orange dahlia in full bloom",
                     "this flower in my garden today",
                     "close-up of an orange flower with lots of petals"],
        "implicit": ["the bees have been busy all morning",
                     "spring has finally sprung",
                     "grandma's garden always smelled like this"],
        "irrelevant": ["the printer needs ink again",
                       "power cut on the whole street",
                       "cricket practice cancelled"],
    },
    "hopper": {
        "explicit": ["portrait of grace hopper in her navy uniform",
                     "an old photo of an admiral with her medals",
                     "a navy officer in uniform in front of the flag"],
        "implicit": ["she found the first actual bug in the computer",
                     "it's easier to ask forgiveness than permission",
                     "COBOL still runs half the banks"],
        "irrelevant": ["my basil plant died",
                       "new running shoes arrived",
                       "the lake froze over last night"],
    },
}

LABELS = ["explicit", "implicit", "irrelevant"]


def load_photo(name: str) -> np.ndarray:
    source = PHOTOS[name][0]
    if source.startswith("skimage.data."):
        import skimage.data
        return np.asarray(getattr(skimage.data, source.rsplit(".", 1)[1])())
    if source.startswith("sklearn "):
        from sklearn.datasets import load_sample_image
        return load_sample_image(source.split(" ", 1)[1])
    if source.startswith("matplotlib "):
        import matplotlib.cbook
        with matplotlib.cbook.get_sample_data(source.rsplit(" ", 1)[1]) as f:
            return np.asarray(Image.open(f).convert("RGB"))
    raise ValueError(source)


def splits() -> dict[str, str]:
    names = sorted(PHOTOS)
    random.Random(SPLIT_SEED).shuffle(names)
    half = len(names) // 2
    return {name: ("tune" if i < half else "report") for i, name in enumerate(names)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=Path, default=ROOT / "models/correlation-images")
    ap.add_argument("--pairs", type=Path, default=ROOT / "tools/bundles/correlation/pairs.tsv")
    args = ap.parse_args()
    assert set(PHOTOS) == set(CAPTIONS), "every photo needs captions"
    args.images.mkdir(parents=True, exist_ok=True)
    sources = []
    for name, (source, licence) in PHOTOS.items():
        pixels = load_photo(name)
        if pixels.dtype == bool:
            pixels = pixels.astype(np.uint8) * 255
        image = Image.fromarray(pixels).convert("RGB")
        image.save(args.images / f"{name}.jpg", quality=90)
        sources.append(f"{name}.jpg\t{source}\t{licence}")
    (args.images / "SOURCES.tsv").write_text("photo\tsource\tlicence\n" + "\n".join(sources) + "\n")
    split = splits()
    rows = ["# Correlation pairs (tools/bundles/correlation/make_pairs.py writes this file; edit the script).",
            "# split\tphoto (models/correlation-images)\tlabel\ttext"]
    for name in PHOTOS:
        for label in LABELS:
            assert len(CAPTIONS[name][label]) == 3, (name, label)
            for text in CAPTIONS[name][label]:
                rows.append(f"{split[name]}\t{name}.jpg\t{label}\t{text}")
    args.pairs.write_text("\n".join(rows) + "\n")
    counts = {s: sum(1 for r in rows if r.startswith(s + "\t")) for s in ("tune", "report")}
    print(f"wrote {len(PHOTOS)} photos to {args.images}; pairs {counts} to {args.pairs}")


if __name__ == "__main__":
    main()
