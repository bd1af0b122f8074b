"""Compiled objectives of :func:`gdcore.minimize`: C functions of NLopt's prototype ::

    double f(int n, const double *x, double *grad, void *data)

(the value at ``x[0..n)``; the gradient written to ``grad[0..n)`` when ``grad`` is not NULL),
given as a ctypes function pointer of that prototype, a ``scipy.LowLevelCallable`` or a
``PyCapsule`` named by the signature (what Cython's ``__pyx_capi__`` holds). This module checks
the prototype and turns each into the address the C++ descent calls (``_core.descend``), and
into the function the NumPy twin calls (``reference.descent.descend``) through ctypes.

scipy is optional: a LowLevelCallable is recognised by its type's name and module, never by
importing scipy.
"""
from __future__ import annotations

import ctypes
import datetime
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

__all__ = ["PROTOTYPE", "SIGNATURES", "CompiledObjective", "is_compiled", "compiled_objective",
           "python_function"]

#: The ctypes prototype a ctypes function pointer must have (``restype`` and ``argtypes``).
PROTOTYPE = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_int, ctypes.POINTER(ctypes.c_double),
                             ctypes.POINTER(ctypes.c_double), ctypes.c_void_p)
_ARGTYPES = PROTOTYPE._argtypes_
#: The signature strings a PyCapsule's name (or a LowLevelCallable's signature) may be; spaces
#: do not matter.
SIGNATURES = ("double (int, double *, double *, void *)",
              "double (int, const double *, double *, void *)",
              "double (int, double const *, double *, void *)")
_NORMALISED = {"".join(s.split()) for s in SIGNATURES}

_CFuncPtr = ctypes.CFUNCTYPE(None).__mro__[1]   # ctypes' function pointer base class
_CData = ctypes.c_int.__mro__[-2]               # every ctypes instance's base class
_CapsuleType = type(datetime.datetime_CAPI)     # types.CapsuleType from Python 3.13


def _python_api(name: str, restype: Any, *argtypes: Any) -> Any:
    """A private ctypes handle on a C-API function (``ctypes.pythonapi``'s are shared: setting
    their argtypes would change them for everyone)."""
    return ctypes.PYFUNCTYPE(restype, *argtypes)((name, ctypes.pythonapi))


_capsule_name = _python_api("PyCapsule_GetName", ctypes.c_char_p, ctypes.py_object)
_capsule_pointer = _python_api("PyCapsule_GetPointer", ctypes.c_void_p, ctypes.py_object,
                               ctypes.c_char_p)
_capsule_context = _python_api("PyCapsule_GetContext", ctypes.c_void_p, ctypes.py_object)


@dataclass(frozen=True)
class CompiledObjective:
    """A checked compiled objective: the function's and the data's addresses, and the Python
    objects that own them (kept alive as long as this is)."""

    address: int
    data: int
    owners: tuple

    def as_function(self) -> Callable[[np.ndarray, Optional[np.ndarray], int], float]:
        """The function the NumPy twin calls, ``fun(x, grad, data) -> float`` on float64
        arrays (``grad`` None for the value only), calling the C function through ctypes."""
        cfun = PROTOTYPE(self.address)
        pointer = ctypes.POINTER(ctypes.c_double)

        def fun(x: np.ndarray, grad: Optional[np.ndarray], data: int) -> float:
            g = None if grad is None else grad.ctypes.data_as(pointer)
            return float(cfun(x.size, x.ctypes.data_as(pointer), g, data or None))
        return fun

    def value(self, x: Any) -> float:
        """The function's value at one point ``x`` of shape (d,). Its ``grad`` is a scratch
        array, not NULL: gd.minimize always passes one, so functions may well rely on it."""
        arr = np.ascontiguousarray(x, dtype=np.float64)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"a compiled objective takes one point of shape (d,), got shape "
                             f"{arr.shape}")
        return self.as_function()(arr, np.empty_like(arr), self.data)


def _is_low_level_callable(obj: Any) -> bool:
    cls = type(obj)
    return (isinstance(obj, tuple) and cls.__name__ == "LowLevelCallable"
            and cls.__module__.startswith("scipy."))


def _is_numba_cfunc(obj: Any) -> bool:
    """A ``numba.cfunc`` object: callable from Python as its Python function, so recognised
    (by type name and module, never importing numba) and taken through its ``.ctypes``."""
    cls = type(obj)
    return cls.__name__ == "CFunc" and cls.__module__.startswith("numba.")


def is_compiled(obj: Any) -> bool:
    """True for what :func:`compiled_objective` takes: a ctypes function pointer, a
    ``scipy.LowLevelCallable``, a ``PyCapsule`` or a ``numba.cfunc`` (not checked further)."""
    return (isinstance(obj, (_CFuncPtr, _CapsuleType)) or _is_low_level_callable(obj)
            or _is_numba_cfunc(obj))


def _capsule(capsule: Any, what: str) -> tuple[int, int]:
    """(function address, context address) of a PyCapsule whose name is a SIGNATURES entry."""
    raw = _capsule_name(capsule)
    name = None if raw is None else raw.decode("utf-8", "replace")
    if name is None or "".join(name.split()) not in _NORMALISED:
        raise TypeError(f"{what} must be named by the signature {SIGNATURES[0]!r} (or with "
                        f"const double *x), as scipy.LowLevelCallable and Cython's "
                        f"__pyx_capi__ name them; got the name {name!r}")
    address = _capsule_pointer(capsule, raw)
    if not address:
        raise TypeError(f"{what} holds a NULL function pointer")
    return int(address), int(_capsule_context(capsule) or 0)


def _ctypes_address(fun: Any) -> int:
    restype = getattr(fun, "restype", None)
    argtypes = tuple(getattr(fun, "argtypes", None) or ())
    if restype is not ctypes.c_double or argtypes != tuple(_ARGTYPES):
        def names(types: Any) -> str:
            return ", ".join(getattr(t, "__name__", repr(t)) for t in types)
        raise TypeError(
            f"a ctypes function given as fun must have the prototype double f(int n, const "
            f"double *x, double *grad, void *data): restype c_double and argtypes (c_int, "
            f"LP_c_double, LP_c_double, c_void_p); got restype "
            f"{getattr(restype, '__name__', restype)} and argtypes ({names(argtypes)})")
    address = ctypes.cast(fun, ctypes.c_void_p).value
    if not address:
        raise TypeError("fun is a NULL ctypes function pointer")
    return int(address)


def _data_address(data: Any) -> tuple[int, Any]:
    """(address, owner) of the ``data`` argument: None (NULL), an int address, a ctypes
    pointer or c_void_p, any other ctypes object (its address), or a C-contiguous ndarray (the
    address of its first element)."""
    if data is None:
        return 0, None
    if isinstance(data, bool):
        raise TypeError("data must be None, an int address, a ctypes object or a numpy array, "
                        "got bool")
    if isinstance(data, numbers.Integral):
        if not 0 <= int(data) < 2 ** (8 * ctypes.sizeof(ctypes.c_void_p)):
            raise ValueError(f"data must be an address (an int in [0, 2**64)), got {data}")
        return int(data), None
    if isinstance(data, (ctypes.c_void_p, ctypes._Pointer)):
        return int(ctypes.cast(data, ctypes.c_void_p).value or 0), data
    if isinstance(data, _CData):
        return ctypes.addressof(data), data
    if isinstance(data, np.ndarray):
        if not data.flags.c_contiguous:
            raise ValueError("data as a numpy array must be C-contiguous "
                             "(numpy.ascontiguousarray)")
        return int(data.ctypes.data), data
    raise TypeError(f"data must be None, an int address, a ctypes object or a numpy array, got "
                    f"{type(data).__name__}")


def compiled_objective(fun: Any, data: Any = None) -> CompiledObjective:
    """``fun`` (a ctypes function pointer, a ``scipy.LowLevelCallable``, a ``PyCapsule`` or a
    ``numba.cfunc``, taken as its ``.ctypes``) and
    ``data`` checked: TypeError for a wrong prototype or signature, or for ``data`` given with
    a LowLevelCallable (which carries its own ``user_data``)."""
    if _is_numba_cfunc(fun):
        return compiled_objective(fun.ctypes, data)
    if isinstance(fun, _CFuncPtr):
        address = _ctypes_address(fun)
        data_address, owner = _data_address(data)
        return CompiledObjective(address, data_address, (fun, owner))
    if _is_low_level_callable(fun):
        if data is not None:
            raise TypeError("data must be None with a scipy.LowLevelCallable: give the data as "
                            "its user_data")
        capsule = tuple.__getitem__(fun, 0)
        address, context = _capsule(capsule, "a scipy.LowLevelCallable given as fun")
        return CompiledObjective(address, context, (fun,))
    if isinstance(fun, _CapsuleType):
        address, context = _capsule(fun, "a PyCapsule given as fun")
        if data is None:
            return CompiledObjective(address, context, (fun,))
        data_address, owner = _data_address(data)
        return CompiledObjective(address, data_address, (fun, owner))
    raise TypeError(f"fun must be a Python callable, a ctypes function pointer, a "
                    f"scipy.LowLevelCallable or a PyCapsule, got {type(fun).__name__}")


def python_function(fun: Any, data: Any = None) -> Any:
    """``fun`` as a Python function of one point: a compiled objective becomes ``x -> value``
    (for plotting), anything else is returned as it is."""
    if not is_compiled(fun):
        if data is not None:
            raise TypeError("data is for compiled functions; a Python fun takes its data from "
                            "its closure")
        return fun
    objective = compiled_objective(fun, data)

    def value(x: Any) -> float:
        return objective.value(x)
    return value

