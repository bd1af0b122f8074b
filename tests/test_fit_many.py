"""fit_many: several networks trained in lock-step, each exactly as its own fit call.

Equality is asserted bit for bit (weights, optimizer state, history): every network sees the
same batches and the same arithmetic as in its own fit (train_epoch_many interleaves whole
steps of independent networks, on one thread or several). Also: networks that stop at
different epochs (divergence rollback, tol), the argument checks (nothing changes when one is
refused), a failure after some networks were prepared, an exception raised at an epoch's end,
Ctrl-C, and the engine call itself on both engines.
"""
import json
import math
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
from helpers import compare_fit_many as _compare
from helpers import make_hyper


def _data(rng, n=64, n_inputs=3, classes=None):
    X = rng.normal(size=(n, n_inputs))
    if classes:
        return X, (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    return X, np.sin(X.sum(axis=1))


def _snapshot(net, opt):
    """Copies of everything fit changes: parameters, optimizer state and counters."""
    return ([p.copy() for p in net.parameters()], [s.copy() for s in opt.state],
            int(opt.step[0]), opt.epochs_done, opt.lr_scale)


RATES = [0.003, 0.01, 0.03, 0.1]


@pytest.mark.parametrize("kind", ["sgd", "momentum", "adam", "rmsprop"])
def test_each_network_equals_its_own_fit(backend, dtype, rng, kind):
    X, y = _data(rng)
    make = {"sgd": lambda r: gd.SGD(lr=r),
            "momentum": lambda r: gd.SGD(lr=r, momentum=0.9, nesterov=True),
            "adam": lambda r: gd.Adam(lr=r),
            "rmsprop": lambda r: gd.RMSprop(lr=r, momentum=0.5)}[kind]
    _compare(lambda: [gd.Network.from_sizes([3, 8, 1], activation="tanh", dtype=dtype, seed=s)
                      for s in range(len(RATES))],
             lambda: [make(r) for r in RATES], X, y, epochs=6, batch_size=16, seed=3,
             on_divergence="backoff")


def test_different_layers_regularisers_weights_validation_and_metrics(backend, dtype, rng):
    # Networks of different hidden layers (same inputs and outputs), dropout in some, l2,
    # label smoothing, sample weights, a validation split, metrics, restore_best_weights.
    X, y = _data(rng, n=90, classes=3)
    w = rng.uniform(0.5, 2.0, size=len(X))

    def nets():
        return [gd.Network.from_sizes([3, 8, 3], output_activation="softmax",
                                      loss="cross_entropy", dtype=dtype, seed=0),
                gd.Network.from_sizes([3, 16, 8, 3], activation="tanh", dropout=0.2,
                                      output_activation="softmax", loss="cross_entropy",
                                      dtype=dtype, seed=1),
                gd.Network.from_sizes([3, 5, 3], activation="relu", output_activation="softmax",
                                      loss="cross_entropy", dtype=dtype, seed=2)]

    _compare(nets, lambda: [gd.Adam(lr=0.01), "sgd", None], X, y, epochs=5, batch_size=20,
             seed=7, sample_weight=w, l2=1e-3, label_smoothing=0.1, validation_split=0.2,
             metrics=["accuracy"], restore_best_weights=True)


def test_networks_stop_at_different_epochs(backend, dtype, rng):
    # A rate far too large diverges and is backed off (rollbacks, repeated epochs), another
    # stops by tol, the others run all epochs: each as in its own fit.
    X, y = _data(rng)
    rates = [0.01, 50.0, 0.05, 2000.0]
    histories = _compare(
        lambda: [gd.Network.from_sizes([3, 8, 1], activation="tanh", dtype=dtype, seed=0)
                 for _ in rates],
        lambda: [gd.SGD(lr=r) for r in rates], X, y, epochs=12, batch_size=8, seed=1,
        on_divergence="backoff", tol=1e-2, n_iter_no_change=2)
    assert any(h.backoffs > 0 for h in histories)
    assert len({h.epochs for h in histories} | {len(h.events) for h in histories}) > 1


def test_on_divergence_stop_ends_only_that_network(backend, rng):
    X, y = _data(rng)
    rates = [0.01, 1e4]
    histories = _compare(lambda: [gd.Network.from_sizes([3, 8, 1], seed=0) for _ in rates],
                         lambda: [gd.SGD(lr=r) for r in rates], X, y, epochs=5, batch_size=8,
                         seed=0, on_divergence="stop")
    assert histories[1].stop_reason == "diverged" and histories[0].stop_reason == "epochs"


def test_full_batch_lbfgs_and_mini_batch_networks_together(backend, rng):
    X, y = _data(rng)
    _compare(lambda: [gd.Network.from_sizes([3, 6, 1], activation="tanh", dtype="float64",
                                            seed=s) for s in range(3)],
             lambda: [gd.LBFGS(), gd.SGD(lr=0.05), gd.Adam(lr=0.01)], X, y, epochs=4,
             shuffle=False)


def test_lr_auto_and_a_schedule_that_undoes_epochs(backend, rng):
    # lr="auto" runs each network's range test at its start (history.lr_found); BoldDriver
    # undoes epochs on its own: both as in each network's own fit.
    X, y = _data(rng, n=96)
    histories = _compare(
        lambda: [gd.Network.from_sizes([3, 8, 1], activation="tanh", seed=s) for s in range(3)],
        lambda: [gd.SGD(lr="auto"), gd.Adam(lr="auto"),
                 gd.SGD(lr=gd.schedules.BoldDriver(5.0))], X, y, epochs=6, batch_size=16,
        seed=2)
    assert histories[0].lr_found is not None and histories[1].lr_found is not None


def test_shuffling_from_network_seeds_and_names(backend, rng):
    # No seed argument: each network shuffles from its own seed, as its own fit.
    X, y = _data(rng)
    nets_a = [gd.Network.from_sizes([3, 4, 1], seed=s) for s in (0, 1, 0)]
    nets_b = [n.copy() for n in nets_a]
    hist = gd.fit_many(nets_a, X, y, optimizers="adam", epochs=3, batch_size=10)
    for net, h in zip(nets_b, hist):
        alone = net.fit(X, y, optimizer="adam", epochs=3, batch_size=10)
        assert alone.loss == h.loss
    for a, b in zip(nets_a, nets_b):
        for p, q in zip(a.parameters(), b.parameters()):
            assert np.array_equal(p, q)


def test_optimizers_continue_with_fit_afterwards(backend, rng):
    X, y = _data(rng)
    nets = [gd.Network.from_sizes([3, 4, 1], seed=0) for _ in range(2)]
    twins = [n.copy() for n in nets]
    opts, twin_opts = [gd.Adam(lr=0.01) for _ in nets], [gd.Adam(lr=0.01) for _ in nets]
    gd.fit_many(nets, X, y, optimizers=opts, epochs=2, batch_size=16, seed=0)
    for net, opt in zip(nets, opts):
        net.fit(X, y, optimizer=opt, epochs=2, batch_size=16, seed=1)
    for net, opt in zip(twins, twin_opts):
        net.fit(X, y, optimizer=opt, epochs=2, batch_size=16, seed=0)
        net.fit(X, y, optimizer=opt, epochs=2, batch_size=16, seed=1)
    for a, b in zip(nets, twins):
        for p, q in zip(a.parameters(), b.parameters()):
            assert np.array_equal(p, q)


def test_one_thread_or_several_give_the_same_results(rng):
    if not _backend._core_engines_available():
        pytest.skip("the compiled core is not built")
    X, y = _data(rng, n=200)
    results = []
    previous = gd.get_num_threads()
    try:
        for threads in (1, 2):
            gd.set_num_threads(threads)
            nets = [gd.Network.from_sizes([3, 8, 1], seed=0) for _ in RATES]
            gd.fit_many(nets, X, y, optimizers=[gd.SGD(lr=r) for r in RATES], epochs=3,
                        batch_size=16, seed=0)
            results.append([p.copy() for n in nets for p in n.parameters()])
    finally:
        gd.set_num_threads(previous)
    assert all(np.array_equal(a, b) for a, b in zip(*results))


# ------------------------------------------------------------------------- refused calls

def _unchanged(nets, before):
    for net, saved in zip(nets, before):
        for p, q in zip(net.parameters(), saved):
            assert np.array_equal(p, q)


@pytest.mark.parametrize("make, message", [
    (lambda: [gd.Network.from_sizes([3, 4, 1]), gd.Network.from_sizes([2, 4, 1])],
     r"networks\[1\] has 2 inputs, networks\[0\] has 3"),
    (lambda: [gd.Network.from_sizes([3, 4, 1]), gd.Network.from_sizes([3, 4, 2])],
     r"networks\[1\] has 2 outputs, networks\[0\] has 1"),
    (lambda: [gd.Network.from_sizes([3, 4, 1]),
              gd.Network.from_sizes([3, 4, 1], dtype="float64")],
     r"networks\[1\] is float64, networks\[0\] is float32"),
    (lambda: [], "at least one network"),
])
def test_networks_that_cannot_train_together_are_refused(backend, rng, make, message):
    X, y = _data(rng)
    nets = make()
    before = [[p.copy() for p in n.parameters()] for n in nets]
    with pytest.raises(ValueError, match=message):
        gd.fit_many(nets, X, y, epochs=2)
    _unchanged(nets, before)


def test_networks_of_two_engines_are_refused(rng):
    if not _backend._core_engines_available():
        pytest.skip("the compiled core is not built")
    X, y = _data(rng)
    with gd.use_backend("numpy"):
        a = gd.Network.from_sizes([3, 4, 1])
    with gd.use_backend("cpp"):
        b = gd.Network.from_sizes([3, 4, 1])
    with pytest.raises(ValueError, match=r"networks\[1\] runs on the cpp engine"):
        gd.fit_many([a, b], X, y)


def test_bad_arguments_are_refused_before_anything_changes(backend, rng):
    X, y = _data(rng)
    net = gd.Network.from_sizes([3, 4, 1], seed=0)
    other = gd.Network.from_sizes([3, 4, 1], seed=1)
    opt = gd.SGD(lr=0.1)
    with pytest.raises(ValueError, match=r"networks\[1\] is networks\[0\] again"):
        gd.fit_many([net, net], X, y)
    with pytest.raises(TypeError, match="one optimizer per network"):
        gd.fit_many([net, other], X, y, optimizers=opt)
    with pytest.raises(ValueError, match=r"optimizers\[1\] is optimizers\[0\] again"):
        gd.fit_many([net, other], X, y, optimizers=[opt, opt])
    with pytest.raises(ValueError, match="holds 1 entries for 2 networks"):
        gd.fit_many([net, other], X, y, optimizers=[opt])
    with pytest.raises(TypeError, match="unexpected keyword arguments"):
        gd.fit_many([net, other], X, y, epoch=3)
    with pytest.raises(TypeError, match="list of Networks"):
        gd.fit_many(net, X, y)
    before = [[p.copy() for p in n.parameters()] for n in (net, other)]
    # The second network's plan is refused (LBFGS is full-batch): nothing changes for either.
    opts = [gd.SGD(lr=0.1), gd.LBFGS()]
    with pytest.raises(ValueError, match="full batch"):
        gd.fit_many([net, other], X, y, optimizers=opts, batch_size=8)
    with pytest.raises(ValueError, match="epochs"):
        gd.fit_many([net, other], X, y, optimizers=[gd.SGD(), gd.SGD()], epochs=0)
    _unchanged((net, other), before)
    assert all(o._bound() is None and o.steps_done == 0 for o in opts)


def test_a_failure_after_some_networks_were_prepared_puts_them_back(backend, rng):
    # The third optimizer holds another network's state: bind refuses it after the first two
    # were bound; they are unbound again and every network is as it was.
    X, y = _data(rng)
    nets = [gd.Network.from_sizes([3, 4, 1], seed=s) for s in range(3)]
    elsewhere = gd.Network.from_sizes([3, 4, 1], seed=9)
    taken = gd.SGD(lr=0.1)
    elsewhere.fit(X, y, optimizer=taken, epochs=1)
    opts = [gd.SGD(lr=0.1), gd.Adam(lr="auto"), taken]
    before = [[p.copy() for p in n.parameters()] for n in nets]
    with pytest.raises(ValueError, match="another network"):
        gd.fit_many(nets, X, y, optimizers=opts, epochs=2, batch_size=16, seed=0)
    _unchanged(nets, before)
    assert opts[0]._bound() is None and opts[1]._bound() is None and opts[1].lr_is_auto
    assert opts[0].steps_done == 0 and opts[1].steps_done == 0


def test_an_exception_at_an_epoch_end_leaves_every_network_after_whole_epochs(backend, rng):
    # A callback of network 1 raises after epoch 2: every network settles epoch 2 (kept), then
    # the exception ends the call; each equals its own fit of 3 epochs.
    X, y = _data(rng)

    class Boom(Exception):
        pass

    def bomb(epoch, logs):
        if epoch == 2 and logs["network"] is nets[1]:
            raise Boom

    nets = [gd.Network.from_sizes([3, 4, 1], seed=s) for s in range(3)]
    starts = [n.copy() for n in nets]
    opts = [gd.SGD(lr=r) for r in (0.01, 0.02, 0.03)]
    with pytest.raises(Boom):
        gd.fit_many(nets, X, y, optimizers=opts, epochs=6, batch_size=16, seed=0,
                    callbacks=[bomb])
    for net, start, opt, lr in zip(nets, starts, opts, (0.01, 0.02, 0.03)):
        alone = gd.SGD(lr=lr)
        start.fit(X, y, optimizer=alone, epochs=3, batch_size=16, seed=0)
        assert opt.epochs_done == 3 and opt.steps_done == alone.steps_done
        for p, q in zip(net.parameters(), start.parameters()):
            assert np.array_equal(p, q)


def test_divergence_error_is_raised_with_every_network_consistent(backend, rng):
    X, y = _data(rng)
    rates = [0.01, 1e4]
    nets = [gd.Network.from_sizes([3, 8, 1], seed=0) for _ in rates]
    twin = nets[1].copy()
    opts = [gd.SGD(lr=r) for r in rates]
    with pytest.raises(gd.DivergenceError):
        gd.fit_many(nets, X, y, optimizers=opts, epochs=5, batch_size=8, seed=0)
    alone = gd.SGD(lr=1e4)
    with pytest.raises(gd.DivergenceError):
        twin.fit(X, y, optimizer=alone, epochs=5, batch_size=8, seed=0)
    for p, q in zip(nets[1].parameters(), twin.parameters()):
        assert np.array_equal(p, q)
    assert opts[1].steps_done == alone.steps_done
    assert all(np.isfinite(p).all() for p in nets[0].parameters())
    assert opts[0].steps_done == opts[0].epochs_done * 8  # whole epochs of 8 batches


# ------------------------------------------------------------------------- the engine call

def _jobs(factory, dtype, rng, n_jobs=3, n=50):
    X = rng.normal(size=(n, 3)).astype(dtype)
    Y = rng.normal(size=(n, 2)).astype(dtype)
    jobs = []
    for j in range(n_jobs):
        weights = [(rng.normal(size=(3, 5)) / 2).astype(dtype),
                   (rng.normal(size=(5, 2)) / 2).astype(dtype)]
        biases = [np.zeros(5, dtype), np.zeros(2, dtype)]
        engine = factory(weights, biases, ["tanh", "identity"], "mse")
        state = [np.zeros_like(p) for p in (weights[0], biases[0], weights[1], biases[1])]
        order = rng.permutation(n).astype(np.int64)
        jobs.append((engine, X, Y, None, order, 8 + 3 * j, 0, make_hyper(lr=0.05, momentum=0.9),
                     state, np.zeros(1, np.int64), 0.0, 0.0, None, 0))
    return jobs


def _copy_job(job, factory):
    engine = job[0]
    weights = [w.copy() for w in engine.weights]
    biases = [b.copy() for b in engine.biases]
    twin = factory(weights, biases, list(engine.activations), engine.loss_code)
    return (twin, *job[1:8], [s.copy() for s in job[8]], job[9].copy(), *job[10:])


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_train_epoch_many_equals_one_train_epoch_per_engine(engine_factory, dtype, rng, threads):
    jobs = _jobs(engine_factory, dtype, rng)
    alone = [_copy_job(job, engine_factory) for job in jobs]
    cls = type(jobs[0][0])
    for _ in range(2):
        losses = cls.train_epoch_many(jobs, threads)
        expected = [job[0].train_epoch(*job[1:]) for job in alone]
        assert losses == expected
    for job, twin in zip(jobs, alone):
        for a, b in zip(job[0].weights + job[0].biases + job[8] + [job[9]],
                        twin[0].weights + twin[0].biases + twin[8] + [twin[9]]):
            assert np.array_equal(a, b)
    assert cls.train_epoch_many([], 2) == []


def test_train_epoch_many_refuses_bad_jobs(engine_factory, rng):
    jobs = _jobs(engine_factory, "float64", rng, n_jobs=2)
    cls = type(jobs[0][0])
    weights_before = [w.copy() for w in jobs[0][0].weights]
    with pytest.raises(RuntimeError, match="already running"):
        cls.train_epoch_many([jobs[0], jobs[0]], 1)
    with pytest.raises(TypeError, match=r"jobs\[1\] must be a tuple") as info:
        cls.train_epoch_many([jobs[0], list(jobs[1])], 1)
    assert info.value.code == "type"
    with pytest.raises(ValueError, match="n_threads must be at least 1") as info:
        cls.train_epoch_many(jobs, 0)
    assert info.value.code == "index"
    bad = (*jobs[1][:5], 0, *jobs[1][6:])
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        cls.train_epoch_many([jobs[0], bad], 1)
    for w, before in zip(jobs[0][0].weights, weights_before):
        assert np.array_equal(w, before)
    # A job on the same arrays as the one before but an engine that does not take them (its
    # data is checked again, not taken from the job before).
    shared = (jobs[0][0], *jobs[0][1:5], *jobs[1][5:])
    for sizes, name in (((4, 5, 2), "X"), ((3, 5, 3), "Y")):
        other = engine_factory([np.zeros(sizes[:2]), np.zeros(sizes[1:])],
                               [np.zeros(sizes[1]), np.zeros(sizes[2])], ["tanh", "identity"],
                               "mse")
        job = (other, *jobs[0][1:5], *jobs[1][5:8],
               [np.zeros(sizes[:2]), np.zeros(sizes[1]), np.zeros(sizes[1:]), np.zeros(sizes[2])],
               *jobs[1][9:])
        with pytest.raises(ValueError, match=rf"^{name} must"):
            cls.train_epoch_many([shared, job], 1)
    for w, before in zip(jobs[0][0].weights, weights_before):
        assert np.array_equal(w, before)
    # Not this engine class (a float32 job for EngineF64; any object for the NumPy engine).
    with pytest.raises(TypeError, match=r"jobs\[0\]\[0\] must be a") as info:
        cls.train_epoch_many([(object(), *jobs[0][1:])], 1)
    assert info.value.code == "type"


# ------------------------------------------------------------------------- Ctrl-C

CHILD = r"""
import json, os, signal, sys, time
import numpy as np
import gdcore as gd

signal.signal(signal.SIGINT, signal.default_int_handler)
gd.set_num_threads(2)
N, BS = int(os.environ["CHILD_SAMPLES"]), 32
rng = np.random.default_rng(0)
X = rng.normal(size=(N, 20)).astype(np.float32)
y = rng.normal(size=N).astype(np.float32)
nets = [gd.Network.from_sizes([20, 128, 128, 1], activation="tanh", seed=s) for s in range(3)]
opts = [gd.SGD(lr=1e-3 * (s + 1), momentum=0.9) for s in range(3)]

def announce(epoch, logs):
    if logs["network"] is nets[0]:
        print("EPOCH", epoch, flush=True)

print("BACKEND", nets[0].backend, flush=True)
try:
    gd.fit_many(nets, X, y, optimizers=opts, epochs=10**6, batch_size=BS, shuffle=False,
                callbacks=[announce])
    print("NOT INTERRUPTED", flush=True)
    sys.exit(1)
except KeyboardInterrupt:
    print("INTERRUPTED", repr(time.monotonic()), flush=True)
k = -(-N // BS)
report = {"finite": bool(all(np.isfinite(p).all() for n in nets for p in n.parameters())),
          "whole": [o.steps_done == o.epochs_done * k for o in opts],
          "epochs": [o.epochs_done for o in opts]}
print("REPORT", json.dumps(report), flush=True)
"""


def _read_until(proc, prefix):
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(prefix):
            return line
    raise AssertionError(f"child never printed {prefix!r}; got {lines}")


@pytest.mark.parametrize("backend_name", ["numpy", "cpp"])
def test_sigint_stops_fit_many_with_every_network_after_whole_epochs(backend_name):
    if backend_name == "cpp" and not _backend._core_engines_available():
        pytest.skip("the compiled core is not built")
    samples = {"numpy": "4000", "cpp": "24000"}[backend_name]
    env = {**os.environ, "GDCORE_BACKEND": backend_name, "PYTHONUNBUFFERED": "1",
           "CHILD_SAMPLES": samples}
    with subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True, env=env) as proc:
        watchdog = threading.Timer(120, proc.kill)
        watchdog.start()
        try:
            assert _read_until(proc, "BACKEND").split()[1] == backend_name
            _read_until(proc, "EPOCH 0")
            time.sleep(0.2)
            sent = time.monotonic()
            os.kill(proc.pid, signal.SIGINT)
            latency = float(_read_until(proc, "INTERRUPTED").split()[1]) - sent
            report = json.loads(_read_until(proc, "REPORT").split(" ", 1)[1])
            proc.wait()
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0
    assert 0.0 <= latency < 0.5, f"KeyboardInterrupt took {latency:.3f} s"
    assert report["finite"] and all(report["whole"]), report
    assert min(report["epochs"]) >= 1


def test_perceptrons_train_as_their_networks(backend, rng):
    X, y = _data(rng)
    units = [gd.Perceptron(3, activation="identity", seed=s) for s in range(2)]
    twins = [gd.Perceptron(3, activation="identity", seed=s) for s in range(2)]
    histories = gd.fit_many(units, X, y, optimizers=[gd.SGD(lr=0.01), gd.SGD(lr=0.02)],
                            epochs=3, batch_size=16, seed=0)
    for unit, twin, lr, history in zip(units, twins, (0.01, 0.02), histories):
        alone = twin.fit(X, y, optimizer=gd.SGD(lr=lr), epochs=3, batch_size=16, seed=0)
        assert alone.loss == history.loss
        assert np.array_equal(unit.weights, twin.weights) and unit.bias == twin.bias
