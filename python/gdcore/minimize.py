"""Gradient descent on any differentiable function of a vector: :func:`minimize`, and one
descent per learning rate in one call: :func:`minimize_many`.

``fun`` is a Python callable (the descent loop is the NumPy reference,
``reference/descent.py``) or a compiled C function of NLopt's prototype (``_compiled.py``),
whose whole descent runs in C++ without the GIL (``csrc/gd/descent.cpp``) under the C++
backend, or in the reference loop through ctypes under the NumPy one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from . import _backend
from . import _validation as v
from ._compiled import CompiledObjective, compiled_objective, is_compiled
from .reference.codes import DESCENT_STATUS
from .reference.descent import DescentConfig, DescentResult, descend

__all__ = ["minimize", "minimize_many", "MinimizeResult"]


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


class _PythonObjective:
    """A Python ``fun`` and ``grad`` (None: central differences) as the reference descent's
    objective ``objective(x, grad, data)``: the value, and the gradient written into ``grad``
    only where the value is finite (as before the objective convention, ``grad`` is never
    called where ``fun`` is not finite). Counts its calls to name the iterate in messages."""

    def __init__(self, fun: Callable, grad: Optional[Callable]) -> None:
        self.fun, self.grad, self.calls = fun, grad, 0

    def __call__(self, x: np.ndarray, grad: Optional[np.ndarray], data: Any) -> float:
        where = "at x0" if self.calls == 0 else f"at iterate {self.calls}"
        self.calls += 1
        f = _scalar_value(self.fun(x.copy()), where)
        if grad is not None and math.isfinite(f):
            grad[...] = (_central_differences(self.fun, x) if self.grad is None
                         else _call_grad(self.grad, x))
        return f


# -- running the descents ----------------------------------------------------------------------

_S = DESCENT_STATUS
_DIVERGED = {_S["grad_not_finite"], _S["iterate_not_finite"], _S["fun_not_finite"],
             _S["fun_blew_up"]}


def _message(r: DescentResult, config: DescentConfig) -> str:
    """Why the run stopped, in words (the same for both engines)."""
    status = r.status
    if status == _S["converged"]:
        return f"converged: gradient norm <= tol ({config.tol:g})"
    if status == _S["max_iter"]:
        return f"stopped: max_iter ({config.max_iter}) steps without reaching tol"
    if status == _S["grad_not_finite"]:
        return "diverged: the gradient is not finite"
    if status == _S["iterate_not_finite"]:
        return "diverged: the next iterate is not finite"
    if status == _S["fun_not_finite"]:
        return f"diverged: fun is not finite at step {r.nit + 1}"
    if status == _S["fun_blew_up"]:
        return f"diverged: fun grew past {r.limit:.3g} (1e12 * max(1, |fun(x0)|))"
    raise AssertionError(f"unexpected descent status {status}")  # pragma: no cover


def _result(r: DescentResult, config: DescentConfig, x: np.ndarray,
            path: np.ndarray) -> MinimizeResult:
    """The public result of one descent; ValueError for the runs that could not be run."""
    if r.status == _S["fun_not_finite_at_x0"]:
        raise ValueError(f"fun must return a finite value at x0, got {r.fun}")
    if r.status == _S["grad_not_filled"]:
        where = "at x0" if path.shape[0] == 0 else f"at iterate {r.nit + 1}"
        raise ValueError(
            f"the compiled fun did not write grad[{r.unfilled}] {where}: a compiled fun must "
            f"write all n entries of grad whenever grad is not NULL (NLopt's convention; "
            f"gd.minimize always asks for the gradient)")
    x_out = np.array(x, dtype=np.float64)
    path_arr = np.array(path, dtype=np.float64)
    x_out.flags.writeable = False
    path_arr.flags.writeable = False
    return MinimizeResult(x=x_out, fun=float(r.fun), grad_norm=float(r.grad_norm),
                          nit=int(r.nit), converged=r.status == _S["converged"],
                          diverged=r.status in _DIVERGED, path=path_arr,
                          message=_message(r, config))


_MAX_STEPS = 2 ** 63 - 1   # the C++ step counter (long long); more is never reached


def _descents(objective: Any, x0: np.ndarray, configs: list) -> list:
    """One MinimizeResult per DescentConfig (same momentum, max_iter and tol; their lr vary).

    ``objective``: a CompiledObjective (C++ under the C++ backend: all rates in one call without
    the GIL; else the reference loop through ctypes) or a ``(fun, grad)`` pair of Python
    callables (the reference loop)."""
    if isinstance(objective, CompiledObjective) and _backend.backend() == "cpp":
        c = configs[0]
        lrs = np.array([config.lr for config in configs], dtype=np.float64)
        runs = _backend._core.descend(objective.address, objective.data, x0, lrs,
                                      c.momentum, min(c.max_iter, _MAX_STEPS), c.tol)
        out = []
        for config, (status, nit, fun, grad_norm, limit, unfilled, x, path) in zip(configs, runs):
            r = DescentResult(status=status, nit=nit, fun=fun, grad_norm=grad_norm,
                              limit=limit, unfilled=unfilled)
            out.append(_result(r, config, x, path))
        return out
    out = []
    for config in configs:
        x = x0.copy()
        if isinstance(objective, CompiledObjective):
            r, path = descend(objective.as_function(), objective.data, x, config)
        else:
            r, path = descend(_PythonObjective(*objective), None, x, config)
        out.append(_result(r, config, x, path))
    return out


def _objective(fun: Any, grad: Optional[Callable], data: Any) -> Any:
    """``fun`` (with ``grad`` and ``data``) checked: a CompiledObjective or a ``(fun, grad)``
    pair."""
    if is_compiled(fun):
        if grad is not None:
            raise TypeError("grad must be None when fun is a compiled function: the compiled "
                            "function computes the gradient itself (it fills grad when grad is "
                            "not NULL)")
        return compiled_objective(fun, data)
    if data is not None:
        raise TypeError("data is for compiled functions (passed as their void *data); a Python "
                        "fun takes its data from its closure")
    return (fun, grad)


_CONSTRAINTS = {"fun": v.OBJECTIVE, "grad": v.CALLABLE_OR_NONE, "lr": v.POSITIVE,
                "momentum": v.FRACTION, "max_iter": v.Integer(low=0), "tol": v.NON_NEGATIVE}


@v.validate_params(_CONSTRAINTS)
def minimize(fun: Any, x0: Any, grad: Optional[Callable] = None, lr: float = 0.1,
             momentum: float = 0.0, max_iter: int = 10_000, tol: float = 1e-8,
             data: Any = None) -> MinimizeResult:
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
    fun : callable or compiled function
        Either a Python ``fun(x) -> float`` with ``x`` an ndarray of shape (d,), or a compiled
        C function of NLopt's prototype ::

            double f(int n, const double *x, double *grad, void *data)

        that returns the value at ``x[0..n)`` and, when ``grad`` is not NULL, writes the
        gradient into all of ``grad[0..n)`` (gd.minimize always passes ``grad``). It may be
        given as a ctypes function pointer with ``restype`` ``c_double`` and ``argtypes``
        ``(c_int, POINTER(c_double), POINTER(c_double), c_void_p)`` (e.g. a function of a
        ``ctypes.CDLL``, or numba's ``cfunc(...).ctypes``; a numba ``cfunc`` itself is taken
        as its ``.ctypes``), a ``scipy.LowLevelCallable``, or a
        ``PyCapsule`` named by the signature ``"double (int, double *, double *, void *)"``
        (``const double *`` accepted; Cython's ``module.__pyx_capi__["f"]``). The whole descent
        then runs in C++ without the GIL, with the same iterates as the Python path. It must
        return a finite value at ``x0``.
    x0 : array_like of shape (d,) or scalar
        Starting point; a scalar is a point of dimension 1. Must be finite and non-empty.
    grad : callable, optional
        For a Python ``fun``: ``grad(x) -> ndarray of shape (d,)``, its gradient. When None,
        central finite differences are used (2 d calls of ``fun`` per iterate), with the step
        ``h_i = eps**(1/3) * max(1, |x_i|)`` per coordinate. Must be None for a compiled
        ``fun`` (it computes its own gradient).
    lr : float, default 0.1
        Learning rate, > 0 and finite.
    momentum : float, default 0.0
        Heavy-ball coefficient in ``[0, 1)``; 0 is plain gradient descent.
    max_iter : int, default 10_000
        Maximum number of steps, >= 0.
    tol : float, default 1e-8
        Converged when the gradient's Euclidean norm is ``<= tol``, checked at every iterate
        (including ``x0``) before stepping. Finite and >= 0.
    data : optional
        For a ctypes function or a PyCapsule: what it receives as ``void *data``: None (NULL;
        a PyCapsule's context then), an int address, a ctypes object (a pointer, or any other
        ctypes instance by its address) or a C-contiguous ndarray (its first element). A
        ``scipy.LowLevelCallable`` passes its ``user_data`` instead. Kept alive during the call.

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

    A compiled ``fun`` is called once per iterate, with ``grad``. Each call's ``grad`` is first
    filled with a marked NaN: an entry still holding it afterwards (the function ignored
    ``grad``) raises ValueError. A compiled descent checks for signals (Ctrl-C) every 256
    steps. A ctypes function that wraps a Python function works (ctypes takes the GIL), but an
    exception it raises cannot cross the C boundary: ctypes reports it through
    ``sys.unraisablehook`` and the call returns 0.0 with ``grad`` unwritten, so the descent
    stops with the ValueError above; use a Python ``fun`` for such code.

    Raises
    ------
    TypeError
        ``fun`` neither callable nor a compiled function; a ctypes function of another
        prototype, a capsule or LowLevelCallable of another signature; ``grad`` given with a
        compiled ``fun``; ``data`` with a Python ``fun``; an argument of the wrong type;
        ``fun`` or ``grad`` returning something that is not real numbers.
    ValueError
        A hyper-parameter out of range; ``x0`` empty, not 1-d or not finite; ``fun(x0)`` not a
        finite scalar; ``grad`` returning the wrong shape; a compiled ``fun`` that left
        ``grad`` unwritten.

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
    objective = _objective(fun, grad, data)
    return _descents(objective, x, [DescentConfig(lr, momentum, max_iter, tol)])[0]


@v.validate_params({name: c for name, c in _CONSTRAINTS.items() if name != "lr"})
def minimize_many(fun: Any, x0: Any, lrs: Sequence[float], grad: Optional[Callable] = None,
                  momentum: float = 0.0, max_iter: int = 10_000, tol: float = 1e-8,
                  data: Any = None) -> list:
    """One :func:`minimize` per learning rate of ``lrs``, from the same ``x0``, in one call.

    For a compiled ``fun`` every descent runs in C++ within one call without the GIL; for a
    Python one, in a loop. The results equal ``[minimize(fun, x0, lr=lr, ...) for lr in lrs]``
    and are ready for :func:`gdcore.plot.plot_descent` (the picture of rates too small, right
    and too large)::

        rates = [0.01, 0.1, 0.21]
        gdcore.plot.plot_descent(f, gd.minimize_many(f, [2.0, 1.5], rates, grad=g),
                                 labels=[f"lr={r}" for r in rates])

    Parameters
    ----------
    fun, x0, grad, momentum, max_iter, tol, data
        As :func:`minimize`.
    lrs : sequence of float
        The learning rates, each > 0 and finite; at least one.

    Returns
    -------
    list of MinimizeResult
        One per rate, in the order of ``lrs``.

    Raises
    ------
    TypeError, ValueError
        As :func:`minimize`; ``lrs`` not a non-empty sequence of positive finite numbers.
        The descents run in order; an error in one raises, and no result is returned.
    """
    if isinstance(lrs, (str, bytes)) or not isinstance(lrs, (Sequence, np.ndarray)):
        raise TypeError(f"lrs must be a sequence of learning rates, got {type(lrs).__name__}")
    if np.ndim(lrs) != 1 or len(lrs) == 0:
        raise ValueError(f"lrs must be a non-empty 1-d sequence of learning rates, got {lrs!r}")
    rates = [v.POSITIVE(lr.item() if isinstance(lr, np.generic) else lr, f"lrs[{i}]")
             for i, lr in enumerate(lrs)]
    x = v.vector(x0, "x0")
    objective = _objective(fun, grad, data)
    return _descents(objective, x, [DescentConfig(lr, momentum, max_iter, tol) for lr in rates])
