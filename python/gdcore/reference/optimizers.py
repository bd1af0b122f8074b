"""Optimizer update rules, exactly as ``torch.optim`` (dampening 0, not centered, not amsgrad).

Twin of ``csrc/gd/optimizers.{hpp,cpp}``: :class:`OptimizerConfig` (``from_hyper``,
``n_slots``) and :func:`optimizer_update`, one step on ONE parameter, with the C++ names and
argument order (the size is the arrays' shape); the rules :func:`sgd`, :func:`adam` (AdamW as
``decoupled``), :func:`rmsprop` and :func:`rprop` as in C++. The loop over the parameters is
``train.train_epoch``'s, as in ``train.cpp``.

Parameters and state are updated in place: they are views of arrays owned by Python, so a rule
never rebinds them. The gradient is left alone (a weight-decay term makes a new array; the C++
adds it into its gradient buffer, which is scratch there). Arithmetic runs in the parameter's
dtype: each hyper-parameter (and each per-step scalar such as Adam's bias corrections, which
PyTorch computes in Python floats) is cast to that dtype before it touches an array, so float32
stays float32. Where PyTorch fuses ``p + value * t1 / t2`` we keep its left-to-right order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .codes import HYPER, OPTIMIZER_NAMES, OPTIMIZERS, state_slots


@dataclass
class OptimizerConfig:
    """An optimizer and its hyper-parameters (the C++ ``OptimizerConfig``, same defaults).

    ``optimizer`` is a code of ``codes.OPTIMIZERS``; the others are the entries of the
    engine's ``hyper`` array (``codes.HYPER``).
    """
    optimizer: int = OPTIMIZERS["sgd"]
    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    alpha: float = 0.99
    eta_minus: float = 0.5
    eta_plus: float = 1.2
    step_size_min: float = 1e-6
    step_size_max: float = 50.0

    @classmethod
    def from_hyper(cls, optimizer: int, hyper: Sequence[float]) -> "OptimizerConfig":
        """The config of optimizer code ``optimizer`` from the float64 array ``hyper`` (layout
        ``codes.HYPER``: lr, momentum, nesterov (0/1), weight_decay, beta1, beta2, eps, alpha).
        ValueError for an unknown code."""
        if optimizer not in OPTIMIZER_NAMES:
            raise ValueError(f"unknown optimizer code {optimizer!r}")
        values = {name: float(value) for name, value in zip(HYPER, hyper)}
        values["nesterov"] = values["nesterov"] != 0.0
        return cls(optimizer=int(optimizer), **values)

    def n_slots(self) -> int:
        """State arrays per parameter: SGD [momentum_buffer] if momentum > 0; Adam/AdamW
        [exp_avg, exp_avg_sq]; RMSprop [square_avg] (+ [momentum_buffer] if momentum > 0)."""
        return state_slots(OPTIMIZER_NAMES[self.optimizer], self.momentum > 0)


def sgd(config: OptimizerConfig, p: np.ndarray, g: np.ndarray,
        slots: Sequence[np.ndarray]) -> None:
    """``g += wd p``; with momentum ``buf = m buf + g``, ``g = g + m buf`` (nesterov) or ``buf``;
    ``p -= lr g``. Slots: ``[momentum_buffer]`` if momentum > 0, else none."""
    T = p.dtype.type
    if config.weight_decay != 0:
        g = g + T(config.weight_decay) * p  # a new array: the caller's gradient is left alone
    if config.momentum > 0:
        (buf,) = slots
        buf *= T(config.momentum)
        buf += g
        g = g + T(config.momentum) * buf if config.nesterov else buf
    p -= T(config.lr) * g


def adam(config: OptimizerConfig, decoupled: bool, t: int, p: np.ndarray, g: np.ndarray,
         slots: Sequence[np.ndarray]) -> None:
    """``g += wd p``; ``m = b1 m + (1-b1) g``; ``v = b2 v + (1-b2) g^2``;
    ``p -= (lr / (1-b1^t)) m / (sqrt(v) / sqrt(1-b2^t) + eps)``. Slots: ``[exp_avg, exp_avg_sq]``.

    ``decoupled`` (AdamW): ``p *= 1 - lr wd`` first, instead of adding ``wd p`` to ``g``.
    """
    T = p.dtype.type
    b1, b2 = config.beta1, config.beta2
    if decoupled:
        p *= T(1 - config.lr * config.weight_decay)
    elif config.weight_decay != 0:
        g = g + T(config.weight_decay) * p
    m, v = slots
    m *= T(b1)
    m += T(1 - b1) * g
    v *= T(b2)
    v += T(1 - b2) * g * g
    # bias corrections in Python floats, as torch.optim does
    step_size = config.lr / (1 - b1 ** t)
    bias_correction2_sqrt = math.sqrt(1 - b2 ** t)
    denom = np.sqrt(v) / T(bias_correction2_sqrt) + T(config.eps)
    p -= T(step_size) * m / denom


def rmsprop(config: OptimizerConfig, p: np.ndarray, g: np.ndarray,
            slots: Sequence[np.ndarray]) -> None:
    """``g += wd p``; ``sq = alpha sq + (1-alpha) g^2``; ``avg = sqrt(sq) + eps``; with momentum
    ``buf = m buf + g / avg``, ``p -= lr buf``, else ``p -= lr g / avg``.
    Slots: ``[square_avg]`` plus ``[momentum_buffer]`` if momentum > 0."""
    T = p.dtype.type
    alpha = config.alpha
    if config.weight_decay != 0:
        g = g + T(config.weight_decay) * p
    square_avg = slots[0]
    square_avg *= T(alpha)
    square_avg += T(1 - alpha) * g * g
    avg = np.sqrt(square_avg) + T(config.eps)
    if config.momentum > 0:
        buf = slots[1]
        buf *= T(config.momentum)
        buf += g / avg
        p -= T(config.lr) * buf
    else:
        p -= T(config.lr) * g / avg


def rprop(config: OptimizerConfig, t: int, p: np.ndarray, g: np.ndarray,
          slots: Sequence[np.ndarray]) -> None:
    """As ``torch.optim.Rprop``: ``s = sign(g prev)`` scales each step size by ``eta_plus``
    (s > 0), ``eta_minus`` (s < 0, and the gradient then counts as 0) or 1, clamped to
    ``[step_size_min, step_size_max]``; ``p -= sign(g) step``. Slots: ``[prev, step_size]``;
    the step sizes start at ``lr``, set at the first step (``t == 1``)."""
    T = p.dtype.type
    prev, step_size = slots
    if t == 1:
        step_size[...] = T(config.lr)
    with np.errstate(invalid="ignore"):
        s = np.sign(g * prev)
        factor = np.where(s > 0, T(config.eta_plus),
                          np.where(s < 0, T(config.eta_minus), np.where(s == 0, T(1), s)))
        step_size *= factor.astype(p.dtype, copy=False)
        np.clip(step_size, T(config.step_size_min), T(config.step_size_max), out=step_size)
        gi = np.where(s < 0, T(0), g).astype(p.dtype, copy=False)
        p -= np.sign(gi) * step_size
    prev[...] = gi


def optimizer_update(config: OptimizerConfig, t: int, p: np.ndarray, g: np.ndarray,
                     slots: Sequence[np.ndarray]) -> None:
    """One step of ``config``'s rule on one parameter, in place.

    Parameters
    ----------
    config : OptimizerConfig
    t : int
        The 1-based number of this step (Adam's bias correction).
    p : ndarray
        The parameter, updated in place.
    g : ndarray
        Its gradient, shape of ``p``; not modified.
    slots : list of ndarray
        ``config.n_slots()`` state arrays of ``p``'s shape, all zero before the first step;
        updated in place.
    """
    name = OPTIMIZER_NAMES[config.optimizer]
    if name == "lbfgs":  # a full-batch solver (lbfgs.py): no per-batch update
        return
    if name == "sgd":
        sgd(config, p, g, slots)
    elif name == "adam":
        adam(config, False, t, p, g, slots)
    elif name == "adamw":
        adam(config, True, t, p, g, slots)
    elif name == "rmsprop":
        rmsprop(config, p, g, slots)
    else:  # rprop
        rprop(config, t, p, g, slots)
