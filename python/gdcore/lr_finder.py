"""Choosing a learning rate (``find_lr``) and checking backpropagation (``check_gradients``)."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

import numpy as np

from . import _validation as v
from .reference.codes import OPTIMIZERS

#: Smoothing of the loss curve in find_lr (as fastai's LR finder).
SMOOTHING = 0.98
#: find_lr stops once the smoothed loss exceeds this multiple of its best.
BLOWUP = 4.0


@dataclasses.dataclass(frozen=True)
class FindLRResult:
    """The learning-rate range test's curve and its suggestion.

    Attributes
    ----------
    lrs : ndarray (m,)
        Learning rates tried, increasing geometrically from ``lr_min``.
    losses : ndarray (m,)
        Smoothed training loss measured at each rate.
    suggestion : float
        The rate where the smoothed loss fell fastest (per unit of log learning rate),
        inside ``[lr_min, lr_max]``.
    """

    lrs: np.ndarray
    losses: np.ndarray
    suggestion: float

    def __repr__(self) -> str:
        return f"FindLRResult(suggestion={self.suggestion:.3g}, steps={len(self.lrs)})"


def _network(network: Any) -> Any:
    """The Network behind ``network`` (a Network or a Perceptron); TypeError otherwise."""
    from .network import Network, Perceptron
    if isinstance(network, Perceptron):
        return network.network
    if not isinstance(network, Network):
        raise TypeError(f"network must be a gdcore Network or Perceptron, got "
                        f"{type(network).__name__}")
    return network


def find_lr(network: Any, X: Any, y: Any, lr_min: float = 1e-7, lr_max: float = 10.0,
            steps: int = 100, batch_size: int = 32) -> FindLRResult:
    """Learning-rate range test: train briefly with a rate rising from ``lr_min`` to ``lr_max``.

    One plain SGD step per rate, on successive mini-batches (in a fixed shuffled order); the
    smoothed loss falls while the rate is useful and blows up once it is too large. Stops early
    when the loss exceeds four times its best. The network's weights are restored exactly
    afterwards (even on error). ``network`` is a Network or a Perceptron.

    Returns
    -------
    FindLRResult
    """
    network = _network(network)
    lr_min = v.real(lr_min, "lr_min", low=0.0, low_open=True)
    lr_max = v.real(lr_max, "lr_max", low=0.0, low_open=True)
    if lr_max <= lr_min:
        raise ValueError(f"lr_max must be > lr_min, got lr_min={lr_min}, lr_max={lr_max}")
    steps = v.positive_int(steps, "steps", minimum=2)
    batch_size = v.positive_int(batch_size, "batch_size")
    X, Y, _ = network._data(X, y)
    n = X.shape[0]
    batch_size = min(batch_size, n)
    lrs = np.geomspace(lr_min, lr_max, steps)
    order = np.random.default_rng(0).permutation(n).astype(np.int64)
    hyper = np.zeros(8)
    step = np.zeros(1, dtype=np.int64)
    params = network.parameters()
    v.trainable(params)
    tried, smoothed = [], []
    avg, best = 0.0, math.inf
    with network._lock:  # the snapshot and its restoration too: no other call in between
        saved = [p.copy() for p in params]
        try:
            for i, lr in enumerate(lrs):
                start = (i * batch_size) % n
                batch = np.take(order, np.arange(start, start + batch_size), mode="wrap")
                hyper[0] = lr
                loss = float(network._engine.train_epoch(X, Y, None, batch, batch_size,
                                                         OPTIMIZERS["sgd"], hyper, [], step))
                if not math.isfinite(loss):
                    break
                avg = SMOOTHING * avg + (1 - SMOOTHING) * loss
                value = avg / (1 - SMOOTHING ** (i + 1))  # bias-corrected running mean
                tried.append(lr)
                smoothed.append(value)
                best = min(best, value)
                if value > BLOWUP * best:
                    break
        finally:
            for p, good in zip(params, saved):
                np.copyto(p, good)
    lrs_out, losses_out = np.array(tried), np.array(smoothed)
    return FindLRResult(lrs_out, losses_out, _suggest(lrs_out, losses_out, lr_min))


def _suggest(lrs: np.ndarray, losses: np.ndarray, lr_min: float) -> float:
    """The rate of steepest descent of the loss against log(lr), before the loss minimum."""
    if len(lrs) < 3:
        return float(lrs[0]) if len(lrs) else lr_min
    stop = int(np.argmin(losses)) + 1
    if stop < 3:
        return float(lrs[max(stop - 1, 0)])
    slope = np.gradient(losses[:stop], np.log(lrs[:stop]))
    return float(lrs[int(np.argmin(slope))])


def check_gradients(network: Any, X: Any, y: Any, eps: Optional[float] = None,
                    max_checks: int = 2000, seed: int = 0) -> float:
    """Largest relative error between backpropagation and central finite differences.

    Both are computed on a float64 copy of the network, so the answer measures the gradient
    code, not float32 rounding. The error is ``max|analytic - numeric| / max(max|analytic|,
    max|numeric|)`` over the checked parameters (0 when both are zero). Networks with more
    than ``max_checks`` parameters are checked on a random subset of that size. ``network``
    is a Network or a Perceptron; the check runs on the engine that network uses.

    Parameters
    ----------
    eps : float or None
        Finite-difference step; None uses ``1e-6``.

    Returns
    -------
    float
        Around 1e-7 or less for correct gradients of smooth activations.
    """
    network = _network(network)
    eps = 1e-6 if eps is None else v.real(eps, "eps", low=0.0, low_open=True)
    max_checks = v.positive_int(max_checks, "max_checks")
    rng = v.generator(seed, "seed")
    with network._lock:
        net64 = network._from_spec({**network._spec(), "dtype": "float64"}, network.parameters())
    net64._use_backend(network.backend)  # check the engine this network runs on
    X, Y, _ = net64._data(X, y)
    analytic = [g for pair in net64.gradients(X, Y) for g in pair]
    params = net64.parameters()
    sizes = [p.size for p in params]
    total = sum(sizes)
    picks = np.arange(total) if total <= max_checks else np.sort(
        rng.choice(total, max_checks, replace=False))
    offsets = np.cumsum([0] + sizes)
    a_vals, n_vals = [], []
    for flat in picks:
        k = int(np.searchsorted(offsets, flat, side="right") - 1)
        p, i = params[k].reshape(-1), int(flat - offsets[k])
        old = p[i]
        p[i] = old + eps
        up = net64._engine.loss(X, Y, None)
        p[i] = old - eps
        down = net64._engine.loss(X, Y, None)
        p[i] = old
        n_vals.append((up - down) / (2 * eps))
        a_vals.append(analytic[k].reshape(-1)[i])
    a, num = np.array(a_vals), np.array(n_vals)
    scale = max(np.abs(a).max(), np.abs(num).max())
    if scale == 0:
        return 0.0
    return float(np.abs(a - num).max() / scale)
