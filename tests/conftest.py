"""Shared fixtures: every public call is tested on both backends and both dtypes."""
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
