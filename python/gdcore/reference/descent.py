"""Twin of ``csrc/gd/descent.cpp``: ``descend``, the heavy-ball gradient descent of
:func:`gdcore.minimize`, with ``DescentConfig`` and ``DescentResult``.

This loop is the reference: :func:`gdcore.minimize` runs it for a Python ``fun`` (wrapped into
the objective convention below) and, under the NumPy backend, for a compiled one (called
through ctypes); the C++ ``descend`` runs compiled ones under the C++ backend and must give the
same iterates.

The objective follows NLopt's convention in NumPy: ``fun(x, grad, data) -> float`` is the value
at ``x`` (float64, shape (n,)) and writes the gradient into ``grad`` (a float64 array of the same
shape, first filled with :data:`UNWRITTEN_GRAD`) when ``grad`` is not None; ``data`` is passed
through.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from .codes import DESCENT_STATUS

__all__ = ["DescentConfig", "DescentResult", "descend", "UNWRITTEN_GRAD_BITS", "UNWRITTEN_GRAD"]

# Divergence threshold: the value has grown past this many times max(1, |f(x0)|).
_BLOWUP = 1e12

#: A grad entry the objective did not write keeps these bits (descent.hpp's
#: unwritten_grad_bits): a quiet NaN with a payload no arithmetic on finite numbers produces.
UNWRITTEN_GRAD_BITS = 0x7FF8676463000001
UNWRITTEN_GRAD = np.array([UNWRITTEN_GRAD_BITS], dtype=np.uint64).view(np.float64)[0]


@dataclass
class DescentConfig:
    """The hyper-parameters of one descent (checked by the caller)."""

    lr: float = 0.1
    momentum: float = 0.0
    max_iter: int = 10000
    tol: float = 1e-8


@dataclass
class DescentResult:
    """How a descent ended; ``fun`` and ``grad_norm`` at the last iterate kept."""

    status: int = DESCENT_STATUS["max_iter"]
    nit: int = 0
    fun: float = 0.0
    grad_norm: float = 0.0
    limit: float = 0.0     # the blow-up threshold, 1e12 * max(1, |fun(x0)|)
    unfilled: int = -1     # grad_not_filled: the first entry of grad left unwritten


def _first_unwritten(grad: np.ndarray) -> int:
    hits = np.flatnonzero(grad.view(np.uint64) == np.uint64(UNWRITTEN_GRAD_BITS))
    return int(hits[0]) if hits.size else -1


def _evaluate(fun: Callable, data: Any, x: np.ndarray, grad: np.ndarray) -> float:
    grad.fill(UNWRITTEN_GRAD)
    return float(fun(x, grad, data))


def _norm(g: np.ndarray) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.linalg.norm(g))


def descend(fun: Callable[[np.ndarray, Optional[np.ndarray], Any], float], data: Any,
            x: np.ndarray, config: DescentConfig) -> tuple[DescentResult, np.ndarray]:
    """Descend from ``x`` (float64, (n,); updated in place to the last finite iterate) with
    ``v <- momentum * v + grad``, ``x <- x - lr * v``.

    Returns the result and the path, every iterate from ``x0``, shape (nit + 1, n) (empty when
    the run could not start: ``fun`` not finite at ``x0`` or ``grad`` not written there).
    """
    S = DESCENT_STATUS
    r = DescentResult()
    n = x.size
    g = np.empty(n)
    f = _evaluate(fun, data, x, g)
    r.fun = f
    if not math.isfinite(f):
        r.status = S["fun_not_finite_at_x0"]
        return r, np.empty((0, n))
    r.unfilled = _first_unwritten(g)
    if r.unfilled >= 0:
        r.status = S["grad_not_filled"]
        return r, np.empty((0, n))
    r.limit = _BLOWUP * max(1.0, abs(f))
    velocity = np.zeros(n)
    path = [x.copy()]
    lr, momentum = config.lr, config.momentum

    while True:
        r.grad_norm = _norm(g)
        if not math.isfinite(r.grad_norm):
            r.status = S["grad_not_finite"]
            break
        if r.grad_norm <= config.tol:
            r.status = S["converged"]
            break
        if r.nit >= config.max_iter:
            r.status = S["max_iter"]
            break
        with np.errstate(over="ignore", invalid="ignore"):
            v_new = momentum * velocity + g
            x_new = x - lr * v_new
        if not np.all(np.isfinite(x_new)):
            r.status = S["iterate_not_finite"]
            break
        g_new = np.empty(n)
        f_new = _evaluate(fun, data, x_new, g_new)
        if not math.isfinite(f_new):
            r.status = S["fun_not_finite"]
            break
        r.unfilled = _first_unwritten(g_new)
        if r.unfilled >= 0:
            r.status = S["grad_not_filled"]
            break
        x[:] = x_new
        velocity, g, f = v_new, g_new, f_new
        r.nit += 1
        path.append(x.copy())
        if f > r.limit:
            r.status = S["fun_blew_up"]
            r.grad_norm = _norm(g)
            break
    r.fun = f
    return r, np.array(path)
