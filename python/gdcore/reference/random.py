"""Counter-based random numbers: a stateless hash of (seed, step, layer, element).

Twin of ``csrc/gd/random.hpp``, in NumPy's uint64 arithmetic (which wraps modulo 2^64, as C++
unsigned arithmetic does), vectorised over the elements: the same integers, bit for bit.

The hash is splitmix64 (Steele, Lea & Flood, OOPSLA 2014; ``java.util.SplittableRandom``): the
j-th output of a stream whose state starts at ``key`` is ``mix64(key + (j + 1) * GOLDEN_GAMMA)``.
A stream's key absorbs the seed, the optimizer step and the layer, one :func:`mix64` each.
Every 64-bit output gives two 32-bit draws: draw ``i`` is the low half of output ``i // 2``
when ``i`` is even, the high half when odd.
"""
from __future__ import annotations

import numpy as np

#: splitmix64's increment: 2^64 / golden ratio, odd.
GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)
_ONE, _LOW32 = np.uint64(1), np.uint64(0xFFFFFFFF)


# Wrapping modulo 2^64 is the arithmetic we want; NumPy warns about it on scalars only.
_WRAP = dict(over="ignore")


def mix64(z):
    """splitmix64's output function of ``z`` (a uint64 scalar or array), modulo 2^64."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(**_WRAP):
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def _u64(value: int) -> np.ndarray:
    """A Python int as the uint64 C++ would see (its value modulo 2^64), as a 0-d array."""
    return np.asarray(int(value) % (1 << 64), dtype=np.uint64)


def stream_key(seed: int, step: int, layer: int) -> np.uint64:
    """The starting state of the stream of (seed, step, layer): each added and mixed in turn."""
    with np.errstate(**_WRAP):
        key = mix64(_u64(seed) + GOLDEN_GAMMA)
        key = mix64(key + _u64(step) + GOLDEN_GAMMA)
        return np.uint64(mix64(key + _u64(layer) + GOLDEN_GAMMA))


def random_bits(key, i0: int, size: int) -> np.ndarray:
    """Draws ``i0 .. i0 + size - 1`` of the stream ``key``: uint32 array of shape (size,)."""
    i = np.arange(i0, i0 + size, dtype=np.uint64)
    with np.errstate(**_WRAP):
        word = mix64(np.uint64(key) + ((i >> _ONE) + _ONE) * GOLDEN_GAMMA)
    return ((word >> (_S32 * (i & _ONE))) & _LOW32).astype(np.uint32)
