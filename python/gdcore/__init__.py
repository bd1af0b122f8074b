"""gdcore: train dense neural networks by gradient descent, with the hot loops in C++.

A perceptron multiplies its inputs by weights and applies a non-linearity; perceptrons side by
side form a :class:`Layer`; layers stacked form a :class:`Network`, trained by minimising a
loss with gradient descent (:meth:`Network.fit`). :func:`minimize` runs the same algorithm on
any differentiable function (a Python callable, or a compiled C function whose whole descent
then runs in C++), :func:`minimize_many` one descent per learning rate, and :func:`find_lr`
helps choose the learning rate.

Training and prediction run in the compiled core when it is installed (``backend() == "cpp"``)
and otherwise in the NumPy reference (``"numpy"``), with the same results.
"""
from . import datasets, schedules
from ._backend import backend, get_num_threads, set_backend, set_num_threads, use_backend
from .lr_finder import FindLRResult, check_gradients, find_lr
from .minimize import MinimizeResult, minimize, minimize_many
from .network import Layer, Network, Perceptron
from .optimizers import LBFGS, SGD, Adam, AdamW, Optimizer, RMSprop, Rprop
from .training import DivergenceError, History, fit_many

try:  # pyproject.toml's version, from the installed metadata (editable installs included)
    from importlib.metadata import version as _version
    __version__ = _version("gdcore")
except Exception:  # pragma: no cover - run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Layer", "Network", "Perceptron",
    "SGD", "Adam", "AdamW", "RMSprop", "Rprop", "LBFGS", "Optimizer",
    "History", "DivergenceError", "fit_many",
    "minimize", "minimize_many", "MinimizeResult", "find_lr", "FindLRResult", "check_gradients",
    "backend", "set_backend", "use_backend", "set_num_threads", "get_num_threads",
    "datasets", "schedules", "build_info",
    "get_include",
]


def build_info() -> dict:
    """How this installation was built (compiler, flags, BLAS) and which backend runs."""
    from . import _backend as b
    info = dict(b._core.build_info()) if b._core is not None else {"core": "not built"}
    info["backend"] = backend()
    return info


def get_include() -> str:
    """The directory of gdcore's C header ``gdcore/capi.h``: put it in ``include_dirs`` to
    compile an extension that calls the C API (``from gdcore cimport capi`` in Cython), as
    ``numpy.get_include()``. See docs/API.md, "Calling gdcore from compiled code"."""
    import os
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "include")
