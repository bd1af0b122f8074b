"""Benchmarks of gdcore (pytest-benchmark); run with ``pytest bench/``, not part of ``pytest``.

Every benchmark runs on each backend: ``cpp`` (skipped when the compiled core is not built)
and ``numpy`` (the reference). Threads are pinned for the session: ``GDCORE_BENCH_THREADS``
(default 2) for gdcore's core and for NumPy's OpenBLAS. For honest numbers, unset the machine's
OpenBLAS overrides in the command itself:
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench/``.
"""
import os
import sys

import pytest

import gdcore as gd

sys.path.insert(0, os.path.dirname(__file__))  # workloads.py, also under --import-mode=importlib

from workloads import cpp_available, use_backend  # noqa: E402

THREADS = int(os.environ.get("GDCORE_BENCH_THREADS", "2"))


@pytest.fixture(scope="session", autouse=True)
def pinned_threads():
    """The same thread count for gdcore's core and every BLAS/OpenMP pool in the process."""
    from threadpoolctl import threadpool_limits
    gd.set_num_threads(THREADS)
    with threadpool_limits(THREADS):
        yield THREADS


@pytest.fixture(params=["cpp", "numpy"])
def backend(request):
    """Networks built inside the benchmark use this backend."""
    if request.param == "cpp" and not cpp_available():
        pytest.skip("gdcore C++ core not built")
    previous = gd.backend()
    assert use_backend(request.param)
    yield request.param
    gd.set_backend(previous)
