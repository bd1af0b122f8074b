"""Losses: the batch loss and its gradient w.r.t. the output layer's pre-activation Z.

Per-sample losses ``l_j`` (each a mean over the ``n_out`` outputs, except cross-entropy, a sum
over the classes) are reduced to ``L = sum_j(w_j l_j) / sum_j(w_j)``, with ``w_j = 1`` when
there are no sample weights; that is PyTorch's ``reduction="mean"``.

``bce`` (sigmoid output) and ``cross_entropy`` (softmax output) are computed from the logits Z
and their gradients are fused, ``dL/dz = (a - y) * scale``, which is exact and stable. The other
losses give ``dL/dA``, which is chained through the output activation's backward pass.

Shapes: ``Z``, ``A``: (n_samples, n_out). ``Y``: (n_samples, n_out) of Z's dtype, or for
``cross_entropy`` also int64 class indices (n_samples,). ``w`` (the sample weights): None or
(n_samples,).

Twin of ``csrc/gd/losses.{hpp,cpp}``: :func:`loss_value` and :func:`loss_gradient` have the
C++ names and argument order (the sizes are the arrays' shapes, the C++ output buffer ``dz``
is returned with the value), and :func:`cross_entropy_fused` is the C++ one-pass
softmax-cross-entropy that ``loss_gradient`` uses. The loss/output-activation pairing
(``codes.LOSS_OUTPUT_ACTIVATION``) is checked where the C++ checks it, when the
``network.Network`` is built.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .activations import activation_backward, row_shifted_exp
from .codes import ACTIVATIONS, LOSS_NAMES, LOSSES


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


def squared_error(Z: np.ndarray, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``l_j = mean_k 0.5 (a_jk - y_jk)^2``: scikit-learn's squared loss (half the mse)."""
    d = A - Y
    return np.mean(A.dtype.type(0.5) * d * d, axis=1)


def bce(Z: np.ndarray, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``l_j = mean_k (max(z,0) - z y + log1p(exp(-|z|)))``: binary cross-entropy of sigmoid(z)."""
    return np.mean(np.maximum(Z, 0) - Z * Y + np.log1p(np.exp(-np.abs(Z))), axis=1)


def log_sum_exp(Z: np.ndarray, E: np.ndarray) -> np.ndarray:
    """Row-wise ``max(z) + log(sum(exp(z - max(z))))``, shape (n_samples, 1), from
    ``E = row_shifted_exp(Z)``; finite for finite Z."""
    return np.max(Z, axis=1, keepdims=True) + np.log(np.sum(E, axis=1, keepdims=True))


def cross_entropy_rows(Z: np.ndarray, Y: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``l_j = -sum_k y_jk (z_jk - shift_j)``, ``log_softmax(z) = z - shift`` with ``shift`` the
    row's log-sum-exp; an index label ``y_j`` gives ``shift_j - z_j,y_j``."""
    if Y.ndim == 1:
        return shift[:, 0] - Z[np.arange(len(Y)), Y]
    return -np.sum(Y * (Z - shift), axis=1)


def cross_entropy(Z: np.ndarray, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``l_j = -sum_k y_jk log_softmax(z_j)_k``; an index label ``y_j`` stands for a one-hot row."""
    return cross_entropy_rows(Z, Y, log_sum_exp(Z, row_shifted_exp(Z)))


PER_SAMPLE: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "mse": mse, "mae": mae, "huber": huber, "bce": bce, "cross_entropy": cross_entropy,
    "squared_error": squared_error,
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


def squared_error_derivative(d: np.ndarray) -> np.ndarray:
    """``d``."""
    return d


DERIVATIVE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mse": mse_derivative, "mae": mae_derivative, "huber": huber_derivative,
    "squared_error": squared_error_derivative,
}


# ---------------------------------------------------------------------------- batch loss

def _name(loss: int) -> str:
    try:
        return LOSS_NAMES[loss]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss code {loss!r}") from None


def weight_sum(w: Optional[np.ndarray], n_samples: int):
    """``sum_j w_j``: the sample count without weights (a Python int), else in w's dtype."""
    return n_samples if w is None else np.sum(w)


def loss_sum(loss: int, Z: np.ndarray, A: np.ndarray, Y: np.ndarray,
             w: Optional[np.ndarray]):
    """``sum_j w_j l_j`` (``sum_j l_j`` without weights), in Z's dtype."""
    l = PER_SAMPLE[_name(loss)](Z, A, Y)
    return np.sum(l) if w is None else np.sum(w * l)


def _row_scale(w: Optional[np.ndarray], denom, dtype: np.dtype):
    """``w_j / denom``: a (n_samples, 1) column, or a scalar of ``dtype`` without weights."""
    if w is None:
        return dtype.type(1) / dtype.type(denom)
    return w[:, None] / denom


def elementwise_grad(loss: int, A: np.ndarray, Y: np.ndarray, w: Optional[np.ndarray],
                     sum_w) -> np.ndarray:
    """``dL/dA = g(a - y) w_j / (sum_w n_out)`` of the element-wise losses (mse, mae, huber,
    squared_error)."""
    return DERIVATIVE[_name(loss)](A - Y) * _row_scale(w, sum_w * A.shape[1], A.dtype)


def fused_grad(A: np.ndarray, Y: np.ndarray, w: Optional[np.ndarray], denom) -> np.ndarray:
    """``dL/dZ = (a - y) w_j / denom``: bce's gradient (``denom = sum_w n_out``), in which the
    sigmoid's derivative cancels."""
    return (A - Y) * _row_scale(w, denom, A.dtype)


def cross_entropy_fused(Z: np.ndarray, Y: np.ndarray, w: Optional[np.ndarray],
                        sum_w) -> tuple:
    """cross_entropy in one pass over the exponentials, from the logits alone.

    ``exp(z - max)`` is computed once; each row's sum gives both the loss (from the log-sum-exp)
    and ``softmax = e / sum``: the same values, formula for formula, as :func:`cross_entropy`
    after ``softmax``, and the gradient :func:`fused_grad` would give.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_classes)
        The output layer's logits (no softmax applied).
    Y : ndarray of shape (n_samples, n_classes), or int64 (n_samples,) class indices
    w : None or ndarray of shape (n_samples,)
    sum_w : number
        :func:`weight_sum` of ``w``.

    Returns
    -------
    total : scalar of Z's dtype
        ``sum_j w_j l_j`` (the caller divides by ``sum_w``).
    dZ : ndarray of shape (n_samples, n_classes)
        ``(softmax(z_j) - y_j) w_j / sum_w`` (``y_j`` one-hot for a class index); the sum over
        the classes, so no ``1 / n_classes``.
    """
    E = row_shifted_exp(Z)
    sums = np.sum(E, axis=1, keepdims=True)
    l = cross_entropy_rows(Z, Y, np.max(Z, axis=1, keepdims=True) + np.log(sums))
    total = np.sum(l) if w is None else np.sum(w * l)
    dZ = E / sums  # softmax
    if Y.ndim == 1:
        dZ[np.arange(len(Y)), Y] -= 1  # softmax - onehot(y)
    else:
        dZ -= Y
    dZ *= _row_scale(w, sum_w, Z.dtype)
    return total, dZ


def loss_value(loss: int, Z: np.ndarray, A: np.ndarray, Y: np.ndarray,
               w: Optional[np.ndarray]) -> float:
    """The batch loss ``L = sum_j(w_j l_j) / sum_j(w_j)``, computed in Z's dtype.

    Parameters
    ----------
    loss : int
        Code of ``codes.LOSSES``.
    Z, A : ndarray of shape (n_samples, n_out)
        The output layer's logits and activations ``f(Z)``.
    Y : ndarray of shape (n_samples, n_out), or int64 (n_samples,) for cross_entropy
    w : None or ndarray of shape (n_samples,)
        Sample weights (None: all ones).

    Returns
    -------
    float
    """
    return float(loss_sum(loss, Z, A, Y, w) / weight_sum(w, len(Z)))


def loss_gradient(loss: int, out_activation: int, Z: np.ndarray, A: Optional[np.ndarray],
                  Y: np.ndarray, w: Optional[np.ndarray]) -> tuple:
    """The batch loss, as :func:`loss_value`, and its gradient w.r.t. the output layer's ``Z``.

    Parameters
    ----------
    loss, Z, Y, w : as :func:`loss_value`
    out_activation : int
        Code of the output layer's activation (``codes.ACTIVATIONS``).
    A : ndarray of shape (n_samples, n_out), or None for cross_entropy
        cross_entropy reads Z only (``Network.forward(x, output_activation=False)``).

    Returns
    -------
    value : float
    dZ : ndarray of shape (n_samples, n_out), dtype of Z
        bce: ``(a - y) w_j / (sum w * n_out)``; cross_entropy: ``(softmax(z) - y_j) w_j / sum w``
        (``y_j`` one-hot for an index label); otherwise ``dL/dA`` chained through the output
        activation (a Jacobian-vector product for softmax).
    """
    name = _name(loss)
    sum_w = weight_sum(w, len(Z))
    if name == "cross_entropy":  # reads Z only: A may be None (forward without softmax)
        total, dZ = cross_entropy_fused(Z, Y, w, sum_w)
        return float(total / sum_w), dZ
    value = float(loss_sum(loss, Z, A, Y, w) / sum_w)
    if name == "bce":
        return value, fused_grad(A, Y, w, sum_w * Z.shape[1])
    dA = elementwise_grad(loss, A, Y, w, sum_w)
    # dL/dZ = dL/dA * f'(Z)
    return value, activation_backward(out_activation, Z, A, dA)



def bce_gradient_lanes(Z: np.ndarray, A: np.ndarray, Y: np.ndarray, w: Optional[np.ndarray],
                       lanes: int) -> tuple:
    """:func:`loss_gradient` of bce for ``lanes`` networks at once, on lane arrays: ``Z`` and
    ``A`` hold element ``e`` of network ``l`` at ``e * lanes + l`` (shape ``(n, k * lanes)``
    or flat), ``Y`` and ``w`` are the networks' common targets and weights.

    Returns
    -------
    dZ : ndarray in the lane layout of ``Z``
    values : list of float, one loss per network
    """
    n, k = Y.shape
    Z3, A3 = Z.reshape(n, k, lanes), A.reshape(n, k, lanes)
    dZ = np.empty_like(Z3)
    values = []
    for l in range(lanes):
        value, dZ[:, :, l] = loss_gradient(LOSSES["bce"], ACTIVATIONS["sigmoid"],
                                           Z3[:, :, l], A3[:, :, l], Y, w)
        values.append(value)
    return dZ.reshape(Z.shape), values


def smooth_targets(loss: int, y: np.ndarray, k: int, label_smoothing: float,
                   dtype) -> np.ndarray:
    """The targets with label smoothing ``eps``, dense ``(n_samples, k)`` of ``dtype``.

    cross_entropy: ``(1 - eps) y + eps / k`` (torch's ``CrossEntropyLoss(label_smoothing=eps)``;
    class indices are one-hot rows first); bce: ``(1 - eps) y + eps / 2``. Both factors are
    computed in float64 and rounded to ``dtype``, then ``y * (1 - eps) + eps / c`` in
    ``dtype``, as the C++.

    Parameters
    ----------
    loss : int
        ``codes.LOSSES["cross_entropy"]`` or ``["bce"]``.
    y : ndarray (n_samples, k) of ``dtype``, or int64 class indices (n_samples,)
    k : int
        The number of outputs (the C++ size argument; needed for class indices).
    label_smoothing : float in [0, 1)
    dtype : float32 or float64
        The network's dtype (the C++ ``T``).
    """
    dtype = np.dtype(dtype)
    classes = 2.0 if _name(loss) == "bce" else float(k)
    keep = dtype.type(1.0 - label_smoothing)
    spread = dtype.type(label_smoothing / classes)
    if y.ndim == 1:  # class indices: one-hot rows
        onehot = np.zeros((len(y), k), dtype=dtype)
        onehot[np.arange(len(y)), y] = 1
        y = onehot
    return y * keep + spread
