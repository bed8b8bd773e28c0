"""Numpy reference of the bfloat16 packed product (`pck_gemm_packed_bf16`, Sources/CKernels).

bfloat16 keeps the top 16 bits of a float32: the sign, the 8 exponent bits and 7 mantissa bits.
The engine rounds every weight (once, at load) and every activation (per product) to bf16 with
round-to-nearest-even, multiplies the rounded values and sums the products in float32; this
reference sums them in float64, so it gives the exact value of the rounded product, against
which the engine's float32 sums are held.

Usage as a library:
    round_to_bf16(np.float32 array) -> the float32 values of the nearest bf16 (ties to even)
    bf16_bits(np.float32 array) -> the uint16 bf16 encodings
    packed_product_bf16(x, w, bias, residual=None, relu6=False) -> float64 [rows, out]
"""
from __future__ import annotations

import numpy as np


def bf16_bits(a: np.ndarray) -> np.ndarray:
    """The bf16 encodings (uint16) of float32 values, rounded to nearest, ties to even.

    Written out on the bits, like the engine's scalar rounding, but independently of it: the
    rounding adds 0x7FFF plus the lowest kept bit and drops the low 16 bits; a NaN stays a quiet NaN.
    """
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    quiet = ((u >> 16) | 0x0040).astype(np.uint16)
    return np.where(nan, quiet, rounded)


def round_to_bf16(a: np.ndarray) -> np.ndarray:
    """The float32 values of the bf16 nearest each float32 value (ties to even)."""
    return (bf16_bits(a).astype(np.uint32) << 16).view(np.float32)


def round_to_bf16_exact(a: np.ndarray) -> np.ndarray:
    """round_to_bf16 by another route, to check the bit version: the two bf16 neighbours of each
    value, the nearer one taken, and on a tie the one with an even last mantissa bit."""
    a = np.asarray(a, dtype=np.float32)
    u = a.view(np.uint32)
    low = (u & 0xFFFF0000).view(np.float32).astype(np.float64)
    high = ((u & 0xFFFF0000) + 0x10000).astype(np.uint32).view(np.float32).astype(np.float64)
    # Past the largest finite bf16 the upper neighbour is 2^128 (the rounding may then overflow).
    high = np.where(np.isinf(high), np.copysign(2.0 ** 128, high), high)
    x = a.astype(np.float64)
    d_low, d_high = np.abs(x - low), np.abs(high - x)
    low_even = ((u >> 16) & 1) == 0
    take_low = (d_low < d_high) | ((d_low == d_high) & low_even)
    with np.errstate(over="ignore"):  # 2^128 becomes an infinity, as it should
        return np.where(take_low, low, high).astype(np.float32)


def packed_product_bf16(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None,
                        residual: np.ndarray | None = None, relu6: bool = False) -> np.ndarray:
    """act(bf16(x) . bf16(w)^T + bias + residual) in float64: x [rows, in], w [out, in] (float32)."""
    y = round_to_bf16(x).astype(np.float64) @ round_to_bf16(w).astype(np.float64).T
    if bias is not None:
        y = y + bias.astype(np.float64)
    if residual is not None:
        y = y + residual.astype(np.float64)
    return np.clip(y, 0, 6) if relu6 else y
