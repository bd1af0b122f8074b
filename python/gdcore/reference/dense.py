"""A dense layer's affine part, ``Z = A_prev @ W + b``, and its backward pass.

Twin of ``csrc/gd/dense.{hpp,cpp}``: the same two functions, the same argument order. The C++
sizes (``n``, ``n_in``, ``n_out``) are the arrays' shapes here, its output buffer ``z`` is the
return value, and its ``da_prev`` buffer (null when not wanted) is the flag ``need_da_prev``
with ``dA_prev`` returned. The activation is not applied here (``Network.forward`` does it),
except relu, which both engines fuse into the product as in C++.

Shapes: ``A_prev`` (n_samples, n_in), ``W`` (n_in, n_out), ``b`` (n_out,), ``Z``/``dZ``
(n_samples, n_out). Everything stays in the dtype of W.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def dense_forward(a_prev: np.ndarray, W: np.ndarray, b: np.ndarray,
                  relu: bool = False) -> np.ndarray:
    """Forward pass of one layer's affine part.

    Parameters
    ----------
    a_prev : ndarray of shape (n_samples, n_in)
        The layer's input (the previous layer's activation).
    W : ndarray of shape (n_in, n_out)
    b : ndarray of shape (n_out,)
    relu : bool
        Store ``max(Z, 0)`` instead of ``Z`` (relu fused into the product, as in C++).

    Returns
    -------
    Z : ndarray of shape (n_samples, n_out)
        ``a_prev @ W + b`` (or its relu), a new array.
    """
    Z = a_prev @ W
    Z += b  # broadcast over the rows, in place: no second temporary
    if relu:
        np.maximum(Z, 0, out=Z)  # NaN passes through, as relu() does
    return Z


def dense_backward(a_prev: np.ndarray, dZ: np.ndarray, W: np.ndarray, dW: np.ndarray,
                   db: np.ndarray, need_da_prev: bool = True,
                   relu_prev: bool = False) -> Optional[np.ndarray]:
    """Backward pass of one layer's affine part, from the gradient w.r.t. its ``Z``.

    Parameters
    ----------
    a_prev : ndarray of shape (n_samples, n_in)
        The layer's input, as given to :func:`dense_forward`.
    dZ : ndarray of shape (n_samples, n_out)
        Gradient of the loss w.r.t. ``Z``.
    W : ndarray of shape (n_in, n_out)
    dW : ndarray of shape (n_in, n_out)
        Receives ``a_prev^T @ dZ`` (in place).
    db : ndarray of shape (n_out,)
        Receives ``sum_rows(dZ)`` (in place).
    need_da_prev : bool
        False for the first layer, whose input gradient nobody uses.
    relu_prev : bool
        The previous layer is a relu: ``dA_prev`` is then already its ``dZ``,
        ``dA_prev * (a_prev > 0)`` (fused, as in C++; ``a_prev > 0`` exactly where its
        ``z > 0``).

    Returns
    -------
    dA_prev : ndarray of shape (n_samples, n_in) or None
        ``dZ @ W^T`` if ``need_da_prev``, else None.
    """
    np.matmul(a_prev.T, dZ, out=dW)
    np.sum(dZ, axis=0, out=db)
    if not need_da_prev:
        return None
    dA_prev = dZ @ W.T
    if relu_prev:
        dA_prev = np.where(a_prev > 0, dA_prev, 0)  # relu_backward's own expression
    return dA_prev
