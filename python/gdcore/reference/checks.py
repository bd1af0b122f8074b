"""The reference engine's checks, twin of ``csrc/bindings/checks.hpp``: only what keeps the
engine's array accesses right (the type, dtype, dimensions, layout and alignment of every
array, the range of every index and code), with the same messages and the same stable
``code`` attribute on each error. User-facing checks of values live in ``gdcore._validation``.
"""
from __future__ import annotations

from typing import Any, NoReturn

import numpy as np

#: The stable codes of the engines' argument errors, and the exception each raises
#: (docs/design.md): an engine error ``e`` has ``e.code`` in this table.
ERROR_CODES: dict[str, type] = {
    "type": TypeError,       # not an ndarray, a list or an int where one is needed
    "dtype": TypeError,      # an ndarray of another dtype (the engine never converts)
    "layout": TypeError,     # not C-contiguous, or not aligned to its element size
    "shape": ValueError,     # wrong number of dimensions, a wrong or too large dimension
    "readonly": ValueError,  # an array the engine writes is read-only
    "index": ValueError,     # an index, class label or code out of its range
    "structure": ValueError,  # layers that do not chain, or a loss that does not fit the output
}

_INT_MAX = 2**31 - 1


def fail(code: str, message: str) -> NoReturn:
    """Raise the error of ``code`` with ``message``, its ``code`` attribute set."""
    error = ERROR_CODES[code](message)
    error.code = code
    raise error


def shape_of(a: np.ndarray) -> str:
    """``"(3, 4)"``, ``"(3,)"``: a shape as the compiled engine prints it."""
    return "(" + ", ".join(str(s) for s in a.shape) + ("," if a.ndim == 1 else "") + ")"


def array_of(obj: Any, name: str, dtype: Any, ndim: int, expected: str,
             writeable: bool = False) -> np.ndarray:
    """``obj`` checked as a numpy.ndarray of exactly ``dtype``, ``ndim``-dimensional,
    C-contiguous and aligned, writeable if asked. ``expected`` describes the shape."""
    dtype = np.dtype(dtype)
    want = f"{dtype.name} array of shape {expected}"
    if not isinstance(obj, np.ndarray):
        fail("type", f"{name} must be a numpy.ndarray ({want}), got {type(obj).__name__}")
    if obj.dtype != dtype or not obj.dtype.isnative:
        fail("dtype", f"{name} must be a {want}, got dtype {obj.dtype} "
                      "(the engine does not convert dtypes)")
    if obj.ndim != ndim:
        fail("shape", f"{name} must be a {want}, got shape {shape_of(obj)}")
    if not obj.flags.c_contiguous:
        fail("layout", f"{name} must be C-contiguous (numpy.ascontiguousarray), got strides "
                       "of a non-contiguous view")
    if not obj.flags.aligned:
        fail("layout", f"{name} must be an aligned array")
    if writeable and not obj.flags.writeable:
        fail("readonly", f"{name} must be writeable")
    for i, size in enumerate(obj.shape):
        if size > _INT_MAX:
            fail("shape", f"{name} is too large: dimension {i} exceeds {_INT_MAX}")
    return obj


def dim(a: np.ndarray, axis: int, value: int, name: str, expected: str) -> None:
    """A shape error naming the argument unless ``a.shape[axis] == value``."""
    if a.shape[axis] != value:
        fail("shape", f"{name} must have shape {expected}, got {shape_of(a)}")


def integer(obj: Any, name: str) -> int:
    """A Python int (or NumPy integer), not a bool."""
    if isinstance(obj, (bool, np.bool_)) or not hasattr(type(obj), "__index__"):
        fail("type", f"{name} must be an int, got {type(obj).__name__}")
    value = obj.__index__()
    if not -2**63 <= value < 2**63:
        fail("index", f"{name} is out of range")
    return value


def code_in(obj: Any, name: str, what: str, count: int) -> int:
    """An integer code in ``[0, count)``; ``what`` names its kind (``"a loss code"``)."""
    value = integer(obj, name)
    if not 0 <= value < count:
        fail("index", f"{name} must be {what} in [0, {count}), got {value}")
    return value


def items(obj: Any, name: str) -> list:
    """The items of a list or tuple."""
    if not isinstance(obj, (list, tuple)):
        fail("type", f"{name} must be a list, got {type(obj).__name__}")
    return list(obj)
