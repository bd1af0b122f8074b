"""Shared fixtures: every public call is tested on both backends and both dtypes, every engine
call on both engines.

- ``backend``: networks built inside the test use each backend in turn (``gd.use_backend``).
- ``engine_factory``: builds engines directly, ``gdcore.reference.engine.Engine`` ("numpy") or
  ``gdcore._core.EngineF32``/``EngineF64`` ("cpp"); a test that is about one engine only says
  so with ``@pytest.mark.parametrize("engine_factory", ["cpp"], indirect=True)``.
- ``isa``: the compiled core's kernels on every instruction set this CPU runs (cpp only).
Helpers (tolerance, central differences, data) live in ``helpers.py``.
"""
import math

import numpy as np
import pytest

import gdcore as gd
from gdcore import _backend

from helpers import ENGINES, EngineFactory, core_available


def _skip_without_core(kind):
    if kind == "cpp" and not core_available():
        pytest.skip("the compiled core is not built in this installation")


@pytest.fixture(params=["numpy", "cpp"])
def backend(request):
    """Run the test with networks built on each backend (the compiled one when it is built)."""
    _skip_without_core(request.param)
    with gd.use_backend(request.param) as name:
        yield name


@pytest.fixture(params=ENGINES)
def engine_factory(request):
    """An :class:`helpers.EngineFactory` for each engine (cpp skipped when not built)."""
    _skip_without_core(request.param)
    return EngineFactory(request.param)


# the compiled core's kernel builds (one per instruction set), picked at run time
ISAS = (list(_backend._core._kernel_isas())
        if core_available() and hasattr(_backend._core, "_kernel_isas") else ["none"])


@pytest.fixture(params=ISAS)
def isa(request, engine_factory):
    """Each kernel instruction set this CPU runs, in turn (the compiled core's tests only)."""
    if not engine_factory.is_core:
        pytest.skip("kernel instruction sets are the compiled core's")
    _backend._core._set_kernel_isa(request.param)
    yield request.param
    _backend._core._set_kernel_isa("auto")


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


class FlakyEngine:
    """The network's engine, but the chosen train_epoch calls (1-based) report a diverged
    epoch: for tests of divergence handling that must not depend on a real blow-up."""

    def __init__(self, engine, bad_calls):
        self.engine, self.bad_calls, self.calls = engine, set(bad_calls), 0

    def train_epoch(self, *args, **kwargs):
        self.calls += 1
        loss = self.engine.train_epoch(*args, **kwargs)
        return math.inf if self.calls in self.bad_calls else loss

    def __getattr__(self, name):
        return getattr(self.engine, name)
