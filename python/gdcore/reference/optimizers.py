"""Optimizer update rules, exactly as ``torch.optim`` (dampening 0, not centered, not amsgrad).

Parameters and state are updated in place: they are views of arrays owned by Python, so a rule
never rebinds them. Arithmetic runs in the parameter's dtype: each hyper-parameter (and each
per-step scalar such as Adam's bias corrections, which PyTorch computes in Python floats) is
cast to that dtype before it touches an array, so float32 stays float32. Where PyTorch fuses
``p + value * t1 / t2`` we keep its left-to-right order.

``hyper`` is the float64 array ``[lr, momentum, nesterov, weight_decay, beta1, beta2, eps,
alpha]`` (``codes.HYPER``). ``state`` is the flat list of slot arrays, :func:`n_slots` per
parameter, parameters in the order ``W0, b0, W1, b1, ...``.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from .codes import HYPER, OPTIMIZER_NAMES


def sgd(p: np.ndarray, g: np.ndarray, slots: Sequence[np.ndarray], h: dict, t: int) -> None:
    """``g += wd p``; with momentum ``buf = m buf + g``, ``g = g + m buf`` (nesterov) or ``buf``;
    ``p -= lr g``. Slots: ``[momentum_buffer]`` if momentum > 0, else none."""
    T = p.dtype.type
    if h["weight_decay"] != 0:
        g = g + T(h["weight_decay"]) * p  # a new array: the caller's gradient is left alone
    if h["momentum"] > 0:
        (buf,) = slots
        buf *= T(h["momentum"])
        buf += g
        g = g + T(h["momentum"]) * buf if h["nesterov"] else buf
    p -= T(h["lr"]) * g


def adam(p: np.ndarray, g: np.ndarray, slots: Sequence[np.ndarray], h: dict, t: int) -> None:
    """``g += wd p``; ``m = b1 m + (1-b1) g``; ``v = b2 v + (1-b2) g^2``;
    ``p -= (lr / (1-b1^t)) m / (sqrt(v) / sqrt(1-b2^t) + eps)``. Slots: ``[exp_avg, exp_avg_sq]``."""
    T = p.dtype.type
    b1, b2 = h["beta1"], h["beta2"]
    if h["weight_decay"] != 0:
        g = g + T(h["weight_decay"]) * p
    m, v = slots
    m *= T(b1)
    m += T(1 - b1) * g
    v *= T(b2)
    v += T(1 - b2) * g * g
    # bias corrections in Python floats, as torch.optim does
    step_size = h["lr"] / (1 - b1 ** t)
    bias_correction2_sqrt = math.sqrt(1 - b2 ** t)
    denom = np.sqrt(v) / T(bias_correction2_sqrt) + T(h["eps"])
    p -= T(step_size) * m / denom


def adamw(p: np.ndarray, g: np.ndarray, slots: Sequence[np.ndarray], h: dict, t: int) -> None:
    """Decoupled weight decay ``p *= 1 - lr wd``, then :func:`adam` with ``wd = 0``."""
    p *= p.dtype.type(1 - h["lr"] * h["weight_decay"])
    adam(p, g, slots, {**h, "weight_decay": 0.0}, t)


def rmsprop(p: np.ndarray, g: np.ndarray, slots: Sequence[np.ndarray], h: dict, t: int) -> None:
    """``g += wd p``; ``sq = alpha sq + (1-alpha) g^2``; ``avg = sqrt(sq) + eps``; with momentum
    ``buf = m buf + g / avg``, ``p -= lr buf``, else ``p -= lr g / avg``.
    Slots: ``[square_avg]`` plus ``[momentum_buffer]`` if momentum > 0."""
    T = p.dtype.type
    alpha = h["alpha"]
    if h["weight_decay"] != 0:
        g = g + T(h["weight_decay"]) * p
    square_avg = slots[0]
    square_avg *= T(alpha)
    square_avg += T(1 - alpha) * g * g
    avg = np.sqrt(square_avg) + T(h["eps"])
    if h["momentum"] > 0:
        buf = slots[1]
        buf *= T(h["momentum"])
        buf += g / avg
        p -= T(h["lr"]) * buf
    else:
        p -= T(h["lr"]) * g / avg


RULES: dict[str, Callable[..., None]] = {
    "sgd": sgd, "adam": adam, "adamw": adamw, "rmsprop": rmsprop,
}


def _name(kind: int) -> str:
    try:
        return OPTIMIZER_NAMES[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unknown optimizer code {kind!r}") from None


def n_slots(kind: int, hyper: Sequence[float]) -> int:
    """Number of state arrays per parameter for optimizer ``kind`` with these hyper-parameters."""
    name, momentum = _name(kind), float(hyper[1])
    if name == "sgd":
        return 1 if momentum > 0 else 0
    if name == "rmsprop":
        return 2 if momentum > 0 else 1
    return 2  # adam, adamw


def optimizer_step(kind: int, params: Sequence[np.ndarray], grads: Sequence[np.ndarray],
                   state: Sequence[np.ndarray], hyper: np.ndarray, step: np.ndarray) -> None:
    """One optimizer step on every parameter, in place; then ``step[0] += 1``.

    Parameters
    ----------
    kind : int
        Code of ``codes.OPTIMIZERS``.
    params : list of ndarray
        ``[W0, b0, W1, b1, ...]``, updated in place.
    grads : list of ndarray
        Gradients, shapes of ``params``; not modified.
    state : list of ndarray
        ``n_slots(kind, hyper)`` arrays per parameter (entry ``p * n_slots + s`` has the shape
        of parameter ``p``), all zero before the first step; updated in place.
    hyper : ndarray of shape (8,), float64
        ``[lr, momentum, nesterov, weight_decay, beta1, beta2, eps, alpha]``.
    step : ndarray of shape (1,), int64
        Steps taken so far; this step is number ``t = step[0] + 1`` (Adam's bias correction).
    """
    rule = RULES[_name(kind)]
    slots_per_param = n_slots(kind, hyper)
    h = {name: float(value) for name, value in zip(HYPER, hyper)}
    t = int(step[0]) + 1
    for i, (p, g) in enumerate(zip(params, grads)):
        rule(p, g, state[i * slots_per_param:(i + 1) * slots_per_param], h, t)
    step[0] += 1
