"""The AnANet correlation head (MODEL-SPEC.md, "Correlation head: AnANet") in PyTorch, computing
what the Swift engine computes (Sources/Model/AnANet), batched with padded words, and the word
features e_j exactly as the engine builds them (Sources/Model/WordVectors/WordFeatures.swift).

Parameter names are the engine's: `region_proj.{weight,bias}`, `gru.{weight,bias}_{ih,hh}_l0` and
`..._reverse` (an nn.GRU, gates r z n, hidden d/2 per direction), `association.proj.weight` (no
bias), `association.classifier.{weight,bias}`, `alignment.classifier.{weight,bias}`. So the
state dict saved with safetensors is the head file; `manifest_config()` is its manifest config.

Padding: the engine runs each post over its N valid words only; here the words are padded to
N_max, the GRU runs on packed sequences (so the reverse direction starts at the post's last word),
padded words get probability 0 in the softmax over words and t_j = 0, and a post with no words
has f_txt = 0, V^ = 0 (so v = 0), t = 0, as in the engine.

Training-only parts of the paper (P_img / P_txt, the invariant and orthogonal losses) are not
here: the trainer fits the logits with cross-entropy (choice).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

COSINE_EPS = 1e-8


@dataclass
class AnANetShape:
    """Sizes of a head. K (region_count) goes to the manifest config: the weights cannot tell it."""
    region_width: int          # d_r: the image encoder's region width
    region_count: int          # K
    word_width: int            # G + D_t: GloVe dims + text encoder width
    max_words: int = 32        # N_max
    width: int = 256           # d (GRU hidden d/2 per direction)
    projection: int = 200      # P, the paper's 200
    labels: int = 3
    lam: float = 0.7           # lambda
    eta: float = 1.3
    dropout: float = 0.1


class _Association(nn.Module):
    def __init__(self, width: int, projection: int, labels: int):
        super().__init__()
        self.proj = nn.Linear(width, projection, bias=False)
        self.classifier = nn.Linear(2 * projection, labels)


class _Alignment(nn.Module):
    def __init__(self, slots: int, labels: int):
        super().__init__()
        self.classifier = nn.Linear(slots, labels)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a.b / (max(|a|, eps) max(|b|, eps)) over the last axis (the engine's and torch's choice);
    the clamp sits under the square root so a zero row has a finite gradient."""
    na = (a * a).sum(-1).clamp(min=COSINE_EPS ** 2).sqrt()
    nb = (b * b).sum(-1).clamp(min=COSINE_EPS ** 2).sqrt()
    return (a * b).sum(-1) / (na * nb)


class AnANetHead(nn.Module):
    """The head over a batch: regions [B, K, d_r], words [B, N_max, W] with per-post counts."""

    def __init__(self, shape: AnANetShape):
        super().__init__()
        if shape.width % 2:
            raise ValueError(f"width {shape.width}: the BiGRU's two directions need an even d")
        self.shape = shape
        self.region_proj = nn.Linear(shape.region_width, shape.width)
        self.gru = nn.GRU(shape.word_width, shape.width // 2, batch_first=True, bidirectional=True)
        self.association = _Association(shape.width, shape.projection, shape.labels)
        self.alignment = _Alignment(shape.max_words + shape.region_count, shape.labels)
        self.dropout = nn.Dropout(shape.dropout)

    def manifest_config(self) -> dict:
        """The head's `config` in a bundle manifest (AnANetConfig in the engine)."""
        return {"region_count": self.shape.region_count, "lambda": self.shape.lam, "eta": self.shape.eta}

    def settings(self) -> dict:
        return asdict(self.shape)

    def forward(self, regions: torch.Tensor, words: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Logits [B, C]; softmax gives the engine's probabilities.

        regions [B, K, d_r]; words [B, N, W] (N <= N_max, rows past a post's count ignored);
        counts [B] valid words per post (0 allowed).
        """
        b, n, _ = words.shape
        k, slots = regions.shape[1], self.shape.max_words
        if n > slots:
            raise ValueError(f"{n} word rows, N_max is {slots}")
        counts = counts.to(torch.long).cpu()
        V = torch.relu(self.region_proj(regions))                                   # [B, K, d]
        # Packed so each direction sees only the post's words; empty posts run one dummy step
        # whose output is masked away below.
        packed = pack_padded_sequence(self.dropout(words), counts.clamp(min=1), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        T, _ = pad_packed_sequence(out, batch_first=True, total_length=n)            # [B, N, d]
        valid = torch.arange(n)[None, :] < counts[:, None]                          # [B, N]
        valid = valid.to(T.device)
        T = T * valid[..., None].to(T.dtype)

        f_img = V.mean(1)
        f_txt = T.sum(1) / counts.clamp(min=1).to(T.dtype)[:, None].to(T.device)
        r_g = torch.cat([self.association.proj(f_img), self.association.proj(f_txt)], dim=1)
        association = self.association.classifier(self.dropout(r_g))

        S = V @ T.transpose(1, 2)                                                    # [B, K, N]
        over_words = S.masked_fill(~valid[:, None, :], float("-inf")).softmax(-1)
        over_words = torch.nan_to_num(over_words, nan=0.0)                          # no words: V^ = 0
        V_hat = over_words @ T                                                       # [B, K, d]
        T_hat = S.softmax(1).transpose(1, 2) @ V                                     # [B, N, d]
        v = _cosine(V, V_hat)                                                        # [B, K]
        t = torch.where(valid, _cosine(T, T_hat), torch.zeros((), dtype=T.dtype))    # [B, N]
        t = nn.functional.pad(t, (0, slots - n))
        alignment = self.alignment.classifier(torch.cat([t, v], dim=1))
        return self.shape.lam * association + self.shape.eta * alignment

    @classmethod
    def from_state_dict(cls, weights: dict[str, torch.Tensor], config: dict) -> "AnANetHead":
        """A head with the weights' sizes and values; config holds region_count (and lambda, eta)."""
        k = int(config["region_count"])
        shape = AnANetShape(
            region_width=weights["region_proj.weight"].shape[1], region_count=k,
            word_width=weights["gru.weight_ih_l0"].shape[1],
            max_words=weights["alignment.classifier.weight"].shape[1] - k,
            width=weights["region_proj.weight"].shape[0], projection=weights["association.proj.weight"].shape[0],
            labels=weights["association.classifier.weight"].shape[0],
            lam=float(config.get("lambda", 0.7)), eta=float(config.get("eta", 1.3)), dropout=0.0)
        head = cls(shape)
        head.load_state_dict({k_: v.float() for k_, v in weights.items()}, strict=True)
        return head


# ------------------------------------------------------------------------------- word features
class WordVectorTable:
    """A converted GloVe folder (tools/convert_glove.py, the engine's WordVectors): word -> vector,
    a word it lacks -> zeros. A repeated word keeps its first row, as the engine's index does."""

    def __init__(self, folder: str | Path):
        import json

        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        self.vectors = np.fromfile(folder / "vectors.f32", dtype="<f4").reshape(config["count"], config["dims"])
        words = (folder / "words.txt").read_text(encoding="utf-8").split("\n")[:-1]
        if len(words) != config["count"]:
            raise ValueError(f"{folder}: {len(words)} words but config.json says {config['count']}")
        self.lookup: dict[str, int] = {}
        for i, w in enumerate(words):
            self.lookup.setdefault(w, i)

    @property
    def dims(self) -> int:
        return self.vectors.shape[1]

    def vector(self, word: str) -> np.ndarray:
        row = self.lookup.get(word)
        return self.vectors[row] if row is not None else np.zeros(self.dims, dtype=np.float32)


class WordSpanTokenizer:
    """Ids and words (normalised text, piece range) as the engine's `encodeWords` gives them, from
    the text encoder's tokenizer.json (the engine's tokenizer is tested against this derivation,
    Tests/ModelTests/Fixtures/ananet/word-spans.jsonl)."""

    def __init__(self, encoder_folder: str | Path, max_tokens: int):
        import sys

        from tokenizers import Tokenizer

        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "reference"))
        import ananet_reference

        self._spans = ananet_reference.word_spans
        self.tokenizer = Tokenizer.from_file(str(Path(encoder_folder) / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.max_tokens = max_tokens

    def __call__(self, text: str) -> tuple[list[int], list[tuple[str, int, int]]]:
        return self._spans(self.tokenizer, text, self.max_tokens)


def word_features(spans: list[tuple[str, int, int]], token_states: torch.Tensor, table: WordVectorTable,
                  max_words: int) -> torch.Tensor:
    """e_j = [glove(w_j) ; mean of the word's piece states] for the first max_words words: [N, G + D]."""
    rows = []
    for word, start, end in spans[:max_words]:
        glove = torch.from_numpy(table.vector(word).astype(np.float32)).to(token_states.dtype)
        rows.append(torch.cat([glove, token_states[start:end].mean(0)]))
    if not rows:
        return token_states.new_zeros(0, table.dims + token_states.shape[1])
    return torch.stack(rows)


def pad_words(features: list[torch.Tensor], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, N, W] zero-padded to the longest post (at least 1) and the counts [B]."""
    n = max([f.shape[0] for f in features] + [1])
    out = torch.zeros(len(features), n, width, dtype=features[0].dtype if features else torch.float32)
    for b, f in enumerate(features):
        out[b, :f.shape[0]] = f
    return out, torch.tensor([f.shape[0] for f in features])
