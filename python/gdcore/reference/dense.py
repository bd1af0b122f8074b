"""One dense layer, ``Z = X @ W + b``, ``A = f(Z)``, and its backward pass.

Shapes: ``X`` (n_samples, n_in), ``W`` (n_in, n_out), ``b`` (n_out,), ``Z``/``A``/``dZ``
(n_samples, n_out). Everything stays in the dtype of W.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .activations import activation_forward


def dense_forward(W: np.ndarray, b: np.ndarray, activation: int,
                  X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward pass of one layer.

    Parameters
    ----------
    W : ndarray of shape (n_in, n_out)
    b : ndarray of shape (n_out,)
    activation : int
        Code of ``codes.ACTIVATIONS``.
    X : ndarray of shape (n_samples, n_in)

    Returns
    -------
    Z : ndarray of shape (n_samples, n_out)
        Pre-activation ``X @ W + b``.
    A : ndarray of shape (n_samples, n_out)
        Activation ``f(Z)`` (``Z`` itself for identity).
    """
    Z = X @ W
    Z += b  # broadcast over the rows, in place: no second temporary
    return Z, activation_forward(activation, Z)


def dense_backward(W: np.ndarray, X: np.ndarray, dZ: np.ndarray, need_dX: bool,
                   dW: Optional[np.ndarray] = None, db: Optional[np.ndarray] = None,
                   ) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Backward pass of one layer, from the gradient w.r.t. its pre-activation.

    Parameters
    ----------
    W : ndarray of shape (n_in, n_out)
    X : ndarray of shape (n_samples, n_in)
        The layer's input (the previous layer's activation).
    dZ : ndarray of shape (n_samples, n_out)
        Gradient of the loss w.r.t. ``Z``.
    need_dX : bool
        False for the first layer, whose input gradient nobody uses.
    dW : ndarray of shape (n_in, n_out), optional
    db : ndarray of shape (n_out,), optional
        Buffers to write the gradients into (in place); new arrays when omitted.

    Returns
    -------
    dW : ndarray of shape (n_in, n_out)
        ``X^T @ dZ``.
    db : ndarray of shape (n_out,)
        ``sum_rows(dZ)``.
    dX : ndarray of shape (n_samples, n_in) or None
        ``dZ @ W^T`` if ``need_dX``.
    """
    dW = np.matmul(X.T, dZ, out=dW)
    db = np.sum(dZ, axis=0, out=db)
    dX = dZ @ W.T if need_dX else None
    return dW, db, dX
