#!/usr/bin/env python3
"""ONNX Runtime baseline for the EfficientNet-Lite0 forward pass, on the same converted weights.

The ONNX graph is built here with onnx.helper from models/efficientnet-lite0/{config.json,
model.safetensors} (no torch): Conv (asymmetric TF-"same" pads from config.json) ->
BatchNormalization (eps from config.json, left for ORT's optimiser to fold, as it would be in an
exported model) -> Clip(0, 6), residual Add, GlobalAveragePool, Flatten, Gemm. Inputs NCHW
[B, 3, 224, 224]; outputs logits [B, 1000] and the head's feature map [B, 1280, 7, 7].

Checks the graph against the converter's numpy reference outputs first (logits within 1e-3), then
times batch 1 and 16 (medians of timed runs after a warm-up, wall and process CPU time) and prints
one JSON object: {"engine": "onnxruntime", "version": ..., "threads": T, "results": [{"batch",
"median_s", "images_per_s", "median_cpu_s", "images_per_cpu_s", "min_cpu_s", "runs"}]}

With --int8 the graph is first quantized by ONNX Runtime's static quantization (QDQ, int8
weights per output channel, uint8 activations: the u8 x s8 products that VNNI runs), calibrated on
the 18 whole photos of models/correlation-images (the default MinMax calibration; drawn images
from models/synthetic did no better); before timing it reports how often its top-1 ImageNet class
is the fp32 graph's on the 216 photo views of BF16ImageAccuracyTests (models/correlation-images,
whole, four corner crops and a centre crop of 70%, each mirrored) and the least pooled-logit
cosine (the views are crops of the calibration photos, which flatters int8), and the engine is
named onnxruntime-int8.

With --int8 PATH the quantized graph is read from PATH when it exists, else made and saved there
(bench/image/efficientnet.sh quantizes once per run and reuses it in later rounds).

Usage: models/.venv/bin/python bench/image/efficientnet_ort.py [--threads T] [--model DIR] [--int8 PATH]
Needs: numpy, safetensors, onnx, onnxruntime (bench/image/run.sh installs the pinned versions).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[2]


def build_graph(folder: Path) -> onnx.ModelProto:
    cfg = json.loads((folder / "config.json").read_text())
    t = load_file(str(folder / "model.safetensors"))
    eps = cfg["batch_norm_epsilon"]
    nodes, inits = [], []
    counter = iter(range(1_000_000))

    def init(name: str) -> str:
        inits.append(numpy_helper.from_array(t[name].astype(np.float32), name))
        return name

    def conv_bn(x: str, weight: str, bn: str, stride: int = 1, pad=((0, 0), (0, 0)), groups: int = 1,
                relu6: bool = True) -> str:
        n = next(counter)
        (top, bottom), (left, right) = pad
        nodes.append(helper.make_node("Conv", [x, init(weight)], [f"conv{n}"], strides=[stride, stride],
                                      pads=[top, left, bottom, right], group=groups))
        nodes.append(helper.make_node("BatchNormalization", [f"conv{n}"] + [init(f"{bn}.{p}") for p in
                                      ("weight", "bias", "running_mean", "running_var")], [f"bn{n}"], epsilon=eps))
        if not relu6:
            return f"bn{n}"
        nodes.append(helper.make_node("Clip", [f"bn{n}", "zero", "six"], [f"act{n}"]))
        return f"act{n}"

    inits += [numpy_helper.from_array(np.array(0, np.float32), "zero"),
              numpy_helper.from_array(np.array(6, np.float32), "six")]
    s = cfg["stem"]
    x = conv_bn("pixels", s["weight"], s["batch_norm"], s["stride"], (s["padding_top_bottom"], s["padding_left_right"]))
    for b in cfg["blocks"]:
        p = f"_blocks.{b['index']}."
        inp = x
        if b["has_expand_conv"]:
            x = conv_bn(x, p + "_expand_conv.weight", p + "_bn0")
        hidden = t[p + "_depthwise_conv.weight"].shape[0]
        x = conv_bn(x, p + "_depthwise_conv.weight", p + "_bn1", b["stride"],
                    (b["padding_top_bottom"], b["padding_left_right"]), groups=hidden)
        x = conv_bn(x, p + "_project_conv.weight", p + "_bn2", relu6=False)
        if b["residual"]:
            nodes.append(helper.make_node("Add", [x, inp], [f"res{b['index']}"]))
            x = f"res{b['index']}"
    h = cfg["head"]
    features = conv_bn(x, h["weight"], h["batch_norm"])
    nodes.append(helper.make_node("Identity", [features], ["features"]))
    nodes.append(helper.make_node("GlobalAveragePool", ["features"], ["pooled4d"]))
    nodes.append(helper.make_node("Flatten", ["pooled4d"], ["pooled"], axis=1))
    c = cfg["classifier"]
    nodes.append(helper.make_node("Gemm", ["pooled", init(c["weight"]), init(c["bias"])], ["logits"], transB=1))
    size = cfg["image_size"]
    graph = helper.make_graph(
        nodes, "efficientnet_lite0",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", None]),
         helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", None, None, None])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def preprocessor(folder: Path):
    """RGB array -> [1, 3, 224, 224] input, by the numpy reference of the engine's preprocessing."""
    sys.path.insert(0, str(ROOT / "tools" / "images"))
    from preprocess_reference import preprocess
    config = json.loads((folder / "config.json").read_text())["preprocess"]
    return lambda rgb: preprocess(np.ascontiguousarray(rgb), config)[None].astype(np.float32)


def quantized(graph: onnx.ModelProto, folder: Path, path: Path) -> Path:
    """`path`, holding the graph after ONNX Runtime's static int8 quantization calibrated on the
    correlation photos: made there unless it already exists."""
    if path.exists():
        return path
    import tempfile
    from PIL import Image
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    images = sorted((ROOT / "models" / "correlation-images").glob("*.jpg"))
    if not images:
        sys.exit("no calibration images in models/correlation-images: run scripts/setup-models.sh")
    prepare = preprocessor(folder)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.inputs = iter([{"pixels": prepare(np.asarray(Image.open(p).convert("RGB")))} for p in images])

        def get_next(self):
            return next(self.inputs, None)

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "fp32.onnx"
        onnx.save(graph, str(src))
        quantize_static(str(src), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return path


def agreement(fp32: ort.InferenceSession, int8: ort.InferenceSession, folder: Path) -> dict:
    """How often int8's top-1 class is fp32's on the 216 photo views, and the least logit cosine."""
    from PIL import Image

    prepare = preprocessor(folder)
    same, views, worst = 0, 0, 1.0
    for path in sorted((ROOT / "models" / "correlation-images").glob("*.jpg")):
        im = np.asarray(Image.open(path).convert("RGB"))
        h, w = im.shape[0] * 7 // 10, im.shape[1] * 7 // 10
        H, W = im.shape[:2]
        crops = [im] + [im[y:y + h, x:x + w] for x, y in [(0, 0), (W - w, 0), (0, H - h), (W - w, H - h),
                                                             ((W - w) // 2, (H - h) // 2)]]
        for view in crops + [c[:, ::-1] for c in crops]:
            x = prepare(view)
            a = fp32.run(["logits"], {"pixels": x})[0][0]
            b = int8.run(["logits"], {"pixels": x})[0][0]
            same += int(a.argmax() == b.argmax())
            views += 1
            worst = min(worst, float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)))
    return {"int8_same_top1": same, "int8_views": views, "int8_logit_cosine_min": worst}


def check(session: ort.InferenceSession, folder: Path) -> float:
    """Largest logit difference from the numpy reference over its photos."""
    ref = folder / "reference"
    index = json.loads((ref / "index.json").read_text())
    worst = 0.0
    for photo in index["photos"]:
        x = np.fromfile(ref / f"{photo['photo']}.input.f32", "<f4").reshape(1, 3, 224, 224)
        logits = session.run(["logits"], {"pixels": x})[0][0]
        worst = max(worst, float(np.abs(logits - np.fromfile(ref / f"{photo['photo']}.logits.f32", "<f4")).max()))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "efficientnet-lite0")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--min-seconds", type=float, default=5.0)
    ap.add_argument("--int8", type=Path, metavar="PATH",
                    help="time the statically quantized int8 graph, read from PATH or made and saved there")
    args = ap.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    graph = build_graph(args.model)
    session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
    worst = check(session, args.model)
    if worst > 1e-3:
        sys.exit(f"the ONNX graph disagrees with the numpy reference: max logit difference {worst}")
    engine, extra = "onnxruntime", {}
    if args.int8:
        fp32_session = session
        session = ort.InferenceSession(str(quantized(graph, args.model, args.int8)), options,
                                       providers=["CPUExecutionProvider"])
        extra = agreement(fp32_session, session, args.model)
        engine = "onnxruntime-int8"
        print(f"bench onnxruntime int8: top-1 as fp32 on {extra['int8_same_top1']} of {extra['int8_views']} photo views, "
              f"logit cosine min {extra['int8_logit_cosine_min']:.5f}", file=sys.stderr)
    rng = np.random.default_rng(0)
    results = []
    for batch in [int(b) for b in args.batches.split(",")]:
        x = rng.uniform(-1, 1, (batch, 3, 224, 224)).astype(np.float32)
        session.run(["logits", "features"], {"pixels": x})  # warm-up
        # Wall and process CPU seconds per run: on a shared machine CPU time moves much less than
        # wall time when other processes take turns on the cores.
        times, cpu_times, start = [], [], time.perf_counter()
        while len(times) < 5 or time.perf_counter() - start < args.min_seconds:
            t0, c0 = time.perf_counter(), time.process_time()
            session.run(["logits", "features"], {"pixels": x})
            cpu_times.append(time.process_time() - c0)
            times.append(time.perf_counter() - t0)
        m, cpu = statistics.median(times), statistics.median(cpu_times)
        results.append({"batch": batch, "median_s": m, "images_per_s": batch / m, "runs": len(times),
                        "median_cpu_s": cpu, "images_per_cpu_s": batch / cpu, "min_cpu_s": min(cpu_times)})
        print(f"bench {engine} batch {batch}: {batch / m:.1f} images/s, {batch / cpu:.1f} images per CPU second "
              f"(best run {batch / min(cpu_times):.1f})", file=sys.stderr)
    print(json.dumps({"engine": engine, "version": ort.__version__, "threads": args.threads,
                      "max_logit_difference_vs_reference": worst, "results": results, **extra}, sort_keys=True))


if __name__ == "__main__":
    main()
