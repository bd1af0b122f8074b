"""The core's own threads (csrc/gd/threads.cpp, blas.hpp "Threads"): large products split in
chunks that helper threads claim; OpenBLAS single-threaded while the core computes. Results
must not depend on the thread count, and OpenBLAS's setting must be what users set."""
import multiprocessing
import os
import threading

import numpy as np
import pytest

import gdcore as gd

pytestmark = pytest.mark.skipif(gd.backend() != "cpp", reason="the compiled core's threads")

# Products of at least split_gemm_limit multiply-adds are split: 256 rows x 512 x 256 is 32 M.
SIZES = [256, 512, 256, 10]


@pytest.fixture
def restore_threads():
    before = gd.get_num_threads()
    yield
    gd.set_num_threads(before)


def _data(dtype, rows=512):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, SIZES[0])).astype(dtype)
    y = rng.integers(0, SIZES[-1], size=rows)
    return X, y


def _trained(threads, dtype):
    gd.set_num_threads(threads)
    X, y = _data(dtype)
    net = gd.Network.from_sizes(SIZES, output_activation="softmax", loss="cross_entropy",
                                dtype=dtype, seed=3)
    net.fit(X, y, optimizer=gd.Adam(lr=1e-3), epochs=2, batch_size=256, seed=0)
    return net, net.predict(X)


def test_build_info_reports_the_split():
    info = gd.build_info()
    assert info["split_gemm_limit"] >= info["small_gemm_limit"]
    assert 0 <= info["helper_threads"] <= max(0, (os.cpu_count() or 1) - 1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_results_do_not_depend_on_the_thread_count(dtype, restore_threads):
    """The chunks depend on the shape only: 1 and 2 threads give the same bits."""
    one, out_one = _trained(1, dtype)
    two, out_two = _trained(2, dtype)
    for a, b in zip(one.parameters(), two.parameters()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(out_one, out_two)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_split_products_match_numpy(dtype, restore_threads):
    """A split forward pass is the product NumPy computes (to rounding)."""
    gd.set_num_threads(2)
    net = gd.Network.from_sizes([512, 1024], output_activation="identity", dtype=dtype, seed=0)
    X = np.random.default_rng(1).normal(size=(300, 512)).astype(dtype)
    expected = X @ net.layers[0].weights + net.layers[0].bias
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(net.predict(X), expected, rtol=rtol, atol=rtol)
    # one row: split by columns (C has too few rows to split)
    np.testing.assert_allclose(net.predict(X[:1]), expected[:1], rtol=rtol, atol=rtol)


def test_openblas_setting_is_restored_after_calls(restore_threads):
    """The core sets OpenBLAS to one thread only while it computes."""
    gd.set_num_threads(2)
    _trained(2, "float32")
    assert gd.get_num_threads() == 2
    assert gd.build_info()["blas_num_threads"] == 2


def test_threads_predicting_at_once_agree(restore_threads):
    """Several Python threads predicting split-size batches at once (one of them posts to the
    helpers, the others run their chunks alone) get the serial results."""
    gd.set_num_threads(2)
    nets = [gd.Network.from_sizes([512, 1024, 10], seed=s) for s in range(4)]
    X = np.random.default_rng(2).normal(size=(256, 512)).astype(np.float32)
    expected = [net.predict(X) for net in nets]
    results = [None] * len(nets)

    def work(i):
        for _ in range(20):
            results[i] = nets[i].predict(X)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(nets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)
    assert gd.get_num_threads() == 2


def _fit_in_child(queue):
    net, out = _trained(2, "float32")
    queue.put(out)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_trains_with_fresh_helpers(restore_threads):
    """After fork() the child has none of the parent's helper threads: it starts its own (and
    never waits for the parent's)."""
    _trained(2, "float32")  # the parent's helpers are running
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_fit_in_child, args=(queue,))
    child.start()
    out = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(out, _trained(2, "float32")[1])
