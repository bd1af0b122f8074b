"""Which engine computes: the compiled core (``"cpp"``) or the NumPy reference (``"numpy"``).

The choice is made once at import from the environment variable ``GDCORE_BACKEND`` and can be
changed with :func:`set_backend`. Networks build their engine from the backend in force when
they are created; :func:`set_backend` applies to networks created afterwards. The answer of
:func:`backend` is the truth: ``"cpp"`` only when the compiled engine is the one that runs.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import sys
import warnings
from typing import Any, Iterator, Optional

import numpy as np

from .reference import engine as _reference_engine


def _preload_openblas() -> None:
    """Load scipy-openblas32's library before the core, which then finds it by its soname.

    The core's RUNPATH points at scipy_openblas32 beside gdcore in the same site directory;
    with the two in different directories (``pip install --target``, a user-site install next
    to a system one) only this finds it. Failures are left to the core's import to report.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import scipy_openblas32
        lib_dir = scipy_openblas32.get_lib_dir()
        names = sorted(n for n in os.listdir(lib_dir)
                       if n.startswith("libscipy_openblas") and ".so" in n)
        if names:
            ctypes.CDLL(os.path.join(lib_dir, names[0]), mode=ctypes.RTLD_GLOBAL)
    except Exception:  # noqa: BLE001 - the RUNPATH may still work; the import below says why
        pass


_preload_openblas()
try:  # the compiled core; absent in a source tree that was never built
    _core: Any = importlib.import_module(f"{__package__}._core")
except ImportError as exc:  # pragma: no cover - depends on the installation
    _core = None
    _core_import_error: Optional[ImportError] = exc
    # Never built: silently the NumPy engine. Built but not loadable (a missing or broken
    # shared library, an ABI mismatch): the NumPy engine too, but say why.
    if not (isinstance(exc, ModuleNotFoundError) and exc.name == f"{__package__}._core"):
        warnings.warn(f"gdcore's compiled core is installed but could not be loaded ({exc}); "
                      f"using the NumPy engine, which is much slower", RuntimeWarning,
                      stacklevel=2)
else:
    _core_import_error = None

_BACKENDS = ("cpp", "numpy")

if _core is not None:
    # The finite check of every user array: one vectorised pass, no temporary.
    from . import _validation
    _validation.all_finite = _core.all_finite


def _core_engines_available() -> bool:
    """True when the compiled module exists and carries the training engines."""
    return _core is not None and hasattr(_core, "EngineF32") and hasattr(_core, "EngineF64")


def _initial_backend() -> str:
    requested = os.environ.get("GDCORE_BACKEND", "").strip().lower()
    if requested == "":
        return "cpp" if _core_engines_available() else "numpy"
    if requested not in _BACKENDS:
        raise ImportError(
            f"GDCORE_BACKEND must be one of {_BACKENDS}, got {requested!r}"
        )
    if requested == "cpp" and not _core_engines_available():
        raise ImportError(
            "GDCORE_BACKEND=cpp but the compiled core is not available"
            + (f": {_core_import_error}" if _core_import_error else "")
        )
    return requested


_current = _initial_backend()


def backend() -> str:
    """The backend that runs training and prediction for new networks: ``"cpp"`` or ``"numpy"``."""
    return _current


def set_backend(name: str) -> None:
    """Choose the backend for networks created from now on.

    Parameters
    ----------
    name : {"cpp", "numpy"}
        ``"cpp"`` needs the compiled core; asking for it without one raises ``RuntimeError``.
    """
    global _current
    if not isinstance(name, str) or name.lower() not in _BACKENDS:
        raise ValueError(f"backend name must be one of {_BACKENDS}, got {name!r}")
    name = name.lower()
    if name == "cpp" and not _core_engines_available():
        raise RuntimeError(
            "the compiled core is not available in this installation"
            + (f" ({_core_import_error})" if _core_import_error else "")
        )
    _current = name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """Within the ``with`` block, new networks use backend ``name``; the previous backend is
    restored on exit, also when the block raises.

    Parameters
    ----------
    name : {"cpp", "numpy"}
        Validated as by :func:`set_backend` (``ValueError`` for an unknown name,
        ``RuntimeError`` for ``"cpp"`` without the compiled core), before anything changes.

    Yields
    ------
    str
        The backend in force inside the block.

    Examples
    --------
    >>> with gd.use_backend("numpy"):
    ...     net = gd.Network.from_sizes([2, 1])   # runs on the NumPy engine
    """
    previous = _current
    set_backend(name)
    try:
        yield _current
    finally:
        set_backend(previous)


def make_engine(weights: list, biases: list, activations: list[int], loss: int,
                backend_name: Optional[str] = None) -> Any:
    """Build the engine of the chosen backend over the given parameter arrays (no copies)."""
    name = backend_name or _current
    if name == "numpy":
        return _reference_engine.Engine(weights, biases, activations, loss)
    dtype = weights[0].dtype
    cls = _core.EngineF32 if dtype == np.float32 else _core.EngineF64
    return cls(weights, biases, activations, loss)


def set_num_threads(n: int) -> None:
    """Set the number of threads the compiled core may use (process-wide).

    The count is the setting of the core's OpenBLAS (``scipy-openblas32``), so
    ``threadpoolctl.threadpool_limits(n)`` and ``OPENBLAS_NUM_THREADS=n`` (read at start-up)
    set the same number. While it computes, the core runs OpenBLAS single-threaded and splits
    products of at least ``build_info()["split_gemm_limit"]`` multiply-adds over its own
    helper threads, which never make a product wait for a busy core; results are
    bit-identical for any thread count. No effect on the NumPy backend.

    Parameters
    ----------
    n : int
        At least 1. Values above the number of cores this process may use are accepted and
        capped to it (more threads than cores only contend).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be a positive integer, got {type(n).__name__} {n!r}")
    if n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if _core is not None and hasattr(_core, "set_num_threads"):
        _core.set_num_threads(min(int(n), available_cores()))


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def get_num_threads() -> int:
    """The number of threads the compiled core uses (1 without the core)."""
    if _core is not None and hasattr(_core, "get_num_threads"):
        return int(_core.get_num_threads())
    return 1
