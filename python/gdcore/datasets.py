"""Small generated problems for trying gradient descent: seeded, in memory, no downloads.

Every generator returns ``(X, y)`` with ``X`` a float64 array of shape ``(n_samples, n_features)``
and ``y`` int64 class labels (classification) or float64 targets (regression). The same ``seed``
gives the same data; ``seed=None`` draws fresh entropy.

>>> import gdcore as gd
>>> X, y = gd.datasets.two_moons(200, noise=0.1, seed=0)
>>> X.shape, X.dtype, y.shape, y.dtype
((200, 2), dtype('float64'), (200,), dtype('int64'))
"""
from __future__ import annotations

from typing import Tuple, Union

import numpy as np

from . import _validation as v

__all__ = ["xor", "two_moons", "spirals", "sine"]

SeedLike = Union[None, int, np.random.Generator]


# -- argument checks ---------------------------------------------------------------------------

# Every generator's arguments (n_classes: spirals only).
_CONSTRAINTS = {
    "n_samples": v.Integer(low=1),
    "n_classes": v.Integer(low=2),
    "noise": v.NON_NEGATIVE,
    "seed": v.SEED,
}


def _constraints(*names: str) -> dict:
    return {name: _CONSTRAINTS[name] for name in names}


# -- generators --------------------------------------------------------------------------------

_XOR_CORNERS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
_XOR_LABELS = np.array([0, 1, 1, 0], dtype=np.int64)


@v.validate_params(_constraints("n_samples", "noise", "seed"))
def xor(n_samples: int = 4, noise: float = 0.0,
        seed: SeedLike = None) -> Tuple[np.ndarray, np.ndarray]:
    """The XOR problem: label 1 when exactly one coordinate is 1.

    Sample ``i`` sits at corner ``i % 4`` of the unit square, in the order
    ``(0, 0), (0, 1), (1, 0), (1, 1)`` (labels ``0, 1, 1, 0``), moved by Gaussian noise of
    standard deviation ``noise``. With the defaults (``n_samples=4, noise=0.0``) that is exactly
    the four canonical points. Classes are balanced to within one sample.

    Parameters
    ----------
    n_samples : int, default 4
        Number of points, >= 1.
    noise : float, default 0.0
        Standard deviation of the Gaussian noise added to each coordinate, >= 0.
    seed : None, int or numpy.random.Generator, optional
        Seed of the noise.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    y : ndarray of shape (n_samples,), int64
        0 or 1.
    """
    rng = v.generator(seed)
    corner = np.arange(n_samples) % 4
    X = _XOR_CORNERS[corner].copy()
    if noise > 0.0:
        X += noise * rng.standard_normal(X.shape)
    return X, _XOR_LABELS[corner].copy()


@v.validate_params(_constraints("n_samples", "noise", "seed"))
def two_moons(n_samples: int = 200, noise: float = 0.1,
              seed: SeedLike = None) -> Tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (as ``sklearn.datasets.make_moons``), shuffled.

    Class 0 is the upper half circle of radius 1 centred at ``(0, 0)`` (``n_samples // 2``
    points); class 1 is the lower half circle centred at ``(1, 0.5)`` (the rest). Points are
    evenly spaced in angle, then moved by Gaussian noise and put in random order.

    Parameters
    ----------
    n_samples : int, default 200
        Total number of points, >= 1.
    noise : float, default 0.1
        Standard deviation of the Gaussian noise added to each coordinate, >= 0.
    seed : None, int or numpy.random.Generator, optional
        Seed of the noise and of the order.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    y : ndarray of shape (n_samples,), int64
        0 or 1.
    """
    rng = v.generator(seed)
    n_outer = n_samples // 2
    n_inner = n_samples - n_outer
    t_outer = np.linspace(0.0, np.pi, n_outer)
    t_inner = np.linspace(0.0, np.pi, n_inner)
    X = np.concatenate([
        np.column_stack([np.cos(t_outer), np.sin(t_outer)]),
        np.column_stack([1.0 - np.cos(t_inner), 0.5 - np.sin(t_inner)]),
    ])
    y = np.concatenate([np.zeros(n_outer, np.int64), np.ones(n_inner, np.int64)])
    if noise > 0.0:
        X += noise * rng.standard_normal(X.shape)
    order = rng.permutation(n_samples)
    return X[order], y[order]


@v.validate_params(_constraints("n_samples", "n_classes", "noise", "seed"))
def spirals(n_samples: int = 300, n_classes: int = 3, noise: float = 0.2,
            seed: SeedLike = None) -> Tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class (the CS231n spiral), shuffled.

    Class ``k`` has ``m`` points with radius ``r = linspace(0, 1, m)`` and angle
    ``theta = linspace(4k, 4(k + 1), m) + noise * randn(m)``, at ``(r sin theta, r cos theta)``.
    The ``n_samples`` points are shared out as evenly as possible (the first
    ``n_samples % n_classes`` classes get one more).

    Parameters
    ----------
    n_samples : int, default 300
        Total number of points, >= ``n_classes``.
    n_classes : int, default 3
        Number of arms, >= 2.
    noise : float, default 0.2
        Standard deviation of the Gaussian noise on the angle (radians), >= 0.
    seed : None, int or numpy.random.Generator, optional
        Seed of the noise and of the order.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
        Inside the unit disc.
    y : ndarray of shape (n_samples,), int64
        Class index in ``0 .. n_classes - 1``.
    """
    if n_samples < n_classes:
        raise ValueError(
            f"n_samples must be >= n_classes ({n_classes}) so every class has a point, "
            f"got {n_samples}"
        )
    rng = v.generator(seed)
    counts = np.full(n_classes, n_samples // n_classes)
    counts[: n_samples % n_classes] += 1
    parts_X, parts_y = [], []
    for k, m in enumerate(counts):
        r = np.linspace(0.0, 1.0, m)
        theta = np.linspace(4.0 * k, 4.0 * (k + 1), m) + noise * rng.standard_normal(m)
        parts_X.append(np.column_stack([r * np.sin(theta), r * np.cos(theta)]))
        parts_y.append(np.full(m, k, dtype=np.int64))
    X = np.concatenate(parts_X) + 0.0  # + 0.0 turns the -0.0 at r = 0 into 0.0
    y = np.concatenate(parts_y)
    order = rng.permutation(n_samples)
    return X[order], y[order]


@v.validate_params(_constraints("n_samples", "noise", "seed"))
def sine(n_samples: int = 200, noise: float = 0.1,
         seed: SeedLike = None) -> Tuple[np.ndarray, np.ndarray]:
    """Noisy samples of ``sin(x)``: a one-dimensional regression problem.

    ``x`` is uniform on ``[-pi, pi]`` and ``y = sin(x) + noise * randn``.

    Parameters
    ----------
    n_samples : int, default 200
        Number of points, >= 1.
    noise : float, default 0.1
        Standard deviation of the Gaussian noise on ``y``, >= 0.
    seed : None, int or numpy.random.Generator, optional
        Seed of ``x`` and of the noise.

    Returns
    -------
    X : ndarray of shape (n_samples, 1), float64
    y : ndarray of shape (n_samples,), float64
    """
    rng = v.generator(seed)
    x = rng.uniform(-np.pi, np.pi, n_samples)
    y = np.sin(x)
    if noise > 0.0:
        y = y + noise * rng.standard_normal(n_samples)
    return x.reshape(-1, 1), y
