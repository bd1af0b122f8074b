"""One epoch of mini-batch gradient descent over a ``network.Network``, in place.

Twin of ``csrc/gd/train.{hpp,cpp}``: :func:`train_epoch` with the C++ argument order (the C++
``EpochData`` is spelled out as ``X, Y, sample_weight, order``; the interrupt hook is Python's
own KeyboardInterrupt) and the same four phases per batch, as in libfann's ``fann_train``:
**run** (gather the batch, forward pass), **compute the error** (batch loss and dL/dZ of the
output layer), **backpropagate** (dW, db of every layer), **update** (``optimizer_update`` on
W0, b0, W1, b1, ..., then count the step).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .network import Network
from .objective import Regularisers, objective_gradient
from .optimizers import OptimizerConfig, optimizer_update


@dataclass
class Batch:
    """A batch's inputs ``x``, targets ``y`` and sample weights ``w`` (or None)."""
    x: np.ndarray
    y: np.ndarray
    w: Optional[np.ndarray]


def gather(X: np.ndarray, Y: np.ndarray, sample_weight: Optional[np.ndarray],
           rows: np.ndarray) -> Batch:
    """The rows ``rows`` of the data, copied (the C++ reads consecutive rows in place instead;
    the values are the same)."""
    return Batch(X[rows], Y[rows], None if sample_weight is None else sample_weight[rows])


def parameters_finite(net: Network) -> bool:
    """Whether every weight and bias of ``net`` is finite."""
    return all(np.isfinite(net.layer(i).weights).all() and np.isfinite(net.layer(i).bias).all()
               for i in range(net.n_layers()))


def train_epoch(net: Network, X: np.ndarray, Y: np.ndarray,
                sample_weight: Optional[np.ndarray], order: np.ndarray, batch_size: int,
                config: OptimizerConfig, reg: Regularisers, state: Sequence[np.ndarray],
                step: np.ndarray) -> float:
    """One epoch; the parameters (views in ``net``), ``state`` and ``step`` change in place.

    Parameters
    ----------
    net : Network
    X : ndarray of shape (n_samples, n_inputs)
    Y : ndarray of shape (n_samples, n_outputs), or int64 (n_samples,) for cross_entropy
    sample_weight : None or ndarray of shape (n_samples,)
    order : int64 ndarray of shape (m,)
        Rows of X in the order they are visited; the batches are ``order[0:bs]``,
        ``order[bs:2bs]``, ..., the last one possibly short.
    batch_size : int
    config : OptimizerConfig
    reg : Regularisers
        Each batch's loss is its objective (:func:`objective_gradient`: label smoothing, the l2
        penalty over the batch's weight sum, the dropout masks of step ``t = step[0] + 1``).
    state : list of ndarray
        ``config.n_slots()`` arrays per parameter (W0, b0, W1, b1, ...; entry
        ``p * n_slots + s`` has the shape of parameter ``p``), all zero before the first step.
    step : int64 ndarray of shape (1,)
        Steps taken so far; incremented after each step (Adam's bias correction uses it).

    Returns
    -------
    float
        The epoch loss ``sum_b(loss_b w_b) / sum_b(w_b)``: ``loss_b`` is the batch's loss in its
        forward pass, before its update, and ``w_b`` its sample count or its sum of sample
        weights (accumulated in Python floats). A batch whose weights sum to zero is skipped
        (no update, no step). If a batch loss is not finite, the epoch stops before that
        batch's update and returns that loss. NaN if no batch had weight, or if a parameter is
        not finite after the last update.
    """
    n_layers = net.n_layers()
    n_slots = config.n_slots()
    dW, db = net.weight_gradients(), net.bias_gradients()

    weighted_loss = 0.0  # sum_b loss_b w_b
    total_weight = 0.0   # sum_b w_b
    steps = 0
    # A diverging run overflows; inf/nan is then the documented result, not a warning.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]

            # 1. Run: gather the batch (objective_gradient passes it forward). A batch of zero
            #    total sample weight has no gradient to follow: it is skipped (no update, no
            #    step, not in the loss).
            batch = gather(X, Y, sample_weight, rows)
            batch_weight = float(len(rows)) if batch.w is None else float(np.sum(batch.w))
            if not batch_weight > 0.0:
                continue
            # The dropout masks are those of step t.
            t = int(step[0]) + 1

            # 2.-3. Forward, compute the error (the batch's objective and dL/dZ of the output
            #    layer) and backpropagate into the network's gradient buffers.
            loss = objective_gradient(net, batch.x, batch.y, batch.w, reg, t, dW, db)
            if not math.isfinite(loss):
                return loss  # stop before this batch's update

            # 4. Update every parameter in place (W0, b0, W1, b1, ...), then count the step.
            for i in range(n_layers):
                l = net.layer(i)
                w_state = state[(2 * i) * n_slots:(2 * i + 1) * n_slots]
                b_state = state[(2 * i + 1) * n_slots:(2 * i + 2) * n_slots]
                optimizer_update(config, t, l.weights, dW[i], w_state)
                optimizer_update(config, t, l.bias, db[i], b_state)
            step[0] = t
            steps += 1
            weighted_loss += loss * batch_weight
            total_weight += batch_weight

    epoch_loss = weighted_loss / total_weight if total_weight > 0.0 else math.nan
    # The last update may have overflowed with a finite loss: the epoch then diverged too.
    if steps > 0 and not parameters_finite(net):
        epoch_loss = math.nan
    return epoch_loss
