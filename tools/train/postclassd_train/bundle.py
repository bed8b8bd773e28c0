"""Exporting a trained head as a model bundle the engine loads, and reading a base bundle.

A trained bundle reuses the base bundle's encoders and word vectors (they are frozen in training).
The engine accepts component folders inside the bundle or in its parent folder (ModelBundle.checkInside:
models/ as a whole is trusted), so each component is, in this order of preference:
  * a relative symbolic link when the component lives in the new bundle's parent folder (a bundle
    written under models/ links to ../all-MiniLM-L6-v2 as scripts/setup-models.sh links models/default);
  * a folder of hard links to the component's files (same file system, no extra space);
  * a copy.
The manifest copies the base's, with the trained head's entry replacing (or joining) the others;
the base's other heads come along with their weight files.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

COMPONENTS = ("text_encoder", "image_encoder", "word_vectors")


class BaseBundle:
    """A bundle folder's manifest, with its components' real folders."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        path = self.folder / "manifest.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: give a bundle folder (scripts/setup-models.sh builds models/default)")
        self.manifest = json.loads(path.read_text())

    def component(self, name: str) -> Path | None:
        entry = self.manifest.get(name)
        return None if entry is None else (self.folder / entry["path"]).resolve()

    @property
    def max_tokens(self) -> int:
        return int(self.manifest["text_encoder"].get("max_tokens", 77))

    def head(self, task: str) -> dict | None:
        return next((h for h in self.manifest["heads"] if h["task"] == task), None)


def head_files(entry: dict) -> list[str]:
    """The files a manifest head entry names (relative to its bundle): its weights, its text
    adapter, and files its config names (the zero-shot head's concept vectors)."""
    files = [entry.get("weights"), entry.get("text_adapter"), (entry.get("config") or {}).get("concept_vectors")]
    return [f for f in files if isinstance(f, str) and f]


def copy_head_files(entry: dict, source: Path, out: Path) -> None:
    """Copies the files of a base head that a new bundle keeps."""
    for relative in head_files(entry):
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, out / relative)


def _place(source: Path, target: Path) -> str:
    """Puts component folder `source` at `target` (see the module doc); says how."""
    bundle = target.parent.resolve()
    if source.parent == bundle.parent:
        target.symlink_to(os.path.relpath(source, bundle), target_is_directory=True)
        return "link"
    target.mkdir()
    how = "hard links"
    for file in sorted(source.rglob("*")):
        destination = target / file.relative_to(source)
        if file.is_dir():
            destination.mkdir(exist_ok=True)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(file.resolve(), destination)
        except OSError:
            shutil.copyfile(file, destination)
            how = "copy"
    return how


def _place_components(manifest: dict, base: BaseBundle, out: Path, only: set[str] | None = None) -> dict[str, str]:
    """Places each of the base's components (of COMPONENTS; with `only`, just those) in `out`,
    replacing whatever an earlier export left there, and points `manifest` at them; drops the
    others from `manifest`. Returns how each was placed."""
    placed = {}
    for component in COMPONENTS:
        source = base.component(component)
        if source is None or (only is not None and component not in only):
            manifest.pop(component, None)
            continue
        target = out / manifest[component]["path"].rstrip("/").split("/")[-1]
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target)
        placed[component] = _place(source, target)
        manifest[component]["path"] = target.name
    return placed


def export_bundle(out: str | Path, base: BaseBundle, task: str, kind: str, head: torch.nn.Module, labels: list[str],
                  config: dict, description: str, record: dict, name: str | None = None,
                  thresholds: dict[str, float] | None = None, only_head: set[str] | None = None) -> Path:
    """Writes the bundle folder `out` (must not exist, or be empty): manifest.json, the components,
    heads/<task>.safetensors (head.state_dict() in float32) and training.json (`record`).

    `only_head`: the components the head needs (of COMPONENTS); the bundle then holds this head
    alone and only those components (a smaller, faster bundle, e.g. text only), instead of the
    base's other heads and all its components."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty: choose a new --out or remove it")
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(json.dumps(base.manifest))
    placed = _place_components(manifest, base, out, only=only_head)
    (out / "heads").mkdir()
    heads = []
    for entry in manifest["heads"]:
        if entry["task"] == task or only_head is not None:
            continue
        copy_head_files(entry, base.folder, out)
        heads.append(entry)
    weights = f"heads/{task}.safetensors"
    state = {k: v.detach().to(torch.float32).contiguous() for k, v in head.state_dict().items()}
    save_file(state, str(out / weights))
    (out / weights).chmod(0o644)  # save_file makes 0600; the daemon may run as another user
    heads.append({"task": task, "kind": kind, "weights": weights, "labels": labels, "thresholds": thresholds or {},
                  "config": config, "description": description})
    manifest["heads"] = heads
    manifest["name"] = name or f"{base.manifest['name']}+{task}"
    manifest["description"] = (f"{description}; trained by tools/train (training.json) on the encoders of "
                               f"{base.manifest['name']} {base.manifest.get('version', '')}").strip()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (out / "training.json").write_text(json.dumps(dict(record, components=placed), indent=2) + "\n")
    return out


def write_bundle(out: Path, base: Path, heads: list[dict], name: str, description: str) -> Path:
    """Writes out/manifest.json: `base`'s manifest with each of `heads` (whose files are already in
    `out`) replacing the base head of the same task, and the components placed as `_place` does.
    The base's other heads come along with their weight files."""
    out, base_bundle = Path(out), BaseBundle(base)
    manifest = json.loads(json.dumps(base_bundle.manifest))
    _place_components(manifest, base_bundle, out)
    by_task = {h["task"]: h for h in heads}
    kept = []
    for entry in manifest["heads"]:
        if entry["task"] in by_task:
            kept.append(by_task.pop(entry["task"]))
            continue
        copy_head_files(entry, base_bundle.folder, out)
        kept.append(entry)
    manifest["heads"] = kept + list(by_task.values())
    manifest["name"] = name
    manifest["description"] = description
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path
