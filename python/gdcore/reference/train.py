"""The whole network: forward pass, backward pass and the epoch loop over mini-batches.

Each training step runs in four phases, as in libfann's ``fann_train``: **forward** (every
layer's Z and A), **loss gradient** (the batch loss and dL/dZ of the output layer),
**backward** (dW, db of every layer), **update** (one optimizer step).

Shapes: ``weights[i]`` (n_in_i, n_out_i), ``biases[i]`` (n_out_i,), ``X`` (n_samples, n_in_0).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from .activations import activation_backward
from .dense import dense_backward, dense_forward
from .losses import loss_backward, loss_forward
from .optimizers import optimizer_step


def network_forward(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                    activations: Sequence[int], X: np.ndarray,
                    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Forward pass through every layer.

    Returns
    -------
    Zs, As : list of ndarray, one (n_samples, n_out_i) array per layer
        Pre-activations and activations; ``As[-1]`` is the network's output.
    """
    Zs, As = [], []
    A = X
    for W, b, act in zip(weights, biases, activations):
        Z, A = dense_forward(W, b, act, A)
        Zs.append(Z)
        As.append(A)
    return Zs, As


def network_backward(weights: Sequence[np.ndarray], activations: Sequence[int], X: np.ndarray,
                     Zs: Sequence[np.ndarray], As: Sequence[np.ndarray], dZ: np.ndarray,
                     dW: Sequence[np.ndarray], db: Sequence[np.ndarray]) -> None:
    """Backward pass from the output layer's ``dZ``, writing every layer's gradient in place.

    Parameters
    ----------
    weights, activations : as for :func:`network_forward`
    X : ndarray of shape (n_samples, n_in_0)
    Zs, As : the lists returned by :func:`network_forward` for ``X``
    dZ : ndarray of shape (n_samples, n_out_last)
        Gradient of the loss w.r.t. the output layer's pre-activation.
    dW, db : list of ndarray
        Filled in place with the gradients (shapes of ``weights[i]`` and ``biases[i]``).
    """
    for i in reversed(range(len(weights))):
        A_prev = As[i - 1] if i > 0 else X
        _, _, dA_prev = dense_backward(weights[i], A_prev, dZ, i > 0, dW[i], db[i])
        if i > 0:
            dZ = activation_backward(activations[i - 1], Zs[i - 1], As[i - 1], dA_prev)


def train_epoch(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                activations: Sequence[int], loss: int, X: np.ndarray, Y: np.ndarray,
                sample_weight: Optional[np.ndarray], order: np.ndarray, batch_size: int,
                optimizer: int, hyper: np.ndarray, state: Sequence[np.ndarray],
                step: np.ndarray, dW: Optional[Sequence[np.ndarray]] = None,
                db: Optional[Sequence[np.ndarray]] = None) -> float:
    """One epoch of mini-batch gradient descent; weights, biases, state and step change in place.

    Parameters
    ----------
    weights, biases, activations, loss : the network (see ``docs/design.md``)
    X : ndarray of shape (n_samples, n_in_0)
    Y : ndarray of shape (n_samples, n_out), or int64 (n_samples,) for cross_entropy
    sample_weight : None or ndarray of shape (n_samples,)
    order : int64 ndarray of shape (m,)
        Rows of X in the order they are visited; the batches are ``order[0:bs]``,
        ``order[bs:2bs]``, ..., the last one possibly short.
    batch_size : int
    optimizer, hyper, state, step : as :func:`optimizers.optimizer_step`
    dW, db : list of ndarray, optional
        Gradient buffers reused by every step; allocated here when omitted.

    Returns
    -------
    float
        The epoch loss ``sum_b(loss_b w_b) / sum_b(w_b)``: ``loss_b`` is the batch's loss in its
        forward pass, before its update, and ``w_b`` its sample count or its sum of sample
        weights (accumulated in Python floats). A batch whose weights sum to zero is skipped
        (no update, no step). NaN when a parameter is not finite after the last update. If a batch loss is not finite, the epoch stops
        before that batch's update and returns that loss. NaN if ``order`` is empty.
    """
    if dW is None:
        dW = [np.empty_like(W) for W in weights]
    if db is None:
        db = [np.empty_like(b) for b in biases]
    params = [p for W, b in zip(weights, biases) for p in (W, b)]  # W0, b0, W1, b1, ...
    grads = [g for gW, gb in zip(dW, db) for g in (gW, gb)]
    total, total_weight = 0.0, 0.0
    # A diverging run overflows; inf/nan is then the documented result, not a warning.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            Xb, Yb = X[rows], Y[rows]
            wb = None if sample_weight is None else sample_weight[rows]
            if wb is not None and not np.sum(wb) > 0:
                continue  # zero total weight: no gradient to follow, so no step


            # 1. forward
            Zs, As = network_forward(weights, biases, activations, Xb)

            # 2. loss and its gradient w.r.t. the output pre-activation
            loss_b = loss_forward(loss, activations[-1], Zs[-1], As[-1], Yb, wb)
            if not math.isfinite(loss_b):
                return loss_b  # stop before this batch's update
            w_b = float(len(rows)) if wb is None else float(np.sum(wb))
            total += loss_b * w_b
            total_weight += w_b
            dZ = loss_backward(loss, activations[-1], Zs[-1], As[-1], Yb, wb)

            # 3. backward
            network_backward(weights, activations, Xb, Zs, As, dZ, dW, db)

            # 4. update
            optimizer_step(optimizer, params, grads, state, hyper, step)
    if not all(np.isfinite(p).all() for p in params):
        return math.nan  # the last update overflowed: the epoch diverged though its loss was finite
    return total / total_weight if total_weight > 0 else math.nan
