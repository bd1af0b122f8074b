"""Losses: the batch loss and its gradient w.r.t. the output layer's pre-activation Z.

Per-sample losses ``l_j`` (each a mean over the ``n_out`` outputs, except cross-entropy, a sum
over the classes) are reduced to ``L = sum_j(w_j l_j) / sum_j(w_j)``, with ``w_j = 1`` when
there are no sample weights; that is PyTorch's ``reduction="mean"``.

``bce`` (sigmoid output) and ``cross_entropy`` (softmax output) are computed from the logits Z
and their gradients are fused, ``dL/dz = (a - y) * scale``, which is exact and stable. The other
losses give ``dL/dA``, which is chained through the output activation's backward pass.

Shapes: ``Z``, ``A``: (n_samples, n_out). ``Y``: (n_samples, n_out) of Z's dtype, or for
``cross_entropy`` also int64 class indices (n_samples,). ``sample_weight``: None or (n_samples,).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .activations import activation_backward
from .codes import ACTIVATIONS, LOSS_NAMES

# Each loss that is computed from the logits needs this output activation.
FUSED_ACTIVATION = {"bce": ACTIVATIONS["sigmoid"], "cross_entropy": ACTIVATIONS["softmax"]}


# ---------------------------------------------------------------------------- per-sample losses
# Each maps (Z, A, Y) to the per-sample losses l, shape (n_samples,), in Z's dtype.

def mse(Z: np.ndarray, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``l_j = mean_k (a_jk - y_jk)^2``."""
    d = A - Y
    return np.mean(d * d, axis=1)


def mae(Z: np.ndarray, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``l_j = mean_k |a_jk - y_jk|``."""
    return np.mean(np.abs(A - Y), axis=1)


def huber(Z: np.ndarray, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``l_j = mean_k (0.5 d^2 if |d| < 1 else |d| - 0.5)``, ``d = a - y`` (delta = 1)."""
    d = np.abs(A - Y)
    return np.mean(np.where(d < 1, 0.5 * d * d, d - 0.5), axis=1)


def bce(Z: np.ndarray, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``l_j = mean_k (max(z,0) - z y + log1p(exp(-|z|)))``: binary cross-entropy of sigmoid(z)."""
    return np.mean(np.maximum(Z, 0) - Z * Y + np.log1p(np.exp(-np.abs(Z))), axis=1)


def log_softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise ``z - max(z) - log(sum(exp(z - max(z))))``; finite for finite Z."""
    shifted = Z - np.max(Z, axis=1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))


def cross_entropy(Z: np.ndarray, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``l_j = -sum_k y_jk log_softmax(z_j)_k``; an index label ``y_j`` stands for a one-hot row."""
    logp = log_softmax(Z)
    if Y.ndim == 1:
        return -logp[np.arange(len(Y)), Y]
    return -np.sum(Y * logp, axis=1)


PER_SAMPLE: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "mse": mse, "mae": mae, "huber": huber, "bce": bce, "cross_entropy": cross_entropy,
}


# ---------------------------------------------------------------------------- derivatives
# dl/da element-wise, as a function of d = a - y, before the 1 / n_out of the mean and the
# sample weights are applied.

def mse_derivative(d: np.ndarray) -> np.ndarray:
    """``2 d``."""
    return 2 * d


def mae_derivative(d: np.ndarray) -> np.ndarray:
    """``sign(d)``, 0 at d = 0 (as PyTorch)."""
    return np.sign(d)


def huber_derivative(d: np.ndarray) -> np.ndarray:
    """``d if |d| <= 1 else sign(d)``, which is ``clip(d, -1, 1)``."""
    return np.clip(d, -1, 1)


DERIVATIVE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mse": mse_derivative, "mae": mae_derivative, "huber": huber_derivative,
}


# ---------------------------------------------------------------------------- batch loss

def _name(loss_code: int, out_activation_code: int) -> str:
    try:
        name = LOSS_NAMES[loss_code]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss code {loss_code!r}") from None
    needed = FUSED_ACTIVATION.get(name)
    if needed is not None and out_activation_code != needed:
        raise ValueError(f"loss {name!r} needs output activation code {needed}, "
                         f"got {out_activation_code!r}")
    return name


def _row_scale(sample_weight: Optional[np.ndarray], n_samples: int, n_out: int,
               dtype: np.dtype):
    """``w_j / (sum(w) * n_out)``: a (n_samples, 1) column, or a scalar without weights."""
    if sample_weight is None:
        return dtype.type(1) / dtype.type(n_samples * n_out)
    return sample_weight[:, None] / (np.sum(sample_weight) * n_out)


def loss_forward(loss_code: int, out_activation_code: int, Z: np.ndarray, A: np.ndarray,
                 Y: np.ndarray, sample_weight: Optional[np.ndarray]) -> float:
    """The batch loss ``sum_j(w_j l_j) / sum_j(w_j)``, computed in Z's dtype.

    Parameters
    ----------
    loss_code, out_activation_code : int
        Codes of ``codes.LOSSES`` and of the output layer's activation.
    Z, A : ndarray of shape (n_samples, n_out)
        The output layer's pre-activation and activation.
    Y : ndarray of shape (n_samples, n_out), or int64 (n_samples,) for cross_entropy
    sample_weight : None or ndarray of shape (n_samples,)

    Returns
    -------
    float
    """
    l = PER_SAMPLE[_name(loss_code, out_activation_code)](Z, A, Y)
    if sample_weight is None:
        return float(np.mean(l))
    return float(np.sum(sample_weight * l) / np.sum(sample_weight))


def loss_backward(loss_code: int, out_activation_code: int, Z: np.ndarray, A: np.ndarray,
                  Y: np.ndarray, sample_weight: Optional[np.ndarray]) -> np.ndarray:
    """Gradient of :func:`loss_forward` w.r.t. the output pre-activation Z.

    Parameters
    ----------
    As :func:`loss_forward`.

    Returns
    -------
    dZ : ndarray of shape (n_samples, n_out), dtype of Z
        bce: ``(a - y) w_j / (sum w * n_out)``; cross_entropy: ``(a - y_j) w_j / sum w``
        (``y_j`` one-hot for an index label); otherwise ``dL/dA`` chained through the output
        activation (a Jacobian-vector product for softmax).
    """
    name = _name(loss_code, out_activation_code)
    n_samples, n_out = Z.shape
    if name == "cross_entropy":
        dZ = A.copy() if Y.ndim == 1 else A - Y
        if Y.ndim == 1:
            dZ[np.arange(n_samples), Y] -= 1  # a - onehot(y)
        dZ *= _row_scale(sample_weight, n_samples, 1, Z.dtype)  # the sum over classes: no 1/n_out
        return dZ
    scale = _row_scale(sample_weight, n_samples, n_out, Z.dtype)
    if name == "bce":
        return (A - Y) * scale  # fused: the sigmoid derivative cancels
    dA = DERIVATIVE[name](A - Y) * scale
    return activation_backward(out_activation_code, Z, A, dA)
