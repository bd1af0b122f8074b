"""Inverted dropout on a hidden layer's output activations, with counter-based masks.

Twin of ``csrc/gd/dropout.{hpp,cpp}``: the same masks as the C++ core, bit for bit, from
:mod:`gdcore.reference.random`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .random import random_bits, stream_key


@dataclass
class DropoutStep:
    """The dropout of one training step: ``rates`` per layer (float64 ``(n_layers,)``, the last
    unused; None: no dropout), the ``seed`` of the masks and the optimizer ``step``."""
    rates: Optional[np.ndarray] = None
    seed: int = 0
    step: int = 0


def keep_threshold(rate: float) -> int:
    """``ceil(rate * 2^32)``: an element is kept when its 32-bit draw is at least this (exact:
    ``rate * 2^32`` only scales by a power of two). P(keep) = 1 - rate up to 2^-32."""
    return int(math.ceil(float(rate) * 4294967296.0))


def dropout_mask(seed: int, step: int, layer: int, rate: float, shape: tuple,
                 dtype=np.float64) -> np.ndarray:
    """The mask of ``shape`` (rows, cols) of ``layer`` at optimizer ``step``: element ``i``
    (row-major) is ``1 / (1 - rate)`` (in float64, rounded to ``dtype``) where draw ``i`` of
    ``stream_key(seed, step, layer)`` is at least :func:`keep_threshold`, else 0."""
    rows, cols = shape
    bits = random_bits(stream_key(seed, step, layer), 0, rows * cols)
    dtype = np.dtype(dtype)
    scale = dtype.type(1.0 / (1.0 - float(rate)))
    keep = bits.astype(np.uint64) >= np.uint64(keep_threshold(rate))
    return np.where(keep, scale, dtype.type(0)).astype(dtype, copy=False).reshape(rows, cols)


def dropout_apply(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``a * mask``, element-wise (a new array)."""
    return a * mask
