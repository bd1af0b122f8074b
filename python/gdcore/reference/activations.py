"""Activation functions and their backward passes, exactly as PyTorch defines them.

Every function keeps the dtype of its input (float32 stays float32): constants are Python
floats, which NumPy treats as "weak" and casts to the array's dtype. Nothing here overflows
for finite input, so no NumPy warning is raised; exponentials only ever see arguments <= 0
or <= 20.

``FORWARD[name](Z) -> A`` and ``BACKWARD[name](Z, A, dA) -> dZ`` are the name -> function
tables (as in scikit-learn's ``neural_network/_base.py``); :func:`activation_forward` and
:func:`activation_backward` dispatch on the integer code of ``codes.ACTIVATIONS``.
All arrays are ``(n_samples, n_units)``.

Twin of ``csrc/gd/activations.{hpp,cpp}``: ``activation_forward``, ``activation_backward`` and
``row_shifted_exp`` (shared by softmax and the fused cross-entropy of ``losses``) have the C++
names and argument order; the C++ output buffer (``a``, ``dz``, ``e``) is the return value
here and the sizes are the arrays' shapes.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .codes import ACTIVATION_NAMES

LEAKY_SLOPE = 0.01         # torch.nn.LeakyReLU() default negative_slope
SOFTPLUS_THRESHOLD = 20.0  # torch.nn.Softplus(): linear above beta * z > 20
GELU_C = math.sqrt(2.0 / math.pi)  # a Python float, so float32 inputs stay float32
GELU_K = 0.044715


# ---------------------------------------------------------------------------- forward

def identity(Z: np.ndarray) -> np.ndarray:
    """``A = Z`` (the same array, not a copy)."""
    return Z


def sigmoid(Z: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-z))``, evaluated so that ``exp`` never overflows."""
    e = np.exp(-np.abs(Z))  # in (0, 1]
    s = 1 / (1 + e)         # sigmoid(|z|)
    return np.where(Z >= 0, s, e * s)  # sigmoid(-|z|) = e / (1 + e)


def tanh(Z: np.ndarray) -> np.ndarray:
    """``tanh(z)``."""
    return np.tanh(Z)


def relu(Z: np.ndarray) -> np.ndarray:
    """``max(z, 0)``."""
    return np.maximum(Z, 0)


def leaky_relu(Z: np.ndarray) -> np.ndarray:
    """``z if z > 0 else 0.01 z``."""
    return np.where(Z > 0, Z, LEAKY_SLOPE * Z)


def elu(Z: np.ndarray) -> np.ndarray:
    """``z if z > 0 else expm1(z)`` (alpha = 1)."""
    return np.where(Z > 0, Z, np.expm1(np.minimum(Z, 0)))  # min: no overflow in the unused branch


def softplus(Z: np.ndarray) -> np.ndarray:
    """``z if z > 20 else log1p(exp(z))`` (beta = 1, threshold = 20)."""
    return np.where(Z > SOFTPLUS_THRESHOLD, Z,
                    np.log1p(np.exp(np.minimum(Z, SOFTPLUS_THRESHOLD))))


def gelu(Z: np.ndarray) -> np.ndarray:
    """``0.5 z (1 + tanh(c (z + 0.044715 z^3)))``, ``c = sqrt(2/pi)`` (the tanh approximation)."""
    return 0.5 * Z * (1 + np.tanh(GELU_C * (Z + GELU_K * (Z * Z * Z))))


def row_shifted_exp(Z: np.ndarray) -> np.ndarray:
    """``exp(z - max of its row)``: the shared first half of softmax and cross-entropy.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_units)

    Returns
    -------
    E : ndarray of shape (n_samples, n_units), dtype of Z
        Every entry in (0, 1], the row maximum's exactly 1: the arguments are <= 0, so no
        overflow.
    """
    return np.exp(Z - np.max(Z, axis=1, keepdims=True))


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise ``exp(z - max(z)) / sum(exp(z - max(z)))``; every row sums to 1."""
    e = row_shifted_exp(Z)
    return e / np.sum(e, axis=1, keepdims=True)


# ---------------------------------------------------------------------------- backward
# Each takes the pre-activation Z, the activation A = f(Z) and the upstream gradient dA, and
# returns dZ = dA * f'(Z). Where PyTorch's derivative is a function of the output, so is ours.

def identity_backward(Z: np.ndarray, A: np.ndarray, dA: np.ndarray) -> np.ndarray:
    """``dZ = dA`` (the same array, not a copy)."""
    return dA


def sigmoid_backward(Z: np.ndarray, A: np.ndarray, dA: np.ndarray) -> np.ndarray:
    """``f' = a (1 - a)``."""
    return dA * (A * (1 - A))


def tanh_backward(Z: np.ndarray, A: np.ndarray, dA: np.ndarray) -> np.ndarray:
    """``f' = 1 - a^2``."""
    return dA * (1 - A * A)


def relu_backward(Z: np.ndarray, A: np.ndarray, dA: np.ndarray) -> np.ndarray:
    """``f' = 1 if z > 0 else 0`` (0 at z = 0, as PyTorch)."""
    return np.where(Z > 0, dA, 0)


def leaky_relu_backward(Z: np.ndarray, A: np.ndarray, dA: np.ndarray) -> np.ndarray:
    """``f' = 1 if z > 0 else 0.01``."""
    return np.where(Z > 0, dA, LEAKY_SLOPE * dA)


def elu_backward(Z: np.ndarray, A: np.ndarray, dA: np.ndarray) -> np.ndarray:
    """``f' = 1 if z > 0 else a + 1`` (for z <= 0, a + 1 = exp(z))."""
    return np.where(Z > 0, dA, dA * (A + 1))


def softplus_backward(Z: np.ndarray, A: np.ndarray, dA: np.ndarray) -> np.ndarray:
    """``f' = 1 if z > 20 else sigmoid(z)``."""
    return np.where(Z > SOFTPLUS_THRESHOLD, dA, dA * sigmoid(Z))


def gelu_backward(Z: np.ndarray, A: np.ndarray, dA: np.ndarray) -> np.ndarray:
    """Analytic derivative of the tanh approximation, in PyTorch's order of operations.

    With ``u = c (z + k z^3)`` and ``t = tanh(u)``:
    ``f' = 0.5 (1 + t) + 0.5 z (1 - t^2) c (1 + 3 k z^2)``.
    """
    Z2 = Z * Z
    t = np.tanh(GELU_C * (Z + GELU_K * (Z2 * Z)))
    left_derivative = 0.5 * (1 + t)
    right_derivative = (0.5 * Z) * (1 - t * t) * (GELU_C * (1 + 3 * GELU_K * Z2))
    return dA * (left_derivative + right_derivative)


def softmax_backward(Z: np.ndarray, A: np.ndarray, dA: np.ndarray) -> np.ndarray:
    """Row-wise Jacobian-vector product ``dZ = a * (dA - sum_k(dA * a))``."""
    return A * (dA - np.sum(dA * A, axis=1, keepdims=True))


# ---------------------------------------------------------------------------- tables

FORWARD: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": identity, "sigmoid": sigmoid, "tanh": tanh, "relu": relu,
    "leaky_relu": leaky_relu, "elu": elu, "softplus": softplus, "gelu": gelu,
    "softmax": softmax,
}

BACKWARD: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "identity": identity_backward, "sigmoid": sigmoid_backward, "tanh": tanh_backward,
    "relu": relu_backward, "leaky_relu": leaky_relu_backward, "elu": elu_backward,
    "softplus": softplus_backward, "gelu": gelu_backward, "softmax": softmax_backward,
}


def _name(code: int) -> str:
    try:
        return ACTIVATION_NAMES[code]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation code {code!r}") from None


def activation_forward(act: int, Z: np.ndarray) -> np.ndarray:
    """Apply the activation with integer code ``act`` (``codes.ACTIVATIONS``).

    Parameters
    ----------
    act : int
        Code of ``codes.ACTIVATIONS``.
    Z : ndarray of shape (n_samples, n_units)
        Pre-activations, float32 or float64.

    Returns
    -------
    A : ndarray of shape (n_samples, n_units), dtype of Z
        For ``identity`` this is ``Z`` itself.
    """
    return FORWARD[_name(act)](Z)


def activation_backward(act: int, Z: np.ndarray, A: np.ndarray, dA: np.ndarray) -> np.ndarray:
    """Gradient w.r.t. the pre-activation: ``dZ = dA * f'(Z)`` (a Jacobian product for softmax).

    Parameters
    ----------
    act : int
        Code of ``codes.ACTIVATIONS``.
    Z, A, dA : ndarray of shape (n_samples, n_units)
        Pre-activation, activation ``A = f(Z)`` and gradient of the loss w.r.t. ``A``.

    Returns
    -------
    dZ : ndarray of shape (n_samples, n_units), dtype of Z
        For ``identity`` this is ``dA`` itself.
    """
    return BACKWARD[_name(act)](Z, A, dA)
