"""The CLFA sarcasm head (MODEL-SPEC.md, "Sarcasm head: CLFA") in PyTorch, computing exactly what
the Swift engine computes (Sources/Model/CLFA) on padded batches, so a head trained here labels the
same way when served.

Parameter names are the engine's tensor names (the authors' code): `mlp_text.fc1/fc2`,
`mlp_image.fc1/fc2`, `attention_net.layer.{i}.{textSelfAttn,imageCrossAttn}.bertCoAttn.{query,key,value}`,
`....{textSelfAttn,imageCrossAttn}.output.{dense,LayerNorm}`, `attention_net.layer.{i}.intermediate.dense`,
`attention_net.layer.{i}.output.{dense,LayerNorm}`, `classifier`, and `no_image_token`. So
`safetensors.torch.save_file(head.state_dict(), "heads/sarcasm.safetensors")` writes the head file
a bundle names, and `head.manifest_config()` is its manifest `config`.

What the engine does with padding, mirrored here:
  * text keys past a post's length get the additive mask (1 - mask) * -10000 in `textSelfAttn`;
    padded text rows are computed but never read (the pooling is a masked mean);
  * image keys: a post with an image attends to its K tokens; under `learned_token` a post without
    one attends to the K0 rows of `mlp_image(no_image_token)` (the other key slots masked); under
    `text_only` it skips every `imageCrossAttn` (its states pass through unchanged);
  * a head without `mlp_image` (text-only head) ignores images altogether.
Dropout (training only) sits after the mapping nets and before the classifier; `eval()` turns it off.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

MASK_VALUE = -10000.0  # the spec's additive key mask, (1 - mask) * -10000
NO_IMAGE_RULES = ("learned_token", "text_only")


@dataclass
class CLFAShape:
    """Sizes and options of a head; those the weights imply are read back from them at load time."""
    text_width: int                      # d_t: the text encoder's width
    image_width: int | None = None       # d_i: the image encoder's region width; None = text-only head
    hidden: int = 512                    # h: width of the mapped tokens and the attention layers
    mapping_hidden: int = 1536           # width inside the mapping nets
    layers: int = 3
    text_self_attention: list[bool] | bool = True   # per layer, or for every layer
    inner: int = 2048                    # feed-forward width
    attention_heads: int = 8
    labels: int = 2
    no_image: str = "learned_token"      # "learned_token" or "text_only" (ignored by a text-only head)
    no_image_tokens: int = 1             # K0, rows of the learned no-image token
    layer_norm_eps: float = 1e-12
    dropout: float = 0.1

    def self_attention_flags(self) -> list[bool]:
        flags = self.text_self_attention
        return [bool(flags)] * self.layers if isinstance(flags, bool) else [bool(f) for f in flags]


class MappingNet(nn.Module):
    """Linear -> ReLU -> Linear per token (`mlp_text`, `mlp_image`)."""

    def __init__(self, width_in: int, hidden: int, width_out: int):
        super().__init__()
        self.fc1 = nn.Linear(width_in, hidden)
        self.fc2 = nn.Linear(hidden, width_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class _Projections(nn.Module):
    """The authors' `bertCoAttn`: query, key and value projections."""

    def __init__(self, hidden: int, width: int):
        super().__init__()
        self.query = nn.Linear(hidden, width)
        self.key = nn.Linear(hidden, width)
        self.value = nn.Linear(hidden, width)


class _Output(nn.Module):
    """`output.dense` + `output.LayerNorm` (post-LN residual)."""

    def __init__(self, width_in: int, hidden: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(width_in, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)


class CoAttention(nn.Module):
    """One attention sub-layer: multi-head attention of the text over `kv`, then LN(dense(ctx) + q)."""

    def __init__(self, hidden: int, heads: int, eps: float, width: int | None = None):
        super().__init__()
        width = width or hidden
        if width % heads:
            raise ValueError(f"attention width {width} does not split into {heads} heads")
        self.heads = heads
        self.bertCoAttn = _Projections(hidden, width)
        self.output = _Output(width, hidden, eps)

    def forward(self, q_in: torch.Tensor, kv_in: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        """q_in [B, Lq, h], kv_in [B, Lk, h], key_bias [B, Lk] additive (0 or -10000)."""
        b, lq, _ = q_in.shape
        lk = kv_in.shape[1]
        p = self.bertCoAttn
        width = p.query.out_features
        dh = width // self.heads

        def split(t: torch.Tensor, n: int) -> torch.Tensor:
            return t.view(b, n, self.heads, dh).transpose(1, 2)

        q, k, v = split(p.query(q_in), lq), split(p.key(kv_in), lk), split(p.value(kv_in), lk)
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh) + key_bias[:, None, None, :]
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, lq, width)
        return self.output.LayerNorm(self.output.dense(context) + q_in)


class _Intermediate(nn.Module):
    def __init__(self, hidden: int, inner: int):
        super().__init__()
        self.dense = nn.Linear(hidden, inner)


class CLFALayer(nn.Module):
    """`attention_net.layer.{i}`: optional textSelfAttn, optional imageCrossAttn, optional feed-forward."""

    def __init__(self, hidden: int, heads: int, eps: float, inner: int | None, self_attention: bool,
                 cross_attention: bool, attention_width: int | None = None):
        super().__init__()
        if self_attention:
            self.textSelfAttn = CoAttention(hidden, heads, eps, attention_width)
        if cross_attention:
            self.imageCrossAttn = CoAttention(hidden, heads, eps, attention_width)
        if inner:
            self.intermediate = _Intermediate(hidden, inner)
            self.output = _Output(inner, hidden, eps)

    def feed_forward(self, t: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "intermediate"):
            return t
        hidden = nn.functional.gelu(self.intermediate.dense(t))  # exact erf form
        return self.output.LayerNorm(self.output.dense(hidden) + t)


class _AttentionNet(nn.Module):
    def __init__(self, layers: list[CLFALayer]):
        super().__init__()
        self.layer = nn.ModuleList(layers)


class CLFAHead(nn.Module):
    """The head: mapping nets, `attention_net` layers, masked mean, classifier (see the module doc)."""

    def __init__(self, shape: CLFAShape):
        super().__init__()
        if shape.no_image not in NO_IMAGE_RULES:
            raise ValueError(f"no_image {shape.no_image!r}: use one of {NO_IMAGE_RULES}")
        self.shape = shape
        self.mlp_text = MappingNet(shape.text_width, shape.mapping_hidden, shape.hidden)
        has_image = shape.image_width is not None
        if has_image:
            self.mlp_image = MappingNet(shape.image_width, shape.mapping_hidden, shape.hidden)
            if shape.no_image == "learned_token":
                # Small values, like the embeddings it stands in for; trained with the head.
                self.no_image_token = nn.Parameter(torch.randn(shape.no_image_tokens, shape.image_width) * 0.02)
        self.attention_net = _AttentionNet([
            CLFALayer(shape.hidden, shape.attention_heads, shape.layer_norm_eps, shape.inner, flag, has_image)
            for flag in shape.self_attention_flags()])
        self.classifier = nn.Linear(shape.hidden, shape.labels)
        self.dropout = nn.Dropout(shape.dropout)

    @property
    def has_image_branch(self) -> bool:
        return hasattr(self, "mlp_image")

    def manifest_config(self, text_length: int = 77) -> dict:
        """The head's `config` in a bundle manifest (CLFAConfig in the engine)."""
        return {"attention_heads": self.shape.attention_heads, "layer_norm_eps": self.shape.layer_norm_eps,
                "text_length": text_length, "no_image": self.shape.no_image}

    def image_keys(self, image: torch.Tensor | None, has_image: torch.Tensor, batch: int, dtype, device
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """(keys [B, Kmax, h], key_bias [B, Kmax], attends [B] bool), or None when no post attends.

        Mirrors CLFAHead.imageKeys in the engine: own K tokens for posts with an image, the mapped
        no-image token's K0 rows (rest masked) for the others under `learned_token`.
        """
        if not self.has_image_branch:
            return None
        has_image = has_image.to(torch.bool)
        mapped = self.mlp_image(image) if image is not None and bool(has_image.any()) else None
        if self.shape.no_image == "text_only":
            if mapped is None:
                return None
            bias = torch.zeros(batch, mapped.shape[1], dtype=dtype, device=device)
            return mapped, bias, has_image
        token = self.mlp_image(self.no_image_token)                      # [K0, h]
        k0 = token.shape[0]
        k = mapped.shape[1] if mapped is not None else 0
        length = max(k, k0 if bool((~has_image).any()) else 0)
        keys = torch.zeros(batch, length, self.shape.hidden, dtype=dtype, device=device)
        valid = torch.zeros(batch, length, dtype=torch.bool, device=device)
        if mapped is not None:
            keys[has_image, :k] = mapped[has_image]
            valid[has_image, :k] = True
        keys[~has_image, :k0] = token.to(dtype)
        valid[~has_image, :k0] = True
        bias = (~valid).to(dtype) * MASK_VALUE
        return keys, bias, torch.ones(batch, dtype=torch.bool, device=device)

    def forward(self, text: torch.Tensor, text_mask: torch.Tensor, image: torch.Tensor | None = None,
                has_image: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, C].

        text [B, L, d_t] padded token states; text_mask [B, L] 1 for real tokens ([CLS] ... [SEP]);
        image [B, K, d_i] region tokens or None; has_image [B] bool (rows of posts without an image
        are ignored). Apply softmax for the probabilities the engine reports.
        """
        batch = text.shape[0]
        if has_image is None:
            has_image = torch.full((batch,), image is not None, dtype=torch.bool, device=text.device)
        mask = text_mask.to(text.dtype)
        t = self.dropout(self.mlp_text(text))
        text_bias = (1.0 - mask) * MASK_VALUE
        keys = self.image_keys(image, has_image, batch, t.dtype, t.device)
        if keys is not None:
            keys = (self.dropout(keys[0]), keys[1], keys[2])
        for layer in self.attention_net.layer:
            if hasattr(layer, "textSelfAttn"):
                t = layer.textSelfAttn(t, t, text_bias)
            if hasattr(layer, "imageCrossAttn") and keys is not None:
                attended = layer.imageCrossAttn(t, keys[0], keys[1])
                t = torch.where(keys[2][:, None, None], attended, t)
            t = layer.feed_forward(t)
        pooled = (t * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        return self.classifier(self.dropout(pooled))

    # ------------------------------------------------------------------------------ loading
    @classmethod
    def from_state_dict(cls, weights: dict[str, torch.Tensor], config: dict | None = None) -> "CLFAHead":
        """A head with the structure the weights imply (as the engine reads them) and their values.

        `config` is the manifest's head config (attention_heads, layer_norm_eps, no_image).
        """
        config = {"attention_heads": 8, "layer_norm_eps": 1e-12, "no_image": "learned_token", **(config or {})}
        w = weights
        n_layers = 0
        while any(k.startswith(f"attention_net.layer.{n_layers}.") for k in w):
            n_layers += 1
        first = "attention_net.layer.0."
        inner = w[first + "intermediate.dense.weight"].shape[0] if first + "intermediate.dense.weight" in w else 2048
        image_width = w["mlp_image.fc1.weight"].shape[1] if "mlp_image.fc1.weight" in w else None
        shape = CLFAShape(
            text_width=w["mlp_text.fc1.weight"].shape[1], image_width=image_width,
            hidden=w["mlp_text.fc2.weight"].shape[0], mapping_hidden=w["mlp_text.fc1.weight"].shape[0],
            layers=n_layers,
            text_self_attention=[f"attention_net.layer.{i}.textSelfAttn.bertCoAttn.query.weight" in w
                                 for i in range(n_layers)],
            inner=inner, attention_heads=int(config["attention_heads"]), labels=w["classifier.weight"].shape[0],
            no_image=config["no_image"],
            no_image_tokens=w["no_image_token"].shape[0] if "no_image_token" in w else 1,
            layer_norm_eps=float(config["layer_norm_eps"]), dropout=0.0)
        head = cls(shape)
        # Layers built above have every part; drop the ones these weights lack, as the engine does.
        for i, layer in enumerate(head.attention_net.layer):
            p = f"attention_net.layer.{i}."
            if p + "imageCrossAttn.bertCoAttn.query.weight" not in w and hasattr(layer, "imageCrossAttn"):
                del layer.imageCrossAttn
            if p + "intermediate.dense.weight" not in w and hasattr(layer, "intermediate"):
                del layer.intermediate
                del layer.output
            for sub in ("textSelfAttn", "imageCrossAttn"):
                name = p + sub + ".bertCoAttn.query.weight"
                if name in w and w[name].shape[0] != shape.hidden:
                    setattr(layer, sub, CoAttention(shape.hidden, shape.attention_heads, shape.layer_norm_eps,
                                                    w[name].shape[0]))
        head.load_state_dict({k: v.float() for k, v in w.items()}, strict=True)
        return head

    def settings(self) -> dict:
        """The shape as plain JSON values (for training records)."""
        return asdict(self.shape)
