"""The core's OpenBLAS is the one threadpoolctl and joblib limit: no oversubscription when a
search runs several workers on one machine."""
import os

import numpy as np
import pytest

import gdcore as gd

threadpoolctl = pytest.importorskip("threadpoolctl")
pytestmark = pytest.mark.skipif(gd.backend() != "cpp", reason="the compiled core's threads")


def _core_blas_entries() -> list:
    """threadpoolctl's records of the OpenBLAS that gdcore's core is linked to."""
    scipy_openblas32 = pytest.importorskip("scipy_openblas32")
    lib_dir = os.path.realpath(scipy_openblas32.get_lib_dir())
    return [info for info in threadpoolctl.threadpool_info()
            if os.path.realpath(info["filepath"]).startswith(lib_dir + os.sep)]


def test_threadpoolctl_sees_the_cores_openblas():
    entries = _core_blas_entries()
    assert len(entries) == 1, threadpoolctl.threadpool_info()
    assert entries[0]["internal_api"] == "openblas"
    assert entries[0]["num_threads"] == gd.get_num_threads()


def test_threadpool_limits_limit_the_core_and_restore_it():
    before = gd.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert gd.get_num_threads() == 1
        assert gd.build_info()["blas_num_threads"] == 1
        assert _core_blas_entries()[0]["num_threads"] == 1
        # Training under the limit works and gives the result of an unlimited run.
        X = np.random.default_rng(0).normal(size=(300, 64)).astype(np.float32)
        y = (X[:, 0] > 0).astype(np.float32).reshape(-1, 1)
        limited = gd.Network.from_sizes([64, 256, 1], loss="bce", output_activation="sigmoid",
                                        seed=1)
        limited.fit(X, y, optimizer=gd.Adam(), epochs=2, batch_size=100, seed=0)
    assert gd.get_num_threads() == before
    free = gd.Network.from_sizes([64, 256, 1], loss="bce", output_activation="sigmoid", seed=1)
    free.fit(X, y, optimizer=gd.Adam(), epochs=2, batch_size=100, seed=0)
    for a, b in zip(limited.parameters(), free.parameters()):
        np.testing.assert_array_equal(a, b)


def _worker_threads() -> int:
    import gdcore
    return gdcore.get_num_threads()


def test_joblib_workers_get_the_threads_joblib_allots():
    joblib = pytest.importorskip("joblib")
    n_jobs = 2
    allotted = max(1, (os.cpu_count() or 1) // n_jobs)
    with joblib.parallel_config(backend="loky", n_jobs=n_jobs):
        threads = joblib.Parallel()(joblib.delayed(_worker_threads)() for _ in range(n_jobs))
    assert threads == [min(allotted, gd.get_num_threads())] * n_jobs
