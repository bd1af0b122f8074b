"""The compiled core's own calls: ``predict`` (its fast path and input converter), and use from
several threads and from signal handlers (``engine_factory`` restricted to cpp: the reference
engine has no predict and no busy flag).

A second call while one runs (another thread, or a signal handler re-entering) is a
``RuntimeError``; predictions may run concurrently and while an epoch trains.
"""
import signal
import sys
import threading
import time

import numpy as np
import pytest

import gdcore as gd
from gdcore import _backend
from gdcore.reference.codes import ACTIVATIONS, LOSSES
from helpers import (DTYPES, OPTIMIZER_CASES, RTOL, assert_close, core_only, make_data,
                     make_pair, make_params)

core = _backend._core


def long_epoch(factory, dtype=np.float64, repeats=10000):
    """An engine and a train_epoch call of many small steps (order repeats the rows)."""
    weights, biases = make_params([16, 32, 4], dtype, seed=5)
    eng = factory(weights, biases, [ACTIVATIONS["tanh"], ACTIVATIONS["identity"]],
                      LOSSES["mse"])
    X, Y, _ = make_data(64, 16, 4, "dense", dtype)
    order = np.tile(np.arange(64, dtype=np.int64), repeats)  # 640k steps of batch 1, ~1 s
    code, hyper = OPTIMIZER_CASES["sgd"]
    hyper = np.array(hyper)
    hyper[0] = 1e-4
    step = np.zeros(1, dtype=np.int64)
    args = (X, Y, None, order, 1, code, hyper, [], step)
    return eng, weights, biases, args


@core_only
def test_concurrent_use_raises_runtime_error(engine_factory):
    eng, _, _, args = long_epoch(engine_factory)
    started = threading.Event()
    errors = []

    def train():
        started.set()
        try:
            eng.train_epoch(*args)
        except RuntimeError as exc:  # it may lose the race instead of the main thread
            errors.append(exc)

    worker = threading.Thread(target=train)
    worker.start()
    started.wait()
    X = args[0]
    deadline = time.monotonic() + 10
    try:
        while worker.is_alive() and not errors and time.monotonic() < deadline:
            try:
                eng.forward(X)
            except RuntimeError as exc:
                errors.append(exc)
                break
            time.sleep(0.005)
    finally:
        worker.join()
    if not errors:
        pytest.skip("the epoch ended before a concurrent call could overlap it")
    assert "already running" in str(errors[0])
    eng.forward(X)  # the busy flag is released afterwards


needs_alarm = pytest.mark.skipif(
    not hasattr(signal, "setitimer") or sys.platform == "win32",
    reason="needs signal.setitimer")


@needs_alarm
@core_only
def test_interrupt_finishes_the_step_and_raises(engine_factory):
    eng, weights, biases, args = long_epoch(engine_factory)
    start_w = [p.copy() for p in weights + biases]

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            eng.train_epoch(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.monotonic() - t0
    step = args[-1]
    steps_done = int(step[0])
    assert 0 < steps_done < len(args[3]) and elapsed < 2.0

    # the parameters are exactly those of running the completed steps alone
    replay_w = [p.copy() for p in start_w]
    replay = engine_factory(replay_w[:2], replay_w[2:],
                            [ACTIVATIONS["tanh"], ACTIVATIONS["identity"]], LOSSES["mse"])
    X, Y, w, order, bs, code, hyper, state, _ = args
    replay_step = np.zeros(1, dtype=np.int64)
    replay.train_epoch(X, Y, w, order[:steps_done], bs, code, hyper, state, replay_step)
    assert replay_step[0] == steps_done
    for a, b in zip(weights + biases, replay_w[:2] + replay_w[2:]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@needs_alarm
@core_only
def test_reentrant_call_from_a_signal_handler_raises_runtime_error(engine_factory):
    eng, _, _, args = long_epoch(engine_factory)

    def handler(signum, frame):
        eng.forward(args[0])  # the engine is busy in train_epoch

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    try:
        with pytest.raises(RuntimeError, match="already running"):
            eng.train_epoch(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert 0 < args[-1][0] < len(args[3])


# ---------------------------------------------------------------------------------- predict

@core_only
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_predict_fast_path_equals_forward(engine_factory, dtype):
    eng, *_ = make_pair(engine_factory, [6, 9, 3], ["relu", "softmax"], "cross_entropy", dtype)
    X, _, _ = make_data(50, 6, 3, "labels", dtype)
    out = eng.predict(X)
    assert out.dtype == dtype and out.shape == (50, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, eng.forward(X))
    one = eng.predict(X[7])  # a 1-D row is one sample
    assert one.shape == (1, 3)
    np.testing.assert_array_equal(one, eng.forward(X[7:8]))
    big = np.tile(X, (100, 1))  # past the stack scratch: a buffer of its own, GIL released
    np.testing.assert_array_equal(eng.predict(big), eng.forward(big))


@core_only
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_predict_returns_none_for_input_it_would_have_to_convert(engine_factory, dtype):
    """The engine computes only arrays ready as they are and returns None (no error, nothing
    computed) for the rest; the network then validates, converts and calls again."""
    eng, *_ = make_pair(engine_factory, [4, 5, 2], ["tanh", "identity"], "mse", dtype)
    X, _, _ = make_data(6, 4, 2, "dense", dtype)
    other = np.float64 if dtype == np.float32 else np.float32
    nan, inf = X.copy(), X.copy()
    nan[2, 1], inf[0, 0] = np.nan, np.inf
    buffer = np.zeros(X.size * X.itemsize + 1, dtype=np.uint8)
    unaligned = buffer[1:].view(dtype).reshape(X.shape)
    unaligned[...] = X
    for x in (X.tolist(), X.astype(other), np.asfortranarray(X), X[:, ::1][::2],
              X.astype(np.dtype(dtype).newbyteorder(">")), X[:0], X[:, :3].copy(),
              X[None], np.ma.masked_array(X), nan, inf, unaligned, X[0].tolist(), None, "X"):
        assert eng.predict(x) is None, type(x)
    # ... and a ready array is computed, the same as forward.
    np.testing.assert_array_equal(eng.predict(np.ascontiguousarray(X[::2])),
                                  eng.forward(np.ascontiguousarray(X[::2])))


@core_only
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_network_predict_converts_what_the_engine_does_not_take(engine_factory, dtype):
    with gd.use_backend("cpp"):
        net = gd.Network.from_sizes([4, 5, 2], activation="tanh", dtype=dtype, seed=0)
    X, _, _ = make_data(6, 4, 2, "dense", dtype)
    want = net.predict(X)
    other = np.float64 if dtype == np.float32 else np.float32
    for x in (X.tolist(), X.astype(other), np.asfortranarray(X), X[0].tolist()):
        got = net.predict(x)
        assert got.dtype == dtype
        assert_close(got, want[: len(got)], RTOL[np.float32])
    bad = X.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        net.predict(bad)
    with pytest.raises(ValueError, match="features"):
        net.predict(X[:, :3].copy())
    with pytest.raises(ValueError, match="empty"):
        net.predict(X[:0])
    assert not hasattr(core, "set_input_converter")  # no callback from the core into Python


@core_only
def test_predict_from_many_threads_and_during_training(engine_factory):
    """Concurrent predictions never raise and never mix up results; a training call on the
    same engine meanwhile is waited for."""
    eng, weights, biases, args = long_epoch(engine_factory, np.float64, repeats=200)
    X = args[0]
    rows = [np.ascontiguousarray(X[i]) for i in range(8)]
    want = [eng.forward(X[i:i + 1]) for i in range(8)]
    big = np.tile(X, (40, 1))
    want_big = eng.forward(big)
    errors = []

    def predict(i):
        try:
            for _ in range(300):
                np.testing.assert_array_equal(eng.predict(rows[i]), want[i])
                if i % 4 == 0:
                    np.testing.assert_array_equal(eng.predict(big), want_big)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=predict, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]

    # predictions while an epoch runs: no RuntimeError, finite outputs of the right shape
    results = []
    trainer = threading.Thread(target=lambda: eng.train_epoch(*args))
    trainer.start()
    while trainer.is_alive() and len(results) < 200:
        results.append(eng.predict(rows[0]))
    trainer.join()
    assert all(r.shape == (1, 4) and np.isfinite(r).all() for r in results)
    np.testing.assert_array_equal(eng.predict(rows[0]), eng.forward(X[:1]))
