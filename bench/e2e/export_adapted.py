"""ONNX graphs for a sarcasm head that carries LoRA adapters (manifest `text_adapter`), so the Python
service of bench/e2e does what postclassd does for such a bundle: one shared MiniLM pass that also
returns the input of the first adapted layer, then the head's own copy of the layers from there
with the adapters merged (W + B·A, as Sources/Model/Bert/BertAdapter.swift merges them at load).

Writes, next to bench/model's graph (models/all-MiniLM-L6-v2/bench/):
  keep-<k>.onnx             inputs input_ids, attention_mask; outputs last_hidden_state and
                            layer_input (the hidden states entering layer k)
  adapted-<sha16>.onnx      inputs layer_input, attention_mask; outputs last_hidden_state of the
                            adapted layers k..end (sha16: the adapter file's sha256, first 16 hex)
and checks both against transformers' BertModel with the merged weights (max abs diff <= 1e-4).

Runs in models/.bench-venv (torch, transformers, onnx, onnxruntime: bench/model/run.sh installs it).
Usage: python bench/e2e/export_adapted.py ENCODER_DIR ADAPTER.safetensors   (prints the two paths)
"""
from __future__ import annotations

import copy
import hashlib
import re
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from safetensors.torch import load_file
from transformers import BertModel

LORA = re.compile(r"^encoder\.layer\.(\d+)\.(.+\.weight)\.lora_([AB])$")


def merged_model(base: BertModel, adapter: Path) -> tuple[BertModel, int]:
    """A copy of `base` with every adapted weight replaced by W + B·A, and the first adapted layer."""
    factors: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in load_file(str(adapter)).items():
        m = LORA.match(name)
        if not m:
            sys.exit(f"{adapter}: '{name}' is not a LoRA factor (encoder.layer.<i>.<weight>.lora_A/B)")
        factors.setdefault(name[: -len(".lora_A")], {})[m.group(3)] = tensor.float()
    model = copy.deepcopy(base)
    params = dict(model.named_parameters())
    for weight, pair in factors.items():
        if set(pair) != {"A", "B"} or weight not in params:
            sys.exit(f"{adapter}: '{weight}' lacks a factor or names no weight of the encoder")
        with torch.no_grad():
            params[weight] += pair["B"] @ pair["A"]
    first = min(int(LORA.match(w + ".lora_A").group(1)) for w in factors)
    return model, first


def additive_mask(mask: torch.Tensor) -> torch.Tensor:
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


class KeepInput(torch.nn.Module):
    def __init__(self, model: BertModel, layer: int):
        super().__init__()
        self.model, self.layer = model, layer

    def forward(self, input_ids, attention_mask):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return out.last_hidden_state, out.hidden_states[self.layer]


class Layers(torch.nn.Module):
    def __init__(self, model: BertModel, first: int):
        super().__init__()
        self.layers = torch.nn.ModuleList(model.encoder.layer[first:])

    def forward(self, layer_input, attention_mask):
        h, mask = layer_input, additive_mask(attention_mask)
        for layer in self.layers:
            out = layer(h, attention_mask=mask)
            h = out[0] if isinstance(out, tuple) else out
        return h


def export(module, args, path: Path, inputs: list[str], outputs: list[str]) -> None:
    axes = {name: {0: "batch", 1: "length"} for name in inputs + outputs}
    torch.onnx.export(module.eval(), args, str(path), input_names=inputs, output_names=outputs,
                      dynamic_axes=axes, opset_version=17, dynamo=False)


def main() -> None:
    encoder, adapter = Path(sys.argv[1]), Path(sys.argv[2])
    out = encoder / "bench"
    out.mkdir(parents=True, exist_ok=True)
    base = BertModel.from_pretrained(str(encoder), attn_implementation="eager").eval()
    adapted, first = merged_model(base, adapter)
    keep_path = out / f"keep-{first}.onnx"
    adapted_path = out / f"adapted-{hashlib.sha256(adapter.read_bytes()).hexdigest()[:16]}.onnx"

    rng = np.random.default_rng(0)
    ids = torch.from_numpy(rng.integers(1000, 20000, (3, 21))).long()
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0
    mask[2, 7:] = 0
    with torch.no_grad():
        if not keep_path.exists():
            export(KeepInput(base, first), (ids, mask), keep_path, ["input_ids", "attention_mask"],
                   ["last_hidden_state", "layer_input"])
        if not adapted_path.exists():
            hidden = base(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[first]
            export(Layers(adapted, first), (hidden, mask), adapted_path, ["layer_input", "attention_mask"],
                   ["last_hidden_state"])
        # Checked on other shapes than the traced ones: the graphs must take any batch and length.
        ids = torch.from_numpy(rng.integers(1000, 20000, (4, 37))).long()
        mask = torch.ones_like(ids)
        mask[0, 30:] = 0
        mask[3, 5:] = 0
        expected = adapted(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
        expected_base = base(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()

    feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    last, kept = ort.InferenceSession(str(keep_path), providers=["CPUExecutionProvider"]).run(None, feeds)
    states = ort.InferenceSession(str(adapted_path), providers=["CPUExecutionProvider"]).run(
        None, {"layer_input": kept, "attention_mask": feeds["attention_mask"]})[0]
    valid = feeds["attention_mask"].astype(bool)
    worst = max(float(np.abs(last - expected_base)[valid].max()), float(np.abs(states - expected)[valid].max()))
    if worst > 1e-4:
        sys.exit(f"the exported graphs differ from transformers by {worst:.2e} (> 1e-4): delete {keep_path} "
                 f"and {adapted_path} and export again")
    print(keep_path)
    print(adapted_path)


if __name__ == "__main__":
    main()
