"""Does bench/e2e's Python service compute what postclassd computes? Labels and probabilities of
pymodel.Bundle against `postclassd classify` on the same posts: the correlation pairs
(tools/bundles/correlation/pairs.tsv, real photos) and the sarcasm examples
(tools/bundles/default/sarcasm-examples.jsonl, text only), in batches of `--batch`.
A bench whose two sides did different work would not be a comparison; run.sh runs this first.

Usage: models/.venv/bin/python bench/e2e/check_mirror.py --bin .build/release [--model models/default]
Exit 0 when
- the sarcasm head's probabilities are within 1e-4 of postclassd's and its labels equal (text only:
  both sides run the same arithmetic on the same tokens);
- the Python zero-shot scorer is within 1e-4 of tools/reference/zero_shot_reference.py on the same
  inputs (the reference is what the Swift scorer's golden test holds it to);
- the correlation labels agree on at least --min-agreement (0.95) of the posts. They cannot agree
  exactly: Pillow's decode-and-resize and postclassd's give slightly different pixels, hence image
  logits, and the calibrated head is a steep logistic of them; the report gives the spread.
"""
from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pymodel import Bundle, zero_shot_reference  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def posts() -> list[dict]:
    out = []
    images = ROOT / "models" / "correlation-images"
    for n, line in enumerate((ROOT / "tools/bundles/correlation/pairs.tsv").read_text().splitlines()):
        if line.startswith("#") or not line.strip():
            continue
        _, photo, _, text = line.split("\t")
        out.append({"id": f"pair-{n}", "text": text,
                    "image": base64.b64encode((images / photo).read_bytes()).decode()})
    for line in (ROOT / "tools/bundles/default/sarcasm-examples.jsonl").read_text().splitlines():
        row = json.loads(line)
        out.append({"id": row["id"], "text": row["text"]})
    return out


def python_labels(bundle: Bundle, batch: list[dict], reference, scorer_diff: list[float]) -> list[dict]:
    images = [bundle.load_image(base64.b64decode(p["image"])) if p.get("image") else None for p in batch]
    ids, mask, words = bundle.tokenize([p["text"] for p in batch])
    states, sentences, kept = bundle.text_states(ids, mask)
    rows = [i for i, x in enumerate(images) if x is not None]
    logits = bundle.image_logits(np.stack([images[i] for i in rows])) if rows else None
    sarcasm = bundle.sarcasm_labels(states, mask, kept)
    out = []
    for b, p in enumerate(batch):
        correlation = Bundle.no_image("correlation")
        if images[b] is not None:
            correlation = bundle.correlation_label(logits[rows.index(b)], sentences[b], words[b], states[b])
            texts = [w for w, _ in words[b].items]
            ours = bundle.zero_shot["scorer"].score(logits[rows.index(b)], sentences[b], texts)["probabilities"]
            scorer_diff.append(float(np.abs(ours - reference.score(logits[rows.index(b)], sentences[b], texts)["probabilities"]).max()))
        out.append({"sarcasm": sarcasm[b], "correlation": correlation})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, required=True, help="folder of the postclassd binary")
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--min-agreement", type=float, default=0.95)
    a = ap.parse_args()

    all_posts = posts()
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        f.write("".join(json.dumps(p) + "\n" for p in all_posts))
    # fp32, as the Python service computes: the same work is the question here. The bench itself
    # runs postclassd at its default precision (auto: bf16 where the CPU runs it fast).
    run = subprocess.run([str(a.bin / "postclassd"), "classify", f.name, "--model", str(a.model),
                          "--batch-size", str(a.batch), "--precision", "fp32"], capture_output=True, text=True)
    Path(f.name).unlink()
    if run.returncode != 0:
        sys.exit(f"postclassd classify failed ({run.returncode}): {run.stderr[-2000:]}")
    swift = {r["id"]: r for r in map(json.loads, run.stdout.splitlines())}

    bundle = Bundle(a.model, threads=1)
    manifest = json.loads((a.model / "manifest.json").read_text())
    head = next(h for h in manifest["heads"] if h["kind"] == "zero_shot_imagenet")
    image_dir = (a.model / manifest["image_encoder"]["path"]).resolve()
    reference = zero_shot_reference.Scorer(
        head["config"], bundle.zero_shot["scorer"].concepts, (image_dir / "imagenet_classes.txt").read_text().splitlines(),
        zero_shot_reference.load_word_vectors((a.model / manifest["word_vectors"]["path"]).resolve()))
    diffs, disagreements, scorer_diff = {"sarcasm": [], "correlation": []}, {"sarcasm": [], "correlation": []}, []
    for start in range(0, len(all_posts), a.batch):
        batch = all_posts[start:start + a.batch]
        for post, mine in zip(batch, python_labels(bundle, batch, reference, scorer_diff)):
            theirs = swift[post["id"]]["labels"]
            for task in ("sarcasm", "correlation"):
                ours, other = mine[task], theirs[task]
                if ours["label"] != other["label"]:
                    disagreements[task].append(f"{post['id']} {task}: python {ours['label']} {ours['probabilities']}, "
                                               f"postclassd {other['label']} {other.get('probabilities')}")
                if ours["probabilities"]:
                    diffs[task].append(max(abs(p - other["probabilities"][label]) for label, p in ours["probabilities"].items()))
    with_images = sum("image" in p for p in all_posts)
    print(f"{len(all_posts)} posts ({with_images} with images), batch {a.batch}")
    for task in ("sarcasm", "correlation"):
        d = np.array(diffs[task])
        print(f"  {task}: |p_python - p_postclassd| median {np.median(d):.2e}, p95 {np.quantile(d, 0.95):.2e}, "
              f"max {d.max():.2e}; labels differ on {len(disagreements[task])} of {len(d)}")
        for line in disagreements[task]:
            print("    " + line)
    print(f"  zero-shot scorer vs tools/reference/zero_shot_reference.py: max {max(scorer_diff):.2e}")
    agreement = 1 - len(disagreements["correlation"]) / max(1, with_images)
    failed = [f"sarcasm differs by {max(diffs['sarcasm']):.2e} (> 1e-4)" for _ in [0] if max(diffs["sarcasm"]) > 1e-4]
    failed += [f"sarcasm labels differ on {len(disagreements['sarcasm'])} posts" for _ in [0] if disagreements["sarcasm"]]
    failed += [f"the scorer differs from its reference by {max(scorer_diff):.2e}" for _ in [0] if max(scorer_diff) > 1e-4]
    failed += [f"correlation labels agree on {agreement:.3f} < {a.min_agreement}" for _ in [0] if agreement < a.min_agreement]
    if failed:
        sys.exit("the Python service does not mirror postclassd: " + "; ".join(failed))


if __name__ == "__main__":
    main()
