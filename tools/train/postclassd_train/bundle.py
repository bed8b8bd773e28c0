"""Writing a bundle folder the engine loads: a base bundle's encoders with new or replaced heads.

The engine confines a bundle's paths to its folder and the folder's parent (ModelBundle.checkInside),
so the encoders are linked when the base bundle's component folders are siblings of the new bundle
(e.g. both under models/, as scripts/setup-models.sh lays them out) and copied otherwise.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

COMPONENTS = ("text_encoder", "image_encoder", "word_vectors")


def write_bundle(out: Path, base: Path, heads: list[dict], name: str, description: str) -> Path:
    """Writes out/manifest.json: `base`'s manifest with each of `heads` replacing the base head of
    the same task (or added), and each encoder component linked or copied into `out`. The heads'
    files must already be in `out`. Returns the manifest's path."""
    out, base = Path(out).resolve(), Path(base).resolve()
    manifest = json.loads((base / "manifest.json").read_text())
    for key in COMPONENTS:
        component = manifest.get(key)
        if not component:
            continue
        source = (base / component["path"]).resolve()
        target = out / component["path"]
        if target.is_symlink() or target.exists():
            if target.is_symlink() or target.is_file():
                target.unlink()
            else:
                shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.parent == out.parent:
            os.symlink(os.path.relpath(source, target.parent), target)
        else:
            shutil.copytree(source, target)
    by_task = {h["task"]: h for h in heads}
    manifest["heads"] = [by_task.pop(h["task"], h) for h in manifest["heads"]] + list(by_task.values())
    manifest["name"] = name
    manifest["description"] = description
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path
