"""Shared fixtures: every public call is tested on both backends and both dtypes."""
import math

import numpy as np
import pytest

import gdcore as gd
from gdcore import _backend


@pytest.fixture(params=["numpy", "cpp"])
def backend(request):
    """Run the test with networks built on each backend (the compiled one when it is built)."""
    if request.param == "cpp" and not _backend._core_engines_available():
        pytest.skip("the compiled core is not built in this installation")
    previous = gd.backend()
    gd.set_backend(request.param)
    yield request.param
    gd.set_backend(previous)


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def tolerance(dtype):
    """Comparison tolerance for results computed in ``dtype``."""
    return 1e-4 if np.dtype(dtype) == np.float32 else 1e-9


class FlakyEngine:
    """The network's engine, but the chosen train_epoch calls (1-based) report a diverged
    epoch: for tests of divergence handling that must not depend on a real blow-up."""

    def __init__(self, engine, bad_calls):
        self.engine, self.bad_calls, self.calls = engine, set(bad_calls), 0

    def train_epoch(self, *args):
        self.calls += 1
        loss = self.engine.train_epoch(*args)
        return math.inf if self.calls in self.bad_calls else loss

    def __getattr__(self, name):
        return getattr(self.engine, name)
