"""Ctrl-C during training, and networks used from several threads.

SIGINT: a long fit runs in a child process; the parent sends SIGINT with ``os.kill`` once the
child is inside an epoch and measures, on the shared monotonic clock, how long the child takes
to reach its KeyboardInterrupt handler (< 0.5 s). The interrupted model must be usable: finite
weights, a further fit and predict work, and the optimizer's step count matches the weights
(replaying that many steps from the start gives exactly these weights and state).

Threads: one network shared by four threads (fits, predictions, losses, find_lr, saves) ends
without error and with finite weights; find_lr's temporary weights are never seen by another
thread; two networks trained in two threads equal their sequential runs.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import gdcore as gd
from gdcore import _backend
from helpers import make_hyper

# Under tools/sanitize.sh (ASan preloaded) everything runs several times slower: the latency
# bound and the watchdog stretch by this factor; what is checked stays the same.
SLOWDOWN = 10.0 if "asan" in os.environ.get("LD_PRELOAD", "") else 1.0
LATENCY_BOUND = 0.5 * SLOWDOWN

CHILD = r"""
import json, os, signal, sys, time
import numpy as np
import gdcore as gd

# Python leaves SIGINT ignored when it started ignored (a test run launched with `&`).
signal.signal(signal.SIGINT, signal.default_int_handler)

N, BS = int(os.environ["CHILD_SAMPLES"]), 32
rng = np.random.default_rng(0)
X = rng.normal(size=(N, 20)).astype(np.float32)
y = rng.normal(size=N).astype(np.float32)
net = gd.Network.from_sizes([20, 256, 256, 1], activation="tanh", seed=0)
start = net.copy()
make_opt = lambda: gd.SGD(lr=1e-3, momentum=0.9)
opt = make_opt()

def announce(epoch, logs):
    print("EPOCH", epoch, flush=True)

print("BACKEND", net.backend, flush=True)
try:
    net.fit(X, y, optimizer=opt, epochs=10**6, batch_size=BS, shuffle=False,
            callbacks=[announce])
    print("NOT INTERRUPTED", flush=True)
    sys.exit(1)
except KeyboardInterrupt:
    print("INTERRUPTED", repr(time.monotonic()), flush=True)

report = {"finite": bool(all(np.isfinite(p).all() for p in net.parameters()))}
k = -(-N // BS)  # batches per epoch
steps, epochs = opt.steps_done, opt.epochs_done
partial = steps - epochs * k  # steps of the interrupted epoch that were kept
report.update(steps=steps, epochs=epochs, partial=partial)
replay, replay_opt = start.copy(), make_opt()
if epochs:
    replay.fit(X, y, optimizer=replay_opt, epochs=epochs, batch_size=BS, shuffle=False)
if partial:
    replay.fit(X[:partial * BS], y[:partial * BS], optimizer=replay_opt, epochs=1,
               batch_size=BS, shuffle=False)
report["replay_steps"] = replay_opt.steps_done
report["weights_match_steps"] = bool(
    all(np.array_equal(p, q) for p, q in zip(net.parameters(), replay.parameters()))
    and all(np.array_equal(s, t) for s, t in zip(opt.state, replay_opt.state)))
history = net.fit(X[:2000], y[:2000], optimizer=opt, epochs=2, batch_size=BS)
report["further_fit"] = history.epochs == 2 and all(np.isfinite(history.loss))
out = net.predict(X[:5])
report["predict"] = out.shape == (5, 1) and bool(np.isfinite(out).all())
print("REPORT", json.dumps(report), flush=True)
"""


def _read_until(proc, prefix, stderr_path):
    """The first line of the child's output that starts with ``prefix``."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(prefix):
            return line
    with open(stderr_path) as f:
        raise AssertionError(f"child never printed {prefix!r}; got {lines}\n{f.read()}")


@pytest.mark.parametrize("backend_name", ["numpy", "cpp"])
def test_sigint_stops_a_long_fit_quickly_and_leaves_a_usable_model(backend_name, tmp_path):
    if backend_name == "cpp" and not _backend._core_engines_available():
        pytest.skip("the compiled core is not built")
    # The compiled engine checks for signals between batches: its epochs are made long
    # (~0.5 s) so that a missing check would show in the latency. NumPy is interrupted at once.
    samples = {"numpy": "8000", "cpp": "64000"}[backend_name]
    env = {**os.environ, "GDCORE_BACKEND": backend_name, "PYTHONUNBUFFERED": "1",
           "CHILD_SAMPLES": samples}
    stderr_path = tmp_path / "stderr.txt"
    # A watchdog kills a child that hangs, so a broken interrupt fails instead of blocking.
    with open(stderr_path, "w") as stderr, subprocess.Popen(
            [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=stderr, text=True,
            env=env) as proc:
        watchdog = threading.Timer(120 * SLOWDOWN, proc.kill)
        watchdog.start()
        try:
            line = _read_until(proc, "BACKEND", stderr_path)
            assert line.split()[1] == backend_name
            _read_until(proc, "EPOCH 0", stderr_path)  # one epoch done, the second running
            time.sleep(0.2)
            sent = time.monotonic()
            os.kill(proc.pid, signal.SIGINT)
            line = _read_until(proc, "INTERRUPTED", stderr_path)
            latency = float(line.split()[1]) - sent
            report_line = _read_until(proc, "REPORT", stderr_path)
            proc.wait()
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
    report = json.loads(report_line.split(" ", 1)[1])
    assert proc.returncode == 0, stderr_path.read_text()
    assert 0.0 <= latency < LATENCY_BOUND, f"KeyboardInterrupt took {latency:.3f} s"
    assert report["finite"] and report["further_fit"] and report["predict"]
    assert report["epochs"] >= 1 and report["partial"] >= 0
    assert report["replay_steps"] == report["steps"]
    assert report["weights_match_steps"], report


def test_numpy_interrupt_inside_a_step_rolls_back_to_the_epoch_start(monkeypatch, rng):
    """The NumPy engine can be interrupted between two parameters of one update (the step not
    yet counted): fit then goes back to the start of that epoch, so weights match the count."""
    from gdcore.reference import train as reference_train
    X, y = rng.normal(size=(20, 3)), rng.normal(size=20)
    monkeypatch.setattr(_backend, "_current", "numpy")  # networks built here run on NumPy
    start = gd.Network.from_sizes([3, 4, 1], activation="tanh", dtype="float64", seed=0)
    net = start.copy()
    assert net.backend == "numpy"
    real_update = reference_train.optimizer_update
    calls = []

    def update_then_interrupt(config, t, p, g, slots):
        calls.append(1)
        # 4 parameters (W0, b0, W1, b1) per step, 5 steps per epoch: epoch 1, second batch,
        # second parameter
        if len(calls) == 4 * 6 + 2:
            p -= 1.0  # W0 updated, this one half-changed, the others not, step not counted
            raise KeyboardInterrupt
        real_update(config, t, p, g, slots)

    monkeypatch.setattr(reference_train, "optimizer_update", update_then_interrupt)
    opt = gd.SGD(lr=0.05, momentum=0.9)
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, optimizer=opt, epochs=10, batch_size=4, shuffle=False)
    monkeypatch.setattr(reference_train, "optimizer_update", real_update)
    assert opt.epochs_done == 1 and opt.steps_done == 5  # back at the start of epoch 1
    replay, replay_opt = start.copy(), gd.SGD(lr=0.05, momentum=0.9)
    replay.fit(X, y, optimizer=replay_opt, epochs=1, batch_size=4, shuffle=False)
    for p, q in zip(net.parameters(), replay.parameters()):
        np.testing.assert_array_equal(p, q)
    for s, t in zip(opt.state, replay_opt.state):
        np.testing.assert_array_equal(s, t)
    net.fit(X, y, optimizer=opt, epochs=1, batch_size=4)  # and training goes on
    assert opt.steps_done == 10


# ------------------------------------------------------------------------------- threads

def _run_threads(targets):
    errors = []
    barrier = threading.Barrier(len(targets))

    def wrap(fn):
        def run():
            try:
                barrier.wait()
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        return run

    threads = [threading.Thread(target=wrap(fn)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors


def test_one_network_shared_by_four_threads(backend, rng, tmp_path):
    X, y = rng.normal(size=(300, 4)), rng.integers(0, 3, size=300)
    net = gd.Network.from_sizes([4, 32, 3], output_activation="softmax", loss="cross_entropy",
                                seed=0)
    results = []

    def fitter(seed):
        def fn():
            for _ in range(3):
                h = net.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=3, batch_size=16,
                            seed=seed)
                results.append(h.loss[-1])
        return fn

    def predictor():
        for _ in range(50):
            out = net.predict(X)
            assert out.shape == (300, 3) and np.isfinite(out).all()
            np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
            assert np.isfinite(net.loss(X, y))
            assert len(net.gradients(X[:10], y[:10])) == 2

    def other():
        for i in range(5):
            gd.find_lr(net, X, y, steps=10)
            net.save(tmp_path / f"model{i}.npz")
            copy = net.copy()
            assert np.isfinite(copy.predict(X)).all()
            assert np.isfinite(gd.Network.load(tmp_path / f"model{i}.npz").predict(X)).all()

    _run_threads([fitter(1), fitter(2), predictor, other])
    assert len(results) == 6 and all(np.isfinite(results))
    assert all(np.isfinite(p).all() for p in net.parameters())
    assert np.isfinite(net.predict(X)).all()


def test_find_lr_weights_are_never_seen_by_other_threads(backend, rng):
    X, y = rng.normal(size=(200, 3)), rng.normal(size=200)
    net = gd.Network.from_sizes([3, 16, 1], activation="tanh", dtype="float64", seed=0)
    expected = net.predict(X)
    seen_other = []

    def search():
        for _ in range(10):
            gd.find_lr(net, X, y, steps=30, batch_size=8)

    def watch():
        for _ in range(300):
            if not np.array_equal(net.predict(X), expected):
                seen_other.append(True)

    _run_threads([search, watch, watch])
    assert not seen_other
    np.testing.assert_array_equal(net.predict(X), expected)


def test_two_networks_in_two_threads_equal_sequential_runs(backend, rng):
    X, y = rng.normal(size=(400, 8)), rng.normal(size=400)

    def make(seed):
        return gd.Network.from_sizes([8, 64, 64, 1], activation="tanh", dtype="float64",
                                     seed=seed)

    def train(net):
        return net.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=15, batch_size=16, seed=0)

    sequential = [make(0), make(1)]
    histories = [train(n) for n in sequential]
    parallel = [make(0), make(1)]
    parallel_histories = [None, None]

    def job(i):
        def fn():
            parallel_histories[i] = train(parallel[i])
        return fn

    _run_threads([job(0), job(1)])
    for a, b, ha, hb in zip(sequential, parallel, histories, parallel_histories):
        assert ha.loss == hb.loss
        for p, q in zip(a.parameters(), b.parameters()):
            np.testing.assert_array_equal(p, q)


# ------------------------------------------------------------------ one long step
class _Alarm(Exception):
    pass


def _latency_of_an_alarm(call, delay: float) -> float:
    """Seconds from a SIGALRM at ``delay`` (whose handler raises) to ``call`` raising it."""
    def on_alarm(signum, frame):
        raise _Alarm

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, delay)
        start = time.perf_counter()
        with pytest.raises(_Alarm):
            call()
        return time.perf_counter() - start - delay
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.skipif(not _backend._core_engines_available(),
                    reason="the compiled core is not built in this installation")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_signal_stops_the_compiled_engine_inside_one_long_step(dtype):
    """One full-batch step of 16384 x 512 into 1024-1024-10 is ~78 G multiply-adds (seconds);
    a signal handler's exception raised 0.2 s in arrives within 0.5 s, and the step is
    dropped whole: the weights, the optimizer state and the step count are as before it.
    The engine polls between layers and between row panels of the large products."""
    rng = np.random.default_rng(0)
    n = 16384
    X = rng.normal(size=(n, 512)).astype(dtype)
    y = rng.integers(0, 10, size=n)
    previous = gd.backend()
    gd.set_backend("cpp")
    try:
        net = gd.Network.from_sizes([512, 1024, 1024, 10], output_activation="softmax",
                                    loss="cross_entropy", dtype=dtype, seed=0)
    finally:
        gd.set_backend(previous)
    engine = net._engine
    before = [p.copy() for p in net.parameters()]
    state = [np.zeros_like(p) for p in net.parameters()]  # SGD with momentum: one slot each
    state_before = [s.copy() for s in state]
    step = np.zeros(1, np.int64)
    hyper = make_hyper(lr=1e-3, momentum=0.9)
    order = np.arange(n, dtype=np.int64)
    latency = _latency_of_an_alarm(
        lambda: engine.train_epoch(X, y.astype(np.int64), None, order, n, 0, hyper, state,
                                   step), 0.2)
    assert latency < LATENCY_BOUND, f"the signal took {latency:.2f} s to stop the step"
    assert step[0] == 0
    for a, b in zip(net.parameters(), before):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(state, state_before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend_name", ["numpy", "cpp"])
def test_predict_from_a_signal_handler_during_fit_is_refused_clearly(backend_name):
    """A SIGALRM handler that calls predict on the network being trained: inside an engine
    call it gets a RuntimeError saying why (the compiled engine used to report "Resource
    deadlock avoided"), between epochs it gets the prediction; the fit completes."""
    if backend_name == "cpp" and not _backend._core_engines_available():
        pytest.skip("the compiled core is not built in this installation")
    previous = gd.backend()
    gd.set_backend(backend_name)
    try:
        net = gd.Network.from_sizes([16, 256, 256, 1], seed=0)
    finally:
        gd.set_backend(previous)
    rng = np.random.default_rng(0)
    # Compiled: an epoch of 12500 steps, longer than the engine's 50 ms between signal polls.
    # NumPy: the handler runs between bytecodes, 250 steps are plenty.
    X = rng.normal(size=(100_000 if backend_name == "cpp" else 2_000, 16)).astype(np.float32)
    y = X.sum(axis=1).astype(np.float32)
    outcomes = []

    def on_alarm(signum, frame):
        try:
            outcomes.append(net.predict(X[:2]).shape)
        except RuntimeError as exc:
            outcomes.append(str(exc))

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.01, 0.01)
        deadline = time.perf_counter() + 60
        while not any(isinstance(o, str) for o in outcomes) and time.perf_counter() < deadline:
            net.fit(X, y, epochs=1, batch_size=8, optimizer=gd.SGD(lr=1e-4))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    refused = [o for o in outcomes if isinstance(o, str)]
    assert refused, "no handler ran inside an engine call"
    assert all("predict cannot run in the middle of a call" in o for o in refused), refused
    assert all(o == (2, 1) for o in outcomes if not isinstance(o, str))
    assert all(np.isfinite(p).all() for p in net.parameters())


@pytest.mark.skipif(not _backend._core_engines_available(),
                    reason="the compiled core is not built in this installation")
@pytest.mark.parametrize("call", ["predict", "loss", "gradients"])
def test_a_signal_stops_a_long_compiled_evaluation(call):
    """predict, loss and gradients of 32768 rows through 512-1024-1024-10 (52 G multiply-adds
    for the forward pass alone) stop within 0.5 s of a signal handler's exception."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32768, 512)).astype(np.float32)
    y = rng.integers(0, 10, size=32768)
    previous = gd.backend()
    gd.set_backend("cpp")
    try:
        net = gd.Network.from_sizes([512, 1024, 1024, 10], output_activation="softmax",
                                    loss="cross_entropy", seed=0)
    finally:
        gd.set_backend(previous)
    run = {"predict": lambda: net.predict(X), "loss": lambda: net.loss(X, y),
           "gradients": lambda: net.gradients(X, y)}[call]
    latency = _latency_of_an_alarm(run, 0.05)
    assert latency < LATENCY_BOUND, f"the signal took {latency:.2f} s to stop {call}"
    assert net.predict(X[:3]).shape == (3, 10)  # the engine is free again
