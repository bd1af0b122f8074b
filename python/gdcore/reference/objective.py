"""The training objective: data loss (with label smoothing) plus the l2 penalty, and its
gradient, through the network (with dropout when asked).

Twin of ``csrc/gd/objective.{hpp,cpp}``: :class:`Regularisers`, :func:`l2_penalty`,
:func:`l2_gradient`, :func:`objective_value`, :func:`objective_gradient`,
:func:`output_objective`, :func:`sample_weight_sum`, with the C++ names,
argument order and rounding (the C++ ``value`` output is returned here). ``train_epoch`` calls
:func:`objective_gradient` per batch; a full-batch solver (L-BFGS) calls it on all rows
without dropout.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .codes import LOSSES
from .dropout import DropoutStep
from .losses import loss_gradient, loss_value, smooth_targets
from .network import Network

_SMOOTHED = (LOSSES["cross_entropy"], LOSSES["bce"])


@dataclass
class Regularisers:
    """The regularisers (values checked by the caller).

    ``l2``: scikit-learn's alpha, the objective adds ``0.5 l2 sum_i ||W_i||^2 / sum_w``
    (weights only; ``sum_w`` the sum of the sample weights, or the row count).
    ``label_smoothing`` in [0, 1): cross_entropy and bce targets become
    :func:`~gdcore.reference.losses.smooth_targets`. ``dropout``: float64 rates per layer, or
    None. ``dropout_seed``: the seed of the masks.
    """
    l2: float = 0.0
    label_smoothing: float = 0.0
    dropout: Optional[np.ndarray] = None
    dropout_seed: int = 0


def sample_weight_sum(w: Optional[np.ndarray], n: int) -> float:
    """``sum_j w_j`` in float64 (the row count without weights)."""
    return float(n) if w is None else float(np.sum(w, dtype=np.float64))


def _loss_targets(net: Network, y: np.ndarray, label_smoothing: float) -> np.ndarray:
    if label_smoothing == 0.0 or net.loss() not in _SMOOTHED:
        return y
    dtype = net.layer(0).weights.dtype
    return smooth_targets(net.loss(), y, net.n_outputs(), label_smoothing, dtype)


def _with_penalty(net: Network, loss: float, l2: float, sum_w: float) -> float:
    """``T(loss + penalty)`` as a float; the loss itself without l2."""
    if l2 == 0.0:
        return loss
    dtype = net.layer(0).weights.dtype
    return float(dtype.type(loss + l2_penalty(net, l2, sum_w)))


def l2_penalty(net: Network, l2: float, sum_w: float) -> float:
    """``0.5 l2 sum_i ||W_i||^2 / sum_w`` in float64 (0 when l2 is 0)."""
    if l2 == 0.0:
        return 0.0
    squares = 0.0
    for i in range(net.n_layers()):
        w = net.layer(i).weights.ravel().astype(np.float64)
        squares += float(np.dot(w, w))
    return 0.5 * l2 * squares / sum_w


def l2_gradient(net: Network, l2: float, sum_w: float, dw: Sequence[np.ndarray]) -> None:
    """``dw[i] += T(l2 / sum_w) * W_i`` in place (nothing when l2 is 0)."""
    if l2 == 0.0:
        return
    for i in range(net.n_layers()):
        W = net.layer(i).weights
        dw[i] += W.dtype.type(l2 / sum_w) * W


def objective_value(net: Network, x: np.ndarray, y: np.ndarray, w: Optional[np.ndarray],
                    reg: Regularisers, step: int) -> float:
    """The objective at the current parameters: ``T(L + l2_penalty)``, ``L`` the batch loss
    with the label smoothing of ``reg``; dropout as ``Network.forward`` with
    ``DropoutStep(reg.dropout, reg.dropout_seed, step)`` when ``reg.dropout`` is not None."""
    dropout = DropoutStep(reg.dropout, reg.dropout_seed, step) if reg.dropout is not None \
        else None
    net.forward(x, output_activation=True, dropout=dropout)
    targets = _loss_targets(net, y, reg.label_smoothing)
    loss = loss_value(net.loss(), net.output_logits(), net.output_activations(), targets, w)
    return _with_penalty(net, loss, reg.l2, sample_weight_sum(w, len(x)))


def objective_gradient(net: Network, x: np.ndarray, y: np.ndarray, w: Optional[np.ndarray],
                       reg: Regularisers, step: int, dw: Sequence[np.ndarray],
                       db: Sequence[np.ndarray]) -> float:
    """The objective as :func:`objective_value` (returned) and its gradient, filled into
    ``dw[i]`` and ``db[i]`` in place (loss gradient, backward pass, then :func:`l2_gradient`)."""
    dropout = DropoutStep(reg.dropout, reg.dropout_seed, step) if reg.dropout is not None \
        else None
    net.forward(x, output_activation=False, dropout=dropout)
    sum_w = sample_weight_sum(w, len(x))
    value, dZ = output_objective(net, net.output_logits(), net.output_activations(), y, w, reg,
                                 sum_w)
    net.backward(x, dZ, dw, db)
    l2_gradient(net, reg.l2, sum_w, dw)
    return value


def output_objective(net: Network, z: np.ndarray, a: Optional[np.ndarray], y: np.ndarray,
                     w: Optional[np.ndarray], reg: Regularisers,
                     sum_w: float) -> tuple[float, np.ndarray]:
    """:func:`objective_gradient`'s step from the output layer: the batch's objective and
    ``dL/dZ`` of the output layer, from its logits ``z`` and activations ``a`` (as
    ``Network.forward`` leaves them); ``sum_w`` is :func:`sample_weight_sum` of ``w``."""
    targets = _loss_targets(net, y, reg.label_smoothing)
    last = net.n_layers() - 1
    loss, dZ = loss_gradient(net.loss(), net.layer(last).activation, z, a, targets, w)
    return _with_penalty(net, loss, reg.l2, sum_w), dZ
