"""Gradient descent on any differentiable function of a vector: :func:`minimize`."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from . import _validation as v

__all__ = ["minimize", "MinimizeResult"]

# Divergence threshold: the value has grown past this many times max(1, |f(x0)|).
_BLOWUP = 1e12


@dataclass(frozen=True, eq=False, repr=False)
class MinimizeResult:
    """What :func:`minimize` found. Arrays are read-only.

    Attributes
    ----------
    x : ndarray of shape (d,)
        The last iterate (on divergence: the last finite one).
    fun : float
        ``fun(x)``.
    grad_norm : float
        Euclidean norm of the gradient at ``x``.
    nit : int
        Number of steps taken.
    converged : bool
        True when ``grad_norm <= tol``.
    diverged : bool
        True when the run stopped because the value or the iterate blew up.
    path : ndarray of shape (nit + 1, d)
        Every iterate, ``path[0] == x0`` and ``path[-1] == x``.
    message : str
        Why the run stopped, in words.
    """

    x: np.ndarray
    fun: float
    grad_norm: float
    nit: int
    converged: bool
    diverged: bool
    path: np.ndarray
    message: str = ""

    def __repr__(self) -> str:
        x = np.array2string(self.x, precision=6, threshold=6, edgeitems=3, separator=", ")
        return (f"MinimizeResult(converged={self.converged}, diverged={self.diverged}, "
                f"nit={self.nit}, fun={self.fun:.6g}, grad_norm={self.grad_norm:.3g}, "
                f"x={x}, message={self.message!r})")

    def plot(self, fun: Callable, ax: Any = None, **kwargs: Any) -> Any:
        """Draw this path on the contours of ``fun`` (the function minimised, of two
        variables): a shortcut for :func:`gdcore.plot.plot_descent` (needs the extra
        ``gdcore[plot]``); returns the matplotlib Axes."""
        from .plot import plot_descent
        return plot_descent(fun, self, ax=ax, **kwargs)


# -- argument checks ---------------------------------------------------------------------------

def _scalar_value(value, where: str) -> float:
    """fun's return value as a Python float; TypeError/ValueError when it is not one number."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"fun must return a real number, got {type(value).__name__} "
                        f"(dtype {arr.dtype}) {where}")
    if arr.size != 1:
        raise ValueError(f"fun must return a scalar, got an array of shape {arr.shape} {where}")
    return float(arr.reshape(()))


# -- gradients ---------------------------------------------------------------------------------

_FD_STEP = np.finfo(np.float64).eps ** (1.0 / 3.0)   # ~6.1e-6, optimal for central differences


def _central_differences(fun: Callable, x: np.ndarray) -> np.ndarray:
    """Gradient of fun at x, shape (d,), by central differences.

    Per coordinate: h_i = eps**(1/3) * max(1, |x_i|) and
    g_i = (f(x + h_i e_i) - f(x - h_i e_i)) / (2 h_i), with 2 h_i taken as the distance between
    the two points actually evaluated (so rounding of x_i +- h_i does not bias g_i).
    """
    g = np.empty_like(x)
    for i in range(x.size):
        h = _FD_STEP * max(1.0, abs(x[i]))
        xp = x.copy()
        xm = x.copy()
        xp[i] += h
        xm[i] -= h
        fp = _scalar_value(fun(xp), "in a finite-difference evaluation")
        fm = _scalar_value(fun(xm), "in a finite-difference evaluation")
        g[i] = (fp - fm) / (xp[i] - xm[i])
    return g


def _call_grad(grad: Callable, x: np.ndarray) -> np.ndarray:
    g = np.asarray(grad(x.copy()))
    if g.dtype.kind not in "biuf":
        raise TypeError(f"grad must return real numbers, got dtype {g.dtype}")
    if g.shape != x.shape:
        raise ValueError(f"grad must return an array of shape {x.shape} (like x), "
                         f"got shape {g.shape}")
    return g.astype(np.float64, copy=True)


@v.validate_params({
    "fun": v.CALLABLE, "grad": v.CALLABLE_OR_NONE, "lr": v.POSITIVE, "momentum": v.FRACTION,
    "max_iter": v.Integer(low=0), "tol": v.NON_NEGATIVE,
})
def minimize(fun: Callable[[np.ndarray], float], x0, grad: Optional[Callable] = None,
             lr: float = 0.1, momentum: float = 0.0, max_iter: int = 10_000,
             tol: float = 1e-8) -> MinimizeResult:
    r"""Minimize ``fun`` by (heavy-ball) gradient descent from ``x0``.

    Gradient descent repeats ``x <- x - lr * grad f(x)``: a small step downhill, along the
    steepest direction. The learning rate ``lr`` sets the step. Too small and the iterates
    crawl; too large and they overshoot the minimum. On a quadratic
    :math:`\tfrac12 x^\top A x - b^\top x` whose largest curvature (eigenvalue of ``A``) is
    ``L``, plain gradient descent converges for ``0 < lr < 2 / L`` (fastest near ``1 / L``) and
    oscillates with growing amplitude, i.e. diverges, for ``lr > 2 / L``.

    With ``momentum > 0`` the update is the heavy ball of ``torch.optim.SGD``::

        v <- momentum * v + grad f(x)      (v starts at 0)
        x <- x - lr * v

    which speeds up progress along long, shallow valleys (e.g. Rosenbrock's).

    Parameters
    ----------
    fun : callable
        ``fun(x) -> float`` with ``x`` an ndarray of shape (d,). It must return a finite real
        scalar at ``x0``.
    x0 : array_like of shape (d,) or scalar
        Starting point; a scalar is a point of dimension 1. Must be finite and non-empty.
    grad : callable, optional
        ``grad(x) -> ndarray of shape (d,)``, the gradient of ``fun``. When None, central
        finite differences are used (2 d calls of ``fun`` per iterate), with the step
        ``h_i = eps**(1/3) * max(1, |x_i|)`` per coordinate.
    lr : float, default 0.1
        Learning rate, > 0 and finite.
    momentum : float, default 0.0
        Heavy-ball coefficient in ``[0, 1)``; 0 is plain gradient descent.
    max_iter : int, default 10_000
        Maximum number of steps, >= 0.
    tol : float, default 1e-8
        Converged when the gradient's Euclidean norm is ``<= tol``, checked at every iterate
        (including ``x0``) before stepping. Finite and >= 0.

    Returns
    -------
    MinimizeResult
        ``.x`` (d,), ``.fun``, ``.grad_norm`` (at ``.x``), ``.nit`` (steps taken),
        ``.converged``, ``.diverged``, ``.path`` (nit + 1, d) with every iterate from ``x0``
        to ``.x``, and ``.message``.

    Notes
    -----
    The run is declared diverged, and stops, when the gradient, the next iterate or the value
    there is not finite, or when the value grows past ``1e12 * max(1, |fun(x0)|)``. A step that
    produced a non-finite iterate or value is discarded (not counted in ``nit``, not in
    ``path``), so ``.x`` is always the last finite iterate. Reaching ``max_iter`` without
    meeting ``tol`` gives ``converged=False, diverged=False``.

    Raises
    ------
    TypeError
        ``fun`` or ``grad`` not callable; an argument of the wrong type; ``fun`` or ``grad``
        returning something that is not real numbers.
    ValueError
        A hyper-parameter out of range; ``x0`` empty, not 1-d or not finite; ``fun(x0)`` not a
        finite scalar; ``grad`` returning the wrong shape.

    Examples
    --------
    >>> import numpy as np
    >>> import gdcore as gd
    >>> A = np.array([[3.0, 0.5], [0.5, 1.0]]); b = np.array([1.0, -1.0])
    >>> res = gd.minimize(lambda x: 0.5 * x @ A @ x - b @ x, x0=[0.0, 0.0],
    ...                   grad=lambda x: A @ x - b, lr=0.3)
    >>> res.converged, np.allclose(res.x, np.linalg.solve(A, b))
    (True, True)
    >>> res.path.shape == (res.nit + 1, 2)
    True
    """
    x = v.vector(x0, "x0")
    f = _scalar_value(fun(x.copy()), "at x0")
    if not math.isfinite(f):
        raise ValueError(f"fun must return a finite value at x0, got {f}")

    def gradient(at: np.ndarray) -> np.ndarray:
        return _central_differences(fun, at) if grad is None else _call_grad(grad, at)

    limit = _BLOWUP * max(1.0, abs(f))
    velocity = np.zeros_like(x)
    path = [x.copy()]
    nit = 0
    converged = diverged = False

    # -- descend --
    while True:
        g = gradient(x)
        with np.errstate(over="ignore", invalid="ignore"):
            grad_norm = float(np.linalg.norm(g))
        if not math.isfinite(grad_norm):
            diverged, message = True, "diverged: the gradient is not finite"
            break
        if grad_norm <= tol:
            converged, message = True, f"converged: gradient norm <= tol ({tol:g})"
            break
        if nit >= max_iter:
            message = f"stopped: max_iter ({max_iter}) steps without reaching tol"
            break
        with np.errstate(over="ignore", invalid="ignore"):
            v_new = momentum * velocity + g
            x_new = x - lr * v_new
        if not np.all(np.isfinite(x_new)):
            diverged, message = True, "diverged: the next iterate is not finite"
            break
        f_new = _scalar_value(fun(x_new.copy()), f"at iterate {nit + 1}")
        if not math.isfinite(f_new):
            diverged, message = True, f"diverged: fun is not finite at step {nit + 1}"
            break
        x, velocity, f = x_new, v_new, f_new
        nit += 1
        path.append(x.copy())
        if f > limit:
            diverged = True
            message = f"diverged: fun grew past {limit:.3g} (1e12 * max(1, |fun(x0)|))"
            g = gradient(x)
            with np.errstate(over="ignore", invalid="ignore"):
                grad_norm = float(np.linalg.norm(g))
            break

    path_arr = np.array(path)
    x_out = x.copy()
    path_arr.flags.writeable = False
    x_out.flags.writeable = False
    return MinimizeResult(x=x_out, fun=f, grad_norm=grad_norm, nit=nit, converged=converged,
                          diverged=diverged, path=path_arr, message=message)
