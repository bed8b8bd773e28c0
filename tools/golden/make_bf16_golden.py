"""Builds the bf16 fixture: rounding cases, packed-product cases and the tiny BERT with bf16
products, all from tools/reference (committed, tens of KB).

Writes Tests/ModelTests/Fixtures/bf16/:
  rounding.json: float32 bit patterns (ties both ways, carries into the exponent, the largest
    finite values, infinities, NaNs, subnormals, random values) and the bf16 bits of
    `bf16_reference.bf16_bits`, checked here against the neighbour-by-neighbour rounding;
  products.json + products.safetensors: random products (shapes that reach the paths of both
    bodies: odd input counts, partial panels, odd last panels, blocks of rows that are not
    multiples of 12), their shapes and relu6 in the JSON, and per case c the tensors c{c}.x,
    c{c}.w, c{c}.bias, c{c}.residual (where there is one) and c{c}.expected, the float64
    `packed_product_bf16` stored as float32;
  tiny-bert-bf16.safetensors: per text i of the tiny-bert fixture, t{i}.layer{j} and
    t{i}.sentence of `bert_reference.forward(..., bf16_products=True)` (float32).

Run: models/.venv/bin/python tools/golden/make_bf16_golden.py   (after make_tiny_bert.py)
The seed is fixed, so the output is the same on every run.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "reference"))
import bert_reference  # noqa: E402
from bf16_reference import bf16_bits, packed_product_bf16, round_to_bf16, round_to_bf16_exact  # noqa: E402

SEED = 20261206
OUT = ROOT / "Tests" / "ModelTests" / "Fixtures" / "bf16"
TINY_BERT = ROOT / "Tests" / "ModelTests" / "Fixtures" / "tiny-bert"
# (rows, inputs, outputs, relu6, residual)
PRODUCTS = [(1, 384, 64, False, False), (7, 21, 45, False, True), (13, 96, 40, True, True), (3, 5, 17, False, False),
            (25, 1, 3, True, False), (30, 64, 72, False, True)]


def rounding_cases(rng: np.random.Generator) -> list[int]:
    special = [0x00000000, 0x80000000, 0x3F800000, 0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F808001, 0xBF818000,
               0x7F7FFFFF, 0x7F7F8000, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFFF0001,
               0x00000001, 0x00008000, 0x00018000, 0x007FFFFF, 0x80008000, 0x477FFFFF, 0x33FF8000, 0x3EAAAAAB]
    return special + [int(u) for u in rng.integers(0, 2**32, size=200, dtype=np.uint64)]


def main() -> None:
    rng = np.random.default_rng(SEED)
    OUT.mkdir(parents=True, exist_ok=True)

    bits = np.array(rounding_cases(rng), dtype=np.uint32)
    values = bits.view(np.float32)
    got = bf16_bits(values)
    finite = np.isfinite(values)
    # The bit rounding against the neighbour rounding wherever the value is finite.
    assert np.array_equal(round_to_bf16(values[finite]).view(np.uint32),
                          round_to_bf16_exact(values[finite]).view(np.uint32)), "the two roundings disagree"
    (OUT / "rounding.json").write_text(json.dumps(
        {"float_bits": [int(b) for b in bits], "bf16_bits": [int(b) for b in got]}) + "\n")

    cases, tensors = [], {}
    for c, (rows, inputs, outputs, relu6, residual) in enumerate(PRODUCTS):
        x = (rng.standard_normal((rows, inputs)) * 2).astype(np.float32)
        w = (rng.standard_normal((outputs, inputs)) * 0.2).astype(np.float32)
        bias = rng.standard_normal(outputs).astype(np.float32)
        res = rng.standard_normal((rows, outputs)).astype(np.float32) if residual else None
        y = packed_product_bf16(x, w, bias, res, relu6)
        cases.append({"rows": rows, "inputs": inputs, "outputs": outputs, "relu6": relu6, "residual": residual})
        tensors.update({f"c{c}.x": x, f"c{c}.w": w, f"c{c}.bias": bias, f"c{c}.expected": y.astype(np.float32)})
        if res is not None:
            tensors[f"c{c}.residual"] = res
    (OUT / "products.json").write_text(json.dumps({"cases": cases}, indent=1) + "\n")
    save_file(tensors, str(OUT / "products.safetensors"))

    weights, config = bert_reference.load_checkpoint(TINY_BERT)
    golden = json.loads((TINY_BERT / "expected.json").read_text())
    expected = {}
    for i, ids in enumerate(golden["ids"]):
        stages = bert_reference.forward(weights, config, ids, bf16_products=True)
        for j, layer in enumerate(stages["layers"]):
            expected[f"t{i}.layer{j}"] = layer.astype(np.float32)
        expected[f"t{i}.sentence"] = stages["sentence"].astype(np.float32)
    save_file(expected, str(OUT / "tiny-bert-bf16.safetensors"))
    for path in OUT.iterdir():
        path.chmod(0o644)  # save_file creates files 0600; keep the committed modes ordinary


if __name__ == "__main__":
    main()
