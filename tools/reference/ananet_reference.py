"""Numpy reference of the AnANet correlation head (MODEL-SPEC.md, "Correlation head: AnANet") and of
the word features it reads, the yardstick for the Swift engine's golden tests.

Written for clarity, not speed: one post at a time, float64 throughout, every stage returned. It
follows the spec's padded formulation literally (words padded to N_max, padded words masked out of
the softmax over words, t_j = 0 for them), while the Swift engine computes over valid words only:
the golden test checks the two agree.

Choices the spec leaves open, made identically in the Swift engine:
  * Words are the BERT pre-tokenizer's words (after lower-casing, accent stripping, punctuation
    split) as `tokenizers` reports them in `Encoding.word_ids`; a special token typed in the text
    (e.g. "[MASK]") is a word whose text is the token itself. A word's text for the GloVe lookup is
    the normaliser's output for its span of the original text.
  * Words whose pieces are cut by truncation are dropped; of the remaining words only the first
    N_max are used.
  * ctx(w) = mean of the text-encoder states of the word's pieces; a word missing from GloVe gets a
    zero GloVe part.
  * A post with 0 words: f_txt = 0, t = 0 (all N_max entries), V^ = 0, so v = 0.
  * cos(a, b) = a.b / (max(|a|, 1e-8) max(|b|, 1e-8)) (torch's cosine_similarity), 0 for a zero vector.

Tensor names (all float, PyTorch [out, in] layout): region_proj.{weight,bias} (Wv), gru.weight_ih_l0,
gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0 and the same with _reverse (gates r, z, n; hidden
d/2 per direction), association.proj.weight (W, d -> P, no bias), association.classifier.{weight,bias}
(W_g, 2P -> C), alignment.classifier.{weight,bias} (W_l, N_max + K -> C).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

COSINE_EPS = 1e-8


# ----------------------------------------------------------------------------------- word vectors
def load_word_vectors(folder: str | Path) -> tuple[dict[str, int], np.ndarray]:
    """Reads a converted GloVe folder (tools/convert_glove.py): ({word: row}, [count, dims] float32)."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    vectors = np.fromfile(folder / "vectors.f32", dtype="<f4").reshape(config["count"], config["dims"])
    words = (folder / "words.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(words) == config["count"], f"{len(words)} words, config says {config['count']}"
    lookup: dict[str, int] = {}
    for i, w in enumerate(words):
        lookup.setdefault(w, i)  # a repeated word keeps its first row, as in the Swift index
    return lookup, vectors


def write_word_vectors(folder: str | Path, words: list[str], vectors: np.ndarray, source: dict) -> None:
    """Writes the folder format tools/convert_glove.py makes (used for the tiny test table)."""
    import hashlib

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vectors.f32").write_bytes(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
    (folder / "words.txt").write_text("".join(w + "\n" for w in words), encoding="utf-8", newline="\n")
    sums = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in ("vectors.f32", "words.txt")}
    config = {"dims": int(vectors.shape[1]), "count": len(words), "source": source, "sha256": sums}
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")


# ------------------------------------------------------------------------------------ word spans
def word_spans(tokenizer, text: str, max_length: int) -> tuple[list[int], list[tuple[str, int, int]]]:
    """The ids ([CLS] ... [SEP], truncated to max_length) and the words: (text, start, end) with
    ids[start:end] the word's pieces (so start >= 1, after [CLS]).

    `tokenizer` is a `tokenizers.Tokenizer` with truncation and padding off.
    """
    encoding = tokenizer.encode(text)
    ids, word_ids, offsets = encoding.ids, encoding.word_ids, encoding.offsets
    specials = {i: t.content for i, t in tokenizer.get_added_tokens_decoder().items() if t.special}
    spans: list[tuple[str, int, int]] = []
    position = 0
    while position < len(ids):
        if word_ids[position] is None:
            position += 1
            continue
        start = position
        while position < len(ids) and word_ids[position] == word_ids[start]:
            position += 1
        original = text[offsets[start][0]:offsets[position - 1][1]]
        if position - start == 1 and specials.get(ids[start]) == original:
            word = original  # a special token typed in the text (an [UNK] from WordPiece is not one)
        else:
            # strip(): the normaliser surrounds a CJK ideograph with spaces.
            word = tokenizer.normalizer.normalize_str(original).strip()
        spans.append((word, start, position))
    # Truncation as `tokenizers` does it for one sequence: keep the first max_length - 2 pieces.
    body_end = 1 + max(0, max_length - 2)
    if len(ids) - 1 > body_end:
        ids = ids[:body_end] + [ids[-1]]
    return ids, [s for s in spans if s[2] <= body_end]


def word_features(spans, token_states: np.ndarray, lookup: dict[str, int], vectors: np.ndarray,
                  max_words: int) -> np.ndarray:
    """e_j = [glove(w_j) ; mean of the word's piece states] for the first max_words words: [N, G + D_t]."""
    rows = []
    for word, start, end in spans[:max_words]:
        row = lookup.get(word)
        glove = vectors[row].astype(np.float64) if row is not None else np.zeros(vectors.shape[1])
        rows.append(np.concatenate([glove, token_states[start:end].astype(np.float64).mean(axis=0)]))
    width = vectors.shape[1] + token_states.shape[1]
    return np.array(rows, dtype=np.float64).reshape(len(rows), width)


# ------------------------------------------------------------------------------------------ head
def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.maximum(np.linalg.norm(a, axis=1), COSINE_EPS)
    nb = np.maximum(np.linalg.norm(b, axis=1), COSINE_EPS)
    return (a * b).sum(axis=1) / (na * nb)


def gru(x: np.ndarray, w_ih, w_hh, b_ih, b_hh) -> np.ndarray:
    """One direction of torch.nn.GRU from h0 = 0 over x [N, in]: the states [N, h]."""
    h = np.zeros(w_hh.shape[1])
    out = []
    for x_t in x:
        gi = w_ih @ x_t + b_ih
        gh = w_hh @ h + b_hh
        i_r, i_z, i_n = np.split(gi, 3)
        h_r, h_z, h_n = np.split(gh, 3)
        r = sigmoid(i_r + h_r)
        z = sigmoid(i_z + h_z)
        n = np.tanh(i_n + r * h_n)
        h = (1 - z) * n + z * h
        out.append(h)
    return np.array(out).reshape(len(x), w_hh.shape[1])


def forward(weights: dict, config: dict, regions: np.ndarray, e: np.ndarray) -> dict:
    """One post: regions [K, d_r], e [N, W] word features (N <= N_max). Returns every stage."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    lam, eta = float(config.get("lambda", 0.7)), float(config.get("eta", 1.3))
    regions = regions.astype(np.float64)
    e = e.astype(np.float64)
    k = regions.shape[0]
    n_max = w["alignment.classifier.weight"].shape[1] - k
    n = e.shape[0]
    assert n <= n_max, f"{n} words, N_max {n_max}"

    V = np.maximum(regions @ w["region_proj.weight"].T + w["region_proj.bias"], 0)
    d = V.shape[1]
    fwd = gru(e, w["gru.weight_ih_l0"], w["gru.weight_hh_l0"], w["gru.bias_ih_l0"], w["gru.bias_hh_l0"])
    bwd = gru(e[::-1], w["gru.weight_ih_l0_reverse"], w["gru.weight_hh_l0_reverse"],
              w["gru.bias_ih_l0_reverse"], w["gru.bias_hh_l0_reverse"])[::-1]
    T = np.concatenate([fwd, bwd], axis=1)

    # Association net (global).
    f_img = V.mean(axis=0)
    f_txt = T.mean(axis=0) if n else np.zeros(d)
    W = w["association.proj.weight"]
    r_g = np.concatenate([W @ f_img, W @ f_txt])
    association = w["association.classifier.weight"] @ r_g + w["association.classifier.bias"]

    # Alignment net (local), padded to N_max with a mask as the spec writes it.
    T_pad = np.zeros((n_max, d))
    T_pad[:n] = T
    valid = np.arange(n_max) < n
    S = V @ T_pad.T                                           # [K, N_max]
    if n:
        V_hat = softmax(np.where(valid[None, :], S, -np.inf), axis=1) @ T_pad
    else:
        V_hat = np.zeros_like(V)
    T_hat = softmax(S, axis=0).T @ V                          # [N_max, d]; rows of padded words unused
    v = cosine_rows(V, V_hat)
    t = np.where(valid, cosine_rows(T_pad, T_hat), 0.0)
    r_l = np.concatenate([t, v])
    alignment = w["alignment.classifier.weight"] @ r_l + w["alignment.classifier.bias"]

    logits = lam * association + eta * alignment
    return {
        "V": V, "gru_forward": fwd, "gru_backward": bwd, "T": T, "f_img": f_img, "f_txt": f_txt,
        "r_g": r_g, "S": S[:, :n], "V_hat": V_hat, "T_hat": T_hat[:n], "v": v, "t": t, "r_l": r_l,
        "association_logits": association, "alignment_logits": alignment,
        "logits": logits, "probabilities": softmax(logits, axis=0),
    }
