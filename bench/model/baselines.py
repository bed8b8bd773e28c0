"""Baselines for bench/model/run.sh: PyTorch CPU (transformers' BertModel) and ONNX Runtime on the
same all-MiniLM-L6-v2 weights, exported to ONNX once with torch.onnx (cached next to the model),
and ONNX Runtime on that graph after its int8 dynamic quantization (`quantize_dynamic`, int8
weights with per-channel scales, activations quantized per call; on a CPU with VNNI its int8
products use it), the
reduced-precision baseline an engineer would reach for first.

Optional tooling only: torch is large and never used in CI or the tests.
Prints one JSON object: per engine, per batch size, the median seconds and sentences per second,
plus the max abs difference between transformers and the numpy reference on a few sentences
(an independent check of tools/reference/bert_reference.py).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "reference"))


def measure(fn, min_runs=5, min_seconds=3.0):
    fn()
    times, start = [], time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def inputs(batch: int, length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 30000, size=(batch, length), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    return ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "models" / "all-MiniLM-L6-v2"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--accuracy-only", action="store_true",
                        help="print the int8 accuracy check (and the reference cross-check) without timing anything")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    from transformers import BertModel

    model = BertModel.from_pretrained(args.model, attn_implementation="eager").eval()
    report = {"threads": args.threads, "length": args.length, "torch": torch.__version__, "engines": {}}

    # Cross-check of the numpy reference against transformers.
    import bert_reference
    weights, config = bert_reference.load_checkpoint(args.model)
    worst = 0.0
    for seed in range(3):
        ids = inputs(1, 20 + 7 * seed, seed)
        with torch.no_grad():
            hf = model(input_ids=torch.from_numpy(ids)).last_hidden_state[0].numpy()
        ref = bert_reference.forward(weights, config, ids[0].tolist())["layers"][-1]
        worst = max(worst, float(np.abs(hf - ref).max()))
    report["numpy_reference_vs_transformers_max_abs"] = worst

    onnx_path = Path(args.model) / "bench" / "model.onnx"
    if not onnx_path.exists():
        onnx_path.parent.mkdir(parents=True, exist_ok=True)
        example = torch.from_numpy(inputs(2, 16, 0))

        class Wrapper(torch.nn.Module):
            # Positional (ids, mask) for the exporter; BertModel's own positional order varies by version.
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask):
                return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        torch.onnx.export(Wrapper(model).eval(), (example, torch.ones_like(example)), str(onnx_path),
                          input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "length"},
                                        "attention_mask": {0: "batch", 1: "length"},
                                        "last_hidden_state": {0: "batch", 1: "length"}},
                          opset_version=17, dynamo=False)
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    report["onnxruntime"] = ort.__version__

    # Per-channel weight scales: quantize_dynamic's default, one scale per tensor, loses far more
    # accuracy on this model (figures in bench/model/README.md), and a baseline takes its best setting.
    int8_path = onnx_path.with_name("model-int8-per-channel.onnx")
    if not int8_path.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic
        quantize_dynamic(str(onnx_path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True)
    session_int8 = ort.InferenceSession(str(int8_path), options, providers=["CPUExecutionProvider"])
    # What int8 costs in accuracy, so that its speed is read beside it: token-state cosines
    # against fp32 ONNX Runtime on the first 1,000 tweets of iSarcasmEval's training set, the
    # sentences the engine's bf16 guard uses (BF16AccuracyTests: min >= 0.999), padding excluded.
    import csv
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(str(Path(args.model) / "tokenizer.json"))
    tokenizer.enable_truncation(128)
    tweets_file = ROOT.parent / "shared" / "data" / "isarcasmeval" / "train.En.csv"
    with open(tweets_file, newline="", encoding="utf-8") as f:
        tweets = [row["tweet"] for row in csv.DictReader(f) if row.get("tweet")][:1000]
    cosines, sentence_cosines = [], []
    for start in range(0, len(tweets), 32):
        encodings = tokenizer.encode_batch(tweets[start:start + 32])
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, e in enumerate(encodings):
            ids[i, :len(e.ids)], mask[i, :len(e.ids)] = e.ids, 1
        feed = {"input_ids": ids, "attention_mask": mask}
        a, b = session.run(None, feed)[0], session_int8.run(None, feed)[0]
        # Sentence vectors as the bundles take them: the mean of the real tokens' states.
        weights = mask[..., None]
        pa, pb = (a * weights).sum(1) / weights.sum(1), (b * weights).sum(1) / weights.sum(1)
        sentence_cosines.append((pa * pb).sum(1) / (np.linalg.norm(pa, axis=1) * np.linalg.norm(pb, axis=1)))
        real = mask.astype(bool)
        a, b = a[real], b[real]
        cosines.append((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))
    cosines, sentence_cosines = np.concatenate(cosines), np.concatenate(sentence_cosines)
    report["onnxruntime_int8_token_cosine_min"] = float(cosines.min())
    report["onnxruntime_int8_token_cosine_mean"] = float(cosines.mean())
    report["onnxruntime_int8_token_cosine_below_0999"] = float((cosines < 0.999).mean())
    report["onnxruntime_int8_sentence_cosine_min"] = float(sentence_cosines.min())
    report["onnxruntime_int8_accuracy_sentences"] = len(tweets)
    if args.accuracy_only:
        print(json.dumps(report))
        return

    for engine in ["pytorch", "onnxruntime", "onnxruntime-int8"]:
        rows = []
        for batch in [1, 8, 32]:
            ids = inputs(batch, args.length, batch)
            mask = np.ones_like(ids)
            if engine == "pytorch":
                t_ids, t_mask = torch.from_numpy(ids), torch.from_numpy(mask)

                def run():
                    with torch.inference_mode():
                        model(input_ids=t_ids, attention_mask=t_mask)
            else:
                chosen = session if engine == "onnxruntime" else session_int8

                def run():
                    chosen.run(None, {"input_ids": ids, "attention_mask": mask})
            times = measure(run)
            m = statistics.median(times)
            rows.append({"batch": batch, "median_s": m, "sentences_per_s": batch / m, "runs": len(times)})
        report["engines"][engine] = rows
    print(json.dumps(report))


if __name__ == "__main__":
    main()
