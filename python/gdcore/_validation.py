"""Checks at the public boundary: every user argument passes through here.

Each check raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind, wrong
value) with a message that names the argument and says what was expected, *before* any
computation or state change. The engines check only what keeps their memory accesses right
(``csrc/bindings/checks.hpp``, ``reference/checks.py``).

Scalar arguments are described declaratively, as scikit-learn's ``_parameter_constraints``:
a table ``{name: constraint}`` (:class:`Integer`, :class:`Real`, :class:`Options`,
:data:`FLAG`, :data:`SEED`, :data:`CALLABLE`), applied by :func:`check_params` or by the
:func:`validate_params` decorator. Arrays have their own functions (:func:`features`,
:func:`targets`, :func:`sample_weights`, :func:`class_labels`).
"""
from __future__ import annotations

import functools
import inspect
import math
import numbers
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from .reference.codes import LOSS_OUTPUT_ACTIVATION, LOSSES

DTYPES = {"float32": np.float32, "float64": np.float64}


def as_dtype(dtype: Any) -> np.dtype:
    """The network dtype for ``"float32"``/``"float64"`` (or the NumPy equivalents)."""
    try:
        resolved = np.dtype(dtype)
    except (TypeError, ValueError):
        resolved = None
    if resolved is None or resolved not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return resolved


def seed(seed: Any, name: str = "seed") -> Any:
    """``seed`` checked: None, a non-negative int or a numpy Generator."""
    if type(seed) is int and seed >= 0:  # (the common case, without the ABC isinstance)
        return seed
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be None, an int or a numpy Generator, got {seed!r}")
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative int, got {seed}")
    return int(seed)


def generator(seed_: Any, name: str = "seed") -> np.random.Generator:
    """A NumPy Generator from ``seed_``: None, a non-negative int or a Generator (returned as is)."""
    checked = seed(seed_, name)
    if isinstance(checked, np.random.Generator):
        return checked
    return np.random.default_rng(checked)


def integer(value: Any, name: str, low: Optional[int] = None,
            high: Optional[int] = None) -> int:
    """``value`` as an int (not a bool) in ``[low, high]``."""
    # type() first: the ABC isinstance checks cost a microsecond on every fit call.
    if type(value) is not int and (isinstance(value, bool)
                                   or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return int(value)


def positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int that is at least ``minimum``."""
    return integer(value, name, low=minimum)


def real(value: Any, name: str, *, low: Optional[float] = None, high: Optional[float] = None,
         low_open: bool = False, high_open: bool = False, finite: bool = True) -> float:
    """``value`` as a float (finite unless ``finite=False``) inside the given bounds.

    Messages name the bound that is crossed: ``"{name} must be > 0.0, got -1.0"``.
    """
    if type(value) is not float and type(value) is not int and (
            isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not finite:
        return value
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return value


def flag(value: Any, name: str) -> bool:
    """``value`` as a bool: only True, False or a NumPy bool (no 0/1, no strings)."""
    if value is True or value is False:  # (the common case, without the isinstance)
        return value
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def option(value: Any, name: str, options: Any) -> Any:
    """``value`` if it is one of ``options`` (compared by ==, strings only among strings)."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {sorted(options)}, got {value!r}")
    return value


def callable_(value: Any, name: str, allow_none: bool = False) -> Any:
    """``value`` if it is callable (or None when allowed)."""
    if value is None and allow_none:
        return value
    if not callable(value):
        what = "callable or None" if allow_none else "callable"
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    return value


def objective(value: Any, name: str) -> Any:
    """``value`` if it is callable or a compiled function (a ctypes function pointer, a
    ``scipy.LowLevelCallable`` or a ``PyCapsule``: gdcore/_compiled.py checks its prototype)."""
    from ._compiled import is_compiled
    if callable(value) or is_compiled(value):
        return value
    raise TypeError(f"{name} must be callable or a compiled function (a ctypes function "
                    f"pointer, a scipy.LowLevelCallable or a PyCapsule), got "
                    f"{type(value).__name__}")


# ------------------------------------------------------------------ declarative constraints

class Constraint:
    """What one scalar argument must be: ``constraint(value, name)`` returns the value checked
    and normalised (an ``int``, a ``float``, ...) or raises TypeError/ValueError.

    fit checks a dozen of them on every call, so the common cases are short: an ``int`` in
    range passes :class:`Integer` in one test, a plain ``str`` among the options
    :class:`Options`, True or False :data:`FLAG`.
    """

    def __call__(self, value: Any, name: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def of(check: Callable[[Any, str], Any], description: str) -> "Constraint":
        """A constraint made of a checking function ``check(value, name)``."""
        return _Function(check, description)


class Integer(Constraint):
    """An int (not a bool) in ``[low, high]`` (either bound may be None)."""

    def __init__(self, low: Optional[int] = None, high: Optional[int] = None) -> None:
        self.low, self.high = low, high

    def __call__(self, value: Any, name: str) -> int:
        if type(value) is int and (self.low is None or value >= self.low) and (
                self.high is None or value <= self.high):
            return value
        return integer(value, name, self.low, self.high)

    def __repr__(self) -> str:
        return f"Integer(low={self.low}, high={self.high})"


class Real(Constraint):
    """A finite real number in an interval. ``closed`` is ``"both"``, ``"left"``, ``"right"``
    or ``"neither"``, as scikit-learn's ``Interval``; ``finite=False`` lets NaN and inf pass
    (and then no bound is checked)."""

    def __init__(self, low: Optional[float] = None, high: Optional[float] = None,
                 closed: str = "both", finite: bool = True) -> None:
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be 'both', 'left', 'right' or 'neither', got {closed!r}")
        self.low, self.high, self.closed, self.finite = low, high, closed, finite
        self._low_open = closed in ("right", "neither")
        self._high_open = closed in ("left", "neither")
        # The common case's test: a float in [lo, hi] that is neither an open end nor infinite.
        self._lo = -math.inf if low is None else low
        self._hi = math.inf if high is None else high
        self._excluded = (-math.inf, math.inf, *([low] if self._low_open else []),
                          *([high] if self._high_open else []))

    def __call__(self, value: Any, name: str) -> float:
        if self.finite and type(value) is float and self._lo <= value <= self._hi \
                and value not in self._excluded:  # (NaN fails the comparisons)
            return value
        return real(value, name, low=self.low, high=self.high, low_open=self._low_open,
                    high_open=self._high_open, finite=self.finite)

    def __repr__(self) -> str:
        return f"Real(low={self.low}, high={self.high}, closed={self.closed!r})"


class Options(Constraint):
    """One of a set of strings."""

    def __init__(self, options: Any) -> None:
        self.options = tuple(options)

    def __call__(self, value: Any, name: str) -> Any:
        if type(value) is str and value in self.options:
            return value
        return option(value, name, self.options)

    def __repr__(self) -> str:
        return f"Options({self.options!r})"


class OrNone(Constraint):
    """None, or what ``constraint`` accepts."""

    def __init__(self, constraint: Constraint) -> None:
        self.constraint = constraint

    def __call__(self, value: Any, name: str) -> Any:
        return None if value is None else self.constraint(value, name)

    def __repr__(self) -> str:
        return f"OrNone({self.constraint!r})"


class _Function(Constraint):
    """A constraint made of a checking function ``f(value, name)``."""

    def __init__(self, check: Callable[[Any, str], Any], description: str) -> None:
        self.check, self.description = check, description

    def __call__(self, value: Any, name: str) -> Any:
        return self.check(value, name)

    def __repr__(self) -> str:
        return self.description


FLAG = _Function(flag, "FLAG")
SEED = _Function(seed, "SEED")
CALLABLE = _Function(callable_, "CALLABLE")
CALLABLE_OR_NONE = _Function(functools.partial(callable_, allow_none=True), "CALLABLE_OR_NONE")
OBJECTIVE = _Function(objective, "OBJECTIVE")  # gd.minimize's fun: Python or compiled
POSITIVE = Real(low=0.0, closed="right")     # > 0
NON_NEGATIVE = Real(low=0.0)                 # >= 0
FRACTION = Real(low=0.0, high=1.0, closed="left")  # [0, 1)

#: The regularisers of fit, train_epoch, loss and gradients (docs/API.md): l2 is scikit-learn's
#: alpha, label_smoothing torch's; a layer's dropout rate is DROPOUT_RATE below.
REGULARISER_CONSTRAINTS = {"l2": NON_NEGATIVE, "label_smoothing": FRACTION}
#: The losses label smoothing applies to (their targets are probabilities).
SMOOTHABLE_LOSSES = ("cross_entropy", "bce")


def regularisers(l2: Any, label_smoothing: Any, loss: str) -> tuple:
    """``(l2, label_smoothing)`` checked (REGULARISER_CONSTRAINTS) as floats; label smoothing
    other than 0 only with a loss of SMOOTHABLE_LOSSES."""
    checked = check_params(REGULARISER_CONSTRAINTS, {"l2": l2, "label_smoothing": label_smoothing})
    check_label_smoothing(checked["label_smoothing"], loss)
    return checked["l2"], checked["label_smoothing"]


def check_label_smoothing(label_smoothing: float, loss: str) -> None:
    """ValueError for a (checked) label smoothing other than 0 with a loss outside
    SMOOTHABLE_LOSSES."""
    if label_smoothing > 0 and loss not in SMOOTHABLE_LOSSES:
        raise ValueError(f"label_smoothing applies to the losses {SMOOTHABLE_LOSSES}; this "
                         f"network uses {loss!r}")


#: A layer's dropout rate (``Layer(..., dropout=)``, ``layer.dropout = ``,
#: ``Network.from_sizes(..., dropout=)``): the fraction of its outputs dropped while training.
#: A network's output layer has none (:func:`output_dropout`).
DROPOUT_RATE = FRACTION


def hidden_dropout(dropout: Any, n_hidden: int) -> list:
    """``Network.from_sizes``' ``dropout`` as one DROPOUT_RATE per hidden layer: one rate for
    all ``n_hidden`` of them, or a sequence of ``n_hidden`` rates."""
    if isinstance(dropout, (str, bytes)) or not isinstance(dropout, (Sequence, np.ndarray)):
        return [DROPOUT_RATE(dropout, "dropout")] * n_hidden
    if len(dropout) != n_hidden:
        raise ValueError(f"dropout must hold one rate per hidden layer ({n_hidden}), "
                         f"got {len(dropout)}")
    return [DROPOUT_RATE(r, f"dropout[{i}]") for i, r in enumerate(dropout)]


def output_dropout(rate: float, which: str) -> None:
    """ValueError unless ``rate``, the dropout rate of a network's output layer, is 0:
    dropout applies to hidden layers only. ``which`` ends the message (the layer, its rate:
    ``{rate}`` in it is replaced by the rate; formatted only for the error, as fit and
    train_epoch check on every call)."""
    if not rate == 0.0:
        raise ValueError("dropout applies to hidden layers only; " + which.format(rate=rate))


def dropout_rates(rates: Any) -> Optional[np.ndarray]:
    """The dropout rates of a network's layers (first to last) as the engines take them: a
    float64 array, or None when every rate is 0. ValueError when the last layer has one."""
    output_dropout(rates[-1], "the output layer has rate {rate}")
    if not any(rates):
        return None
    return np.array(rates, dtype=np.float64)


def check_params(constraints: Mapping[str, Constraint], values: Mapping[str, Any],
                 ) -> dict[str, Any]:
    """``values`` checked by their constraints, in the table's order: a new dict of the
    normalised values (names without a constraint pass unchanged)."""
    checked = dict(values)
    for name, constraint in constraints.items():
        if name in checked:
            checked[name] = constraint(checked[name], name)
    return checked


class CheckedParams:
    """:func:`check_params` for one table, on the values given in the table's order, that
    remembers the tuples of values it passed unchanged.

    A constraint is a pure function of the value, and on the builtin scalars (None, bool,
    int, float, str) values of the same types that compare equal pass or fail alike; a value
    that passes unchanged (an int for :class:`Integer`, a float for :class:`Real`, ...) is
    returned as it is. So a tuple of such values that passed unchanged once passes again
    without running the checks: fit called again with the same arguments checks them in one
    set lookup. Every other tuple is checked as :func:`check_params` checks it.
    """

    _SCALARS = frozenset((type(None), bool, int, float, str))
    #: At most this many remembered tuples per table (then the others are always checked).
    _LIMIT = 256

    def __init__(self, constraints: Mapping[str, Constraint]) -> None:
        self.constraints = tuple(constraints.items())
        self._passed: set = set()

    def __call__(self, *values: Any) -> tuple:
        """The values checked and normalised, as a tuple in the table's order."""
        types = tuple(map(type, values))  # (True == 1 == 1.0: the types tell them apart)
        # Only builtin scalars are looked up: hashing them runs no user code.
        scalars = self._SCALARS.issuperset(types)
        if scalars and (values, types) in self._passed:
            return values
        checked = tuple(constraint(value, name)
                        for (name, constraint), value in zip(self.constraints, values))
        if (scalars and len(self._passed) < self._LIMIT
                and all(a is b for a, b in zip(checked, values))):
            self._passed.add((values, types))
        return checked


def validate_params(constraints: Mapping[str, Constraint]) -> Callable:
    """Decorator: check the named arguments of every call by ``constraints`` (as
    :func:`check_params`) and call the function with the normalised values.

    >>> @validate_params({"n": Integer(low=1)})
    ... def f(n=3):
    ...     return n
    >>> f(2)
    2
    """
    def decorate(function: Callable) -> Callable:
        signature = inspect.signature(function)
        unknown = set(constraints) - set(signature.parameters)
        if unknown:
            raise TypeError(f"{function.__qualname__} has no parameter {sorted(unknown)}")

        @functools.wraps(function)
        def checked(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            for name, constraint in constraints.items():
                bound.arguments[name] = constraint(bound.arguments[name], name)
            return function(*bound.args, **bound.kwargs)

        checked.parameter_constraints = dict(constraints)  # type: ignore[attr-defined]
        return checked
    return decorate


def _numeric_array(a: Any, name: str) -> np.ndarray:
    """``a`` as a NumPy array of real numbers (bool and integers allowed)."""
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers, got an array of dtype {arr.dtype}"
        )
    return arr


def _cast(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """An aligned C-contiguous array of ``dtype``; no copy when ``arr`` already is one.

    (An unaligned view, e.g. ``buffer[1:].view(np.float32)``, is copied: the compiled kernels
    load whole aligned elements.)"""
    if arr.dtype == dtype and arr.flags.c_contiguous and arr.flags.aligned:
        return arr
    with np.errstate(over="ignore", invalid="ignore"):  # out-of-range values become inf: caught next
        return np.require(arr, dtype=dtype, requirements=["C", "A"])


def _all_finite_numpy(arr: np.ndarray) -> bool:
    return bool(np.isfinite(arr).all())


#: Replaced at import by the compiled core's one-pass check when it is built (see _backend).
all_finite = _all_finite_numpy


def _check_finite(arr: np.ndarray, name: str) -> None:
    if arr.dtype.kind == "f" and not all_finite(arr):
        bad = "NaN" if np.isnan(arr).any() else "infinity"
        raise ValueError(f"{name} contains {bad}; every value must be finite")


def vector(x: Any, name: str) -> np.ndarray:
    """``x`` (a number or a 1-d sequence of them) as a new finite float64 1-d array."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers, got dtype {arr.dtype}")
    out = np.array(np.atleast_1d(arr), dtype=np.float64)  # a fresh copy
    if out.ndim != 1:
        raise ValueError(f"{name} must be a scalar or 1-d, got shape {arr.shape}")
    if out.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be finite (no nan or inf)")
    return out


def features(X: Any, n_features: int, dtype: np.dtype, name: str = "X") -> np.ndarray:
    """``X`` as a C-contiguous ``(n_samples, n_features)`` array of ``dtype``.

    A 1-D ``X`` of length ``n_features`` is one sample.
    """
    arr = _numeric_array(X, name)
    if arr.ndim == 1:
        if arr.shape[0] != n_features:
            raise ValueError(
                f"{name} is 1-D with {arr.shape[0]} values; a single sample needs "
                f"{n_features} features (or pass a 2-D array of shape (n_samples, {n_features}))"
            )
        arr = arr.reshape(1, n_features)
    elif arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D of shape (n_samples, {n_features}), got {arr.ndim}-D shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has no samples")
    if arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features but the network expects {n_features}"
        )
    arr = _cast(arr, dtype)
    _check_finite(arr, name)
    return arr


def targets(y: Any, loss: str, n_outputs: int, n_samples: int, dtype: np.dtype,
            name: str = "y") -> np.ndarray:
    """``y`` in the layout the engines take for ``loss`` (see docs/design.md).

    cross_entropy: int64 class indices ``(n,)`` or probabilities ``(n, k)`` of ``dtype``;
    every other loss: ``(n, n_outputs)`` of ``dtype`` (a 1-D ``y`` when ``n_outputs == 1``).
    """
    arr = _numeric_array(y, name)
    if arr.ndim == 0:
        raise ValueError(f"{name} must be an array with one entry per sample, got a scalar")
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} samples but X has {n_samples}"
        )
    if loss == "cross_entropy":
        if arr.ndim == 1:
            return class_labels(arr, n_outputs, name)
        if arr.ndim != 2 or arr.shape[1] != n_outputs:
            raise ValueError(
                f"{name} for cross_entropy must be class indices of shape ({n_samples},) or "
                f"probabilities of shape ({n_samples}, {n_outputs}), got shape {arr.shape}"
            )
        probs = _cast(arr, dtype)
        _check_finite(probs, name)
        if (probs < 0).any():
            raise ValueError(f"{name} holds negative probabilities; each row must be a distribution")
        tol = 1e-4 if dtype == np.float32 else 1e-6
        sums = probs.sum(axis=1, dtype=np.float64)
        if not np.allclose(sums, 1.0, rtol=0.0, atol=tol):
            worst = int(np.argmax(np.abs(sums - 1.0)))
            raise ValueError(
                f"each row of {name} must sum to 1 (one-hot or probabilities); "
                f"row {worst} sums to {sums[worst]:.6g}"
            )
        return probs
    if arr.ndim == 1:
        if n_outputs != 1:
            raise ValueError(
                f"{name} is 1-D but the network has {n_outputs} outputs; "
                f"expected shape ({n_samples}, {n_outputs})"
            )
        arr = arr.reshape(n_samples, 1)
    elif arr.ndim != 2 or arr.shape[1] != n_outputs:
        raise ValueError(
            f"{name} must have shape ({n_samples}, {n_outputs}) to match the network's output, "
            f"got {arr.shape}"
        )
    out = _cast(arr, dtype)
    _check_finite(out, name)
    if loss == "bce" and not _within(out, 0.0, 1.0):
        raise ValueError(f"{name} for bce must hold targets in [0, 1]")
    return out


def _within(arr: np.ndarray, low: float, high: float) -> bool:
    """Whether every value of the finite ``arr`` is in ``[low, high]``.

    (Read at the smallest and largest entries' indices: ``argmin``/``argmax`` skip the
    reduction machinery of ``min``/``max``, several times cheaper on the small arrays of
    mini-batch loops.)"""
    return arr.size == 0 or (arr.item(arr.argmin()) >= low and arr.item(arr.argmax()) <= high)


def class_labels(arr: np.ndarray, n_classes: int, name: str = "y") -> np.ndarray:
    """1-D class indices as int64, each in ``[0, n_classes)``."""
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinity; class labels must be integers")
        if (arr != np.round(arr)).any():
            raise ValueError(f"{name} must hold integer class labels, got non-integer values")
    # Range check before the cast to int64: huge floats or uint64 would wrap (or warn).
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(
            f"{name} holds class labels in [{arr.min()}, {arr.max()}] but the network "
            f"has {n_classes} outputs: labels must be in [0, {n_classes - 1}]"
        )
    return np.require(arr, dtype=np.int64, requirements=["C", "A"])  # aligned, as _cast


def sample_weights(w: Any, n_samples: int, dtype: np.dtype, name: str = "sample_weight",
                   with_scale: bool = False) -> Any:
    """``w`` as a C-contiguous ``(n_samples,)`` array of ``dtype``, or None.

    The one rule for sample weights, shared by both engines: they are scaled by the power of
    two that brings the largest into [0.5, 1), before the cast to ``dtype``. The weighted mean
    ``sum(w * l) / sum(w)`` does not depend on the scale, and a power of two keeps every ratio
    exact, so no result changes; but neither engine can overflow summing huge weights (3e38 in
    float32, 1e308 in float64) or divide by the sum of denormals (1e-45 in float32). Float64
    weights beyond float32's range are therefore fine for a float32 network; a weight whose
    ratio to the largest is below the smallest positive number of ``dtype`` becomes 0.

    With ``with_scale`` the result is ``(weights, shift)``: the weights were multiplied by
    ``2 ** shift`` (0 without weights), so a penalty divided by their sum (``l2``) is
    multiplied by the same (:func:`scaled_l2`) and the objective does not change.

    Raises
    ------
    TypeError
        ``w`` does not hold real numbers.
    ValueError
        Wrong shape, NaN or infinity, a negative weight, or all weights zero.
    """
    if w is None:
        return (None, 0) if with_scale else None
    arr = _numeric_array(w, name)
    if arr.ndim != 1 or arr.shape[0] != n_samples:
        raise ValueError(f"{name} must have shape ({n_samples},), got {arr.shape}")
    # Checked and scaled in the weights' own float type (float64 for any other), then cast.
    own = arr.dtype if arr.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    arr = _cast(arr, own)
    _check_finite(arr, name)
    if (arr < 0).any():
        raise ValueError(f"{name} must be non-negative")
    largest = float(arr.max()) if arr.size else 0.0
    if not largest > 0:
        raise ValueError(f"{name} must have a positive sum")
    exponent = math.frexp(largest)[1]
    if exponent:
        arr = np.ldexp(arr, -exponent)  # exact: only the exponent of each weight changes
    arr = _cast(arr, dtype)
    return (arr, -exponent) if with_scale else arr


def scaled_l2(l2: float, shift: int) -> float:
    """``l2 * 2 ** shift`` for the engines, which see sample weights scaled by ``2 ** shift``
    (:func:`sample_weights`): the penalty over their sum is then the one over the weights as
    given. ValueError when that overflows (a penalty beyond the float range: weights whose
    sum is below ~1e-308 times l2)."""
    try:
        return math.ldexp(l2, shift)
    except OverflowError:
        raise ValueError(f"l2={l2} over the sum of these sample weights overflows; scale the "
                         f"sample weights up") from None


def layer_stack(layers: Any, loss: Any) -> None:
    """A network's structure: ``layers`` as ``(n_inputs, n_outputs, activation)`` per layer,
    first to last, and the loss. Sizes chain; softmax only on the output layer, with at least
    two outputs; the loss is known and its output activation is there (``codes.def``)."""
    for i in range(1, len(layers)):
        if layers[i][0] != layers[i - 1][1]:
            raise ValueError(
                f"layers[{i}] takes {layers[i][0]} inputs but layers[{i - 1}] gives "
                f"{layers[i - 1][1]} outputs")
    for i, (_, _, activation) in enumerate(layers[:-1]):
        if activation == "softmax":
            raise ValueError(f"softmax is for the output layer only; layers[{i}] uses it")
    _, n_outputs, output = layers[-1]
    if output == "softmax" and n_outputs < 2:
        raise ValueError("a softmax output layer needs at least two outputs (with one its "
                         "output is always 1); use 'sigmoid' for a single output")
    option(loss, "loss", LOSSES)
    needed = LOSS_OUTPUT_ACTIVATION.get(loss)
    if needed is not None and output != needed:
        raise ValueError(f"loss {loss!r} needs a {needed!r} output layer, but the last layer "
                         f"uses {output!r}")


def trainable(params: Any) -> None:
    """ValueError unless every parameter array (``W0, b0, W1, b1, ...``) can be updated."""
    for i, p in enumerate(params):
        if not p.flags.writeable:
            what = "weights" if i % 2 == 0 else "bias"
            raise ValueError(f"the {what} of layers[{i // 2}] are read-only "
                             f"(setflags(write=False)); training must update them in place")
