"""Tokenising posts the way the engine does: the checkpoint's tokenizer.json (BERT uncased
WordPiece, [CLS] ... [SEP]) truncated to the bundle's max_tokens, padded per batch."""
from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer


class PostTokenizer:
    """Ids of each text, at most `max_tokens` with [CLS] and [SEP] (the manifest's max_tokens)."""

    def __init__(self, encoder_folder: str | Path, max_tokens: int = 77):
        self.tokenizer = Tokenizer.from_file(str(Path(encoder_folder) / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_tokens)
        self.max_tokens = max_tokens

    def ids(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(texts)]


def pad(batch: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids [B, L] (0-padded) and mask [B, L] for sequences of different lengths."""
    length = max(len(s) for s in batch)
    ids = torch.zeros(len(batch), length, dtype=torch.long)
    mask = torch.zeros(len(batch), length, dtype=torch.long)
    for b, seq in enumerate(batch):
        ids[b, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[b, :len(seq)] = 1
    return ids, mask
