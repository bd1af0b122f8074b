"""The C API (gdcore/capi.h, ``from gdcore cimport capi``) as a user's extension sees it.

The extension tests/capi_user/user_forward.pyx is compiled with Cython and setuptools against
the installed gdcore (``gdcore.get_include()``) once per session (cached between sessions when
pytest's cache is on), with OpenMP when the compiler has it. Skipped only when there is no C
compiler. Checked: results against ``predict`` (both dtypes, several shapes, 0 rows, row by
row), calls from many threads without the GIL (Python threads, OpenMP prange), a fit running
meanwhile (never a torn weight, never a deadlock, even with the GIL held), the errors (TypeError
from gd_acquire, every GD_ERR_ code), and the handle's reference to the network.
"""
from __future__ import annotations

import faulthandler
import hashlib
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import gdcore as gd
from helpers import OPTIMIZER_CASES, RTOL, assert_close, core_available

sys.path.insert(0, str(Path(__file__).parent / "capi_user"))
import capi_build  # noqa: E402 - tests/capi_user/capi_build.py

PYX = capi_build.PYX
PACKAGE = Path(gd.__file__).parent
HEADER = Path(gd.get_include()) / "gdcore" / "capi.h"
PXD = PACKAGE / "capi.pxd"
DTYPES = [np.float32, np.float64]

pytestmark = pytest.mark.skipif(not core_available(), reason="the C API is the compiled core's")


@pytest.fixture(scope="module")
def user(request, tmp_path_factory):
    """The compiled user extension (module), with ``OPENMP`` set."""
    if capi_build.c_compiler() is None:
        pytest.skip("no C compiler to build the user extension with")
    import Cython  # the test extra has it: an ImportError here is a failure, not a skip
    key = hashlib.sha256()
    for path in (PYX, PXD, HEADER, Path(capi_build.__file__)):
        key.update(path.read_bytes())
    key.update(f"{sys.version} {Cython.__version__} {gd.get_include()}".encode())
    cache = getattr(request.config, "cache", None)  # (off under tools/sanitize.sh)
    folder = (cache.mkdir("capi_user") if cache is not None
              else tmp_path_factory.mktemp("capi_user")) / key.hexdigest()[:16]
    marker = folder / "built.txt"
    if marker.exists():
        where, mode = marker.read_text().split("\n")[:2]
        path, openmp = Path(where), mode == "openmp"
    else:
        folder.mkdir(parents=True, exist_ok=True)
        path, openmp = capi_build.build(folder)
        marker.write_text(f"{path}\n{'openmp' if openmp else 'plain'}\n")
    module = capi_build.load(path)
    module.OPENMP = openmp
    return module


def cpp_network(sizes, dtype, activation="tanh", output="identity", loss="mse", seed=0):
    with gd.use_backend("cpp"):
        return gd.Network.from_sizes(sizes, activation=activation, output_activation=output,
                                     loss=loss, dtype=dtype, seed=seed)


def rows(n, n_inputs, dtype, seed=1):
    return np.random.default_rng(seed).standard_normal((n, n_inputs)).astype(dtype)


# ------------------------------------------------------------------------------ installed

def test_header_and_pxd_are_in_the_package():
    include = Path(gd.get_include())
    assert include.is_dir() and HEADER.is_file() and PXD.is_file()
    assert "gd_forward_f32" in HEADER.read_text() and "gd_forward_f64" in PXD.read_text()
    assert "get_include" in gd.__all__


# ------------------------------------------------------------------------------ results

NETWORKS = [  # sizes, hidden activation, output activation, loss
    ([3, 1], "tanh", "identity", "mse"),
    ([5, 16, 8, 3], "tanh", "identity", "mse"),
    ([4, 32, 2], "relu", "softmax", "cross_entropy"),
    ([7, 12, 12, 12, 1], "gelu", "sigmoid", "bce"),
    ([64, 256, 10], "relu", "identity", "mse"),  # large passes: OpenBLAS, GIL-free predict
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("spec", NETWORKS, ids=lambda s: "-".join(map(str, s[0])))
def test_forward_matches_predict(user, spec, dtype):
    sizes, activation, output, loss = spec
    net = cpp_network(sizes, dtype, activation, output, loss)
    for n in (1, 5, 300):
        X = rows(n, sizes[0], dtype, seed=n)
        want = net.predict(X)
        got = user.predict(net, X)
        assert got.dtype == dtype and got.shape == want.shape
        assert_close(got, want, RTOL[dtype], f"{n} rows")
        # one call per row, as a user's loop makes them
        out = np.full_like(want, np.nan)
        h = user.Handle(net)
        assert h.rows(X, out) == 0
        assert_close(out, want, RTOL[dtype], f"{n} rows, one call each")
    empty = user.predict(net, np.zeros((0, sizes[0]), dtype=dtype))
    assert empty.shape == (0, sizes[-1])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_perceptron(user, dtype):
    with gd.use_backend("cpp"):
        unit = gd.Perceptron(6, dtype=dtype, seed=3)
    X = rows(40, 6, dtype)
    got = user.predict(unit, X)
    assert got.shape == (40, 1)
    assert_close(got[:, 0], unit.predict(X), RTOL[dtype])
    h = user.Handle(unit)
    assert (h.n_inputs, h.n_outputs, h.itemsize) == (6, 1, np.dtype(dtype).itemsize)


def test_handle_sees_the_weights_as_they_are_now(user):
    """A handle reads the network's live parameter arrays: training after gd_acquire shows."""
    net = cpp_network([4, 8, 2], np.float32)
    h = user.Handle(net)
    X = rows(10, 4, np.float32)
    net.fit(X, rows(10, 2, np.float32, seed=2), epochs=3, batch_size=5,
            optimizer=gd.SGD(lr=0.1))
    out = np.zeros((10, 2), np.float32)
    assert h.call(X, out, 10) == 0
    assert_close(out, net.predict(X), RTOL[np.float32])


# ------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("obj", [
    None, object(), 3.0, np.zeros((2, 2)), gd.Layer(2, 2), gd.Network, gd.SGD(),
], ids=lambda o: type(o).__name__)
def test_acquire_raises_type_error_for_anything_else(user, obj):
    with pytest.raises(TypeError, match="gdcore.Network or gdcore.Perceptron"):
        user.acquire_release(obj)


def test_acquire_raises_type_error_for_a_numpy_backend_network(user):
    with gd.use_backend("numpy"):
        net = gd.Network.from_sizes([3, 4, 1], seed=0)
        unit = gd.Perceptron(3, seed=0)
    for obj in (net, unit):
        with pytest.raises(TypeError, match="compiled engine.*'numpy'"):
            user.acquire_release(obj)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_dtype_mismatch_is_an_error_code(user, dtype):
    net = cpp_network([3, 5, 2], dtype)
    h = user.Handle(net)
    other = np.float64 if dtype == np.float32 else np.float32
    X, out = rows(4, 3, other), np.full((4, 2), 7.0, dtype=other)
    # the arrays pick the call: gd_forward_f64 for a float32 network, _f32 for a float64 one
    assert h.call(X, out, 4) == user.CODES["GD_ERR_DTYPE"]
    assert (out == 7.0).all()  # nothing written
    assert "float32" in user.error_message(user.CODES["GD_ERR_DTYPE"])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_bad_calls_are_error_codes(user, dtype):
    net = cpp_network([3, 5, 2], dtype)
    h = user.Handle(net)
    X, out = rows(4, 3, dtype), np.full((4, 2), 7.0, dtype=dtype)
    codes = user.CODES
    assert h.call(X, out, -1) == codes["GD_ERR_N_ROWS"]
    assert h.call(X, out, 4, null_x=True) == codes["GD_ERR_NULL_POINTER"]
    assert h.call(X, out, 4, null_out=True) == codes["GD_ERR_NULL_POINTER"]
    assert (out == 7.0).all()
    assert h.call(X, out, 0, null_x=True, null_out=True) == codes["GD_OK"]  # nothing to do
    assert h.call(X, out, 4) == codes["GD_OK"]
    assert_close(out, net.predict(X), RTOL[dtype])


def test_null_handle_and_messages(user):
    codes = user.CODES
    assert user.null_handle() == (codes["GD_ERR_NULL_HANDLE"],) * 5
    assert codes["GD_OK"] == 0
    errors = [c for name, c in codes.items() if name != "GD_OK"]
    assert all(c < 0 for c in errors) and len(set(errors)) == len(errors)
    messages = [user.error_message(c) for c in codes.values()]
    assert len(set(messages)) == len(messages) and all(messages)
    assert "unknown" in user.error_message(12345)
    with pytest.raises(user.CapiError, match="n_rows") as info:
        raise user.CapiError(codes["GD_ERR_N_ROWS"])
    assert info.value.code == codes["GD_ERR_N_ROWS"]


def test_handle_holds_a_reference_to_the_network(user):
    net = cpp_network([3, 4, 2], np.float64)
    X = rows(5, 3, np.float64)
    want = net.predict(X)
    before = sys.getrefcount(net)
    h = user.Handle(net)
    assert sys.getrefcount(net) == before + 1
    alive = [user.Handle(net) for _ in range(3)]
    assert sys.getrefcount(net) == before + 4
    del alive
    assert sys.getrefcount(net) == before + 1
    del net  # the handle keeps it alive
    out = np.zeros((5, 2))
    assert h.call(X, out, 5) == 0
    np.testing.assert_array_equal(out, want)
    del h
    # a failed gd_acquire holds nothing
    with gd.use_backend("numpy"):
        ref_net = gd.Network.from_sizes([3, 1], seed=0)
    before = sys.getrefcount(ref_net)
    with pytest.raises(TypeError):
        user.Handle(ref_net)
    assert sys.getrefcount(ref_net) == before


# ------------------------------------------------------------------------------ threads

@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_python_threads_share_a_handle(user, dtype):
    """Four threads forward row by row without the GIL on one handle, each its own rows."""
    net = cpp_network([8, 32, 16, 3], dtype)
    X = rows(400, 8, dtype)
    want = net.predict(X)
    h = user.Handle(net)
    out = np.full_like(want, np.nan)
    codes = [None] * 4

    def work(t):
        part = slice(100 * t, 100 * (t + 1))
        codes[t] = h.rows(X[part], out[part], 50)  # (each row 50 times)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [0] * 4
    assert_close(out, want, RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_prange(user, dtype, chunk):
    """One network predicting from a prange loop: every chunk a call of its own."""
    net = cpp_network([10, 64, 4], dtype, activation="relu")
    X = rows(1000, 10, dtype)
    want = net.predict(X)
    h = user.Handle(net)
    n_chunks = -(-1000 // chunk)
    out = np.full_like(want, np.nan)
    codes = np.full(n_chunks, 99, dtype=np.int32)
    thread = np.full(n_chunks, -1, dtype=np.int32)
    h.rows_prange(X, out, codes, thread, 4, chunk)
    assert (codes == 0).all()
    assert_close(out, want, RTOL[dtype])
    if user.OPENMP:
        assert set(thread.tolist()) == {0, 1, 2, 3}  # static schedule: every thread had chunks


def torn_weights_setup(dtype):
    """A network whose output columns stay equal to each other, bit for bit, through training:
    one input, identity output, every column's weight, bias, target and gradient the same. A
    forward that read the weights half-way through an update would see unequal columns."""
    width = 2048
    layer = gd.Layer(1, width, "identity", init="zeros", dtype=dtype)
    layer.weights = np.full((1, width), 0.5)
    layer.bias = np.full(width, 0.25)
    with gd.use_backend("cpp"):
        net = gd.Network([layer], loss="mae", dtype=dtype)
    X = np.ones((4000, 1), dtype=dtype)
    Y = np.full((4000, width), 1e6, dtype=dtype)  # far: every step moves by the same lr-size
    return net, X, Y


def test_forwards_during_fit_never_see_torn_weights(user):
    net, X, Y = torn_weights_setup(np.float64)
    h = user.Handle(net)
    x, out = np.ones((1, 1)), np.zeros((1, 2048))
    faulthandler.dump_traceback_later(120, exit=True)  # a deadlock ends the run, loudly
    try:
        errors = []

        def train():
            try:
                net.fit(X, Y, epochs=4, batch_size=1, optimizer=gd.SGD(lr=1.0), shuffle=False)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        seen = set()
        worker = threading.Thread(target=train)
        worker.start()
        while worker.is_alive():
            assert h.call(x, out, 1) == 0  # (releases the GIL)
            assert out.min() == out.max(), "a forward saw half-updated weights"
            seen.add(float(out[0, 0]))
        worker.join()
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert not errors, errors
    assert len(seen) >= 2, "the forwards did not overlap the training"


def test_forward_with_the_gil_waits_for_training_without_deadlock(user):
    """gd_forward called with the GIL held while a training call holds the weights: it lets
    the GIL go while waiting (the training call needs it to poll for signals)."""
    net, X, Y = torn_weights_setup(np.float32)
    h = user.Handle(net)
    x = np.ones((1, 1), np.float32)
    out = np.zeros((1, 2048), np.float32)
    faulthandler.dump_traceback_later(120, exit=True)
    try:
        started = threading.Event()

        def train():
            started.set()
            net.fit(X, Y, epochs=3, batch_size=1, optimizer=gd.SGD(lr=1.0), shuffle=False)

        worker = threading.Thread(target=train)
        worker.start()
        started.wait()
        results = []
        while worker.is_alive():
            assert h.call_with_gil(x, out) == 0
            assert out.min() == out.max()
            results.append(float(out[0, 0]))
        worker.join()
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert len(set(results)) >= 2


needs_alarm = pytest.mark.skipif(
    not hasattr(signal, "setitimer") or sys.platform == "win32", reason="needs signal.setitimer")


@needs_alarm
def test_forward_from_the_training_thread_is_busy_not_a_deadlock(user):
    """A signal handler run inside a training call (the engine polls for signals on its own
    thread, holding the weights) that forwards on that network gets GD_ERR_BUSY."""
    net = cpp_network([16, 32, 4], np.float64)
    h = user.Handle(net)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((64, 16)), rng.standard_normal((64, 4))
    order = np.tile(np.arange(64, dtype=np.int64), 10000)  # ~1 s of steps of one row
    code, hyper = OPTIMIZER_CASES["sgd"]
    hyper = np.array(hyper)
    hyper[0] = 1e-4
    step = np.zeros(1, dtype=np.int64)
    got = []

    def handler(signum, frame):
        out = np.zeros((64, 4))
        got.append(h.call(X, out, 64))

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    try:
        net._engine.train_epoch(X, Y, None, order, 1, code, hyper, [], step)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert got == [user.CODES["GD_ERR_BUSY"]]
    assert 0 < step[0] == len(order)  # the training call went on


def test_writing_parameters_refuses_nesting_on_one_thread(user):
    """The Python layer's exclusive hold (writes of the parameter arrays from Python): a second
    hold on the same thread is an error, not a deadlock; forwards wait for it."""
    net = cpp_network([3, 4, 2], np.float64)
    h = user.Handle(net)
    X, out = rows(2, 3, np.float64), np.zeros((2, 2))
    with net._writing_parameters():
        with pytest.raises(RuntimeError, match="same thread"):
            net._writing_parameters().__enter__()
        result = []
        waiting = threading.Thread(target=lambda: result.append(h.call(X, out, 2)))
        waiting.start()
        waiting.join(0.2)
        assert waiting.is_alive() and not result  # the forward waits for the hold
    waiting.join()
    assert result == [0]
    np.testing.assert_array_equal(out, net.predict(X))
