"""Rollback owns everything, and any exception leaves a consistent model.

One Checkpoint saves and restores together the parameters, the optimizer's state, step and
epoch counts, its back-off scale and its schedule's state. An exception that ends fit (a signal
handler's, a schedule's, a callback's) leaves network and optimizer after a whole number of
steps on both engines: a replay of exactly ``step`` steps gives the same weights and state.
``restore_best_weights`` restores the weights whose loss was recorded as best.
"""
import math
import signal

import numpy as np
import pytest

import gdcore as gd
from conftest import FlakyEngine
from gdcore.schedules import ReduceOnPlateau, Schedule
from gdcore.training import Checkpoint

N, BATCH = 64, 8
BATCHES = N // BATCH


def _data(rng, dtype="float64"):
    return rng.normal(size=(N, 4)), rng.normal(size=N)


def _deep(dtype="float64", seed=0):
    return gd.Network.from_sizes([4, 32, 32, 32, 32, 1], activation="tanh", dtype=dtype,
                                 seed=seed)


def _replay(start, X, y, make_opt, steps):
    """The network and optimizer after exactly ``steps`` steps (shuffle=False)."""
    net, opt = start.copy(), make_opt()
    whole, partial = divmod(steps, BATCHES)
    if whole:
        net.fit(X, y, optimizer=opt, epochs=whole, batch_size=BATCH, shuffle=False)
    if partial:
        net.fit(X[:partial * BATCH], y[:partial * BATCH], optimizer=opt, epochs=1,
                batch_size=BATCH, shuffle=False)
    return net, opt


def _assert_same(net, opt, replay, replay_opt):
    assert opt.steps_done == replay_opt.steps_done
    for p, q in zip(net.parameters(), replay.parameters()):
        np.testing.assert_array_equal(p, q)
    for s, t in zip(opt.state, replay_opt.state):
        np.testing.assert_array_equal(s, t)


def test_checkpoint_restores_parameters_state_counts_scale_and_schedule(backend, rng):
    X, y = _data(rng)
    net = _deep()
    opt = gd.SGD(lr=ReduceOnPlateau(0.01, patience=0), momentum=0.9)
    net.fit(X, y, optimizer=opt, epochs=2, batch_size=BATCH)
    checkpoint = Checkpoint(net.parameters(), opt)
    saved = ([p.copy() for p in net.parameters()], [s.copy() for s in opt.state],
             opt.steps_done, opt.epochs_done, opt.schedule.state_dict())
    net.fit(X, y, optimizer=opt, epochs=3, batch_size=BATCH)
    opt.lr_scale = 0.25
    checkpoint.restore()
    for p, q in zip(net.parameters(), saved[0]):
        np.testing.assert_array_equal(p, q)
    for s, t in zip(opt.state, saved[1]):
        np.testing.assert_array_equal(s, t)
    assert (opt.steps_done, opt.epochs_done, opt.lr_scale) == (saved[2], saved[3], 1.0)
    assert opt.schedule.state_dict() == saved[4]


def test_rollback_restores_the_schedule_state(backend, rng):
    """ReduceOnPlateau must not see an undone epoch: after the run its state equals one fed
    with exactly the kept epochs' losses."""
    X, y = _data(rng)
    net = _deep()
    net._engine = FlakyEngine(net._engine, bad_calls={4})
    opt = gd.SGD(lr=ReduceOnPlateau(0.01, patience=1, factor=0.5))
    history = net.fit(X, y, optimizer=opt, epochs=8, batch_size=BATCH, shuffle=False,
                      on_divergence="backoff")
    assert history.backoffs == 1 and history.epochs == 8
    fed = ReduceOnPlateau(0.01, patience=1, factor=0.5)
    for epoch, loss in enumerate(history.loss):
        fed.observe(epoch, loss)
    assert opt.schedule.state_dict() == fed.state_dict()


class _CountingPlateau(ReduceOnPlateau):
    """ReduceOnPlateau that counts the epochs it observed, in its state."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = 0

    def observe(self, epoch, loss):
        super().observe(epoch, loss)
        self.seen += 1

    def state_dict(self):
        return {**super().state_dict(), "seen": self.seen}

    def load_state_dict(self, state):
        self.lr, self.num_bad_epochs, self.seen = (state["lr"], state["num_bad_epochs"],
                                                   state["seen"])
        self.best = math.inf if state["best"] is None else state["best"]


def test_an_undone_epoch_is_never_observed_twice(backend, rng):
    X, y = _data(rng)
    net = _deep()
    net._engine = FlakyEngine(net._engine, bad_calls={4, 9})
    opt = gd.SGD(lr=_CountingPlateau(0.01, patience=1))
    history = net.fit(X, y, optimizer=opt, epochs=8, batch_size=BATCH, on_divergence="backoff")
    assert history.backoffs == 2 and history.epochs == 8
    assert opt.schedule.seen == history.epochs


def _raise_at(epoch_to_fail, exc):
    class Failing(Schedule):
        def __init__(self):
            super().__init__(0.01)

        def _lr(self, epoch):
            if epoch == epoch_to_fail:
                if exc == "nan":
                    return math.nan
                raise RuntimeError("schedule failed")
            return 0.01

        def _params(self):
            return {}
    return Failing()


@pytest.mark.parametrize("failure", ["schedule_raises", "schedule_nan", "callback_raises"])
def test_exceptions_between_epochs_leave_whole_epochs(backend, rng, failure):
    X, y = _data(rng)
    start = _deep()
    net = start.copy()
    callbacks = ()
    if failure == "callback_raises":
        def callback(epoch, logs):
            if epoch == 2:
                raise RuntimeError("callback failed")
        opt, callbacks = gd.SGD(lr=0.01, momentum=0.9), (callback,)
    else:
        opt = gd.SGD(lr=_raise_at(3, "nan" if failure == "schedule_nan" else "raise"),
                     momentum=0.9)
    with pytest.raises((RuntimeError, ValueError)):
        net.fit(X, y, optimizer=opt, epochs=10, batch_size=BATCH, shuffle=False,
                callbacks=callbacks)
    assert opt.steps_done == 3 * BATCHES and opt.epochs_done == 3
    replay, replay_opt = _replay(start, X, y, lambda: gd.SGD(lr=0.01, momentum=0.9),
                                 opt.steps_done)
    _assert_same(net, opt, replay, replay_opt)
    if failure == "callback_raises":  # and training goes on from there
        net.fit(X, y, optimizer=opt, epochs=1, batch_size=BATCH)
        assert opt.epochs_done == 4


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_an_exception_from_a_signal_handler_leaves_a_whole_number_of_steps(backend, rng):
    """A SIGALRM handler raising TimeoutError in the middle of training (inside a step, on the
    NumPy engine, between two steps on the compiled one, or between epochs): the epoch it
    interrupted is undone, so the model equals a replay of exactly the whole epochs kept."""
    X, y = _data(rng)
    X = np.repeat(X, 40, axis=0)[:N]  # the same N rows: shapes for the replay
    start = _deep()
    net = start.copy()
    opt = gd.Adam(lr=1e-3)

    def on_alarm(signum, frame):
        raise TimeoutError("alarm")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.15)
        with pytest.raises(TimeoutError):
            net.fit(X, y, optimizer=opt, epochs=10**6, batch_size=BATCH, shuffle=False)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert opt.steps_done == BATCHES * opt.epochs_done
    replay, replay_opt = _replay(start, X, y, lambda: gd.Adam(lr=1e-3), opt.steps_done)
    _assert_same(net, opt, replay, replay_opt)
    assert opt.epochs_done == opt.steps_done // BATCHES


def test_restore_best_full_batch_loss_equals_the_best_recorded(backend, dtype):
    """Full-batch SGD with momentum 0.99 on sine oscillates: the restored weights are those
    whose loss is min(history.loss), not the next epoch's."""
    X, y = gd.datasets.sine(seed=0)
    net = gd.Network.from_sizes([1, 32, 1], activation="tanh", dtype=dtype, seed=0)
    history = net.fit(X, y, optimizer=gd.SGD(lr=0.1, momentum=0.99), epochs=150,
                      restore_best_weights=True)
    assert history.monitor == "loss" and history.best_epoch < history.epochs - 1
    rtol = 1e-5 if dtype == "float32" else 1e-12
    assert net.loss(X, y) == pytest.approx(min(history.loss), rel=rtol)


def test_restore_best_with_mini_batches_monitors_the_end_of_epoch_loss(backend, dtype):
    X, y = gd.datasets.sine(seed=0)
    net = gd.Network.from_sizes([1, 32, 1], activation="tanh", dtype=dtype, seed=0)
    history = net.fit(X, y, optimizer=gd.SGD(lr=0.02, momentum=0.9), epochs=40, batch_size=16,
                      restore_best_weights=True, seed=0)
    assert history.monitor == "train_loss"
    measured = history.metrics["train_loss"]
    assert len(measured) == history.epochs and history.best_epoch == int(np.argmin(measured))
    rtol = 1e-5 if dtype == "float32" else 1e-12
    assert net.loss(X, y) == pytest.approx(min(measured), rel=rtol)


def test_restore_best_with_validation_restores_the_best_validation_weights(backend, rng):
    X, y = gd.datasets.sine(n_samples=300, seed=0)
    net = gd.Network.from_sizes([1, 32, 1], activation="tanh", dtype="float64", seed=0)
    history = net.fit(X[:200], y[:200], optimizer=gd.SGD(lr=0.02, momentum=0.9), epochs=40,
                      batch_size=16, validation_data=(X[200:], y[200:]),
                      restore_best_weights=True, seed=0)
    assert history.monitor == "val_loss"
    assert net.loss(X[200:], y[200:]) == pytest.approx(min(history.val_loss), rel=1e-12)


def test_a_failed_fit_leaves_the_optimizer_unbound(backend, rng):
    X, y = _data(rng)
    net = _deep()
    opt = gd.SGD(lr=_raise_at(0, "raise"))
    with pytest.raises(RuntimeError, match="schedule failed"):
        net.fit(X, y, optimizer=opt, epochs=3)
    assert opt._bound() is None and opt.state == [] and opt.steps_done == 0
    with pytest.raises(RuntimeError, match="schedule failed"):
        _deep(seed=1).fit(X, y, optimizer=opt, epochs=3)  # not "bound to another network"


class _RaisingEngine(FlakyEngine):
    """Reports a diverged epoch on call 2 and raises on call 3."""

    def train_epoch(self, *args):
        if self.calls == 2:
            self.calls += 1
            raise RuntimeError("engine failed")
        return super().train_epoch(*args)


def test_an_exception_after_a_backoff_keeps_the_cut_rate(backend, rng):
    X, y = _data(rng)
    net = _deep()
    opt = gd.SGD(lr=0.01, momentum=0.9)
    net.fit(X, y, optimizer=opt, epochs=1, batch_size=BATCH, shuffle=False)  # bound, 1 epoch
    start = net.copy()
    net._engine = _RaisingEngine(net._engine, bad_calls={2})
    with pytest.raises(RuntimeError, match="engine failed"):
        net.fit(X, y, optimizer=opt, epochs=5, batch_size=BATCH, shuffle=False,
                on_divergence="backoff")
    # back where this fit started (its first epoch was forgotten by the undo), at half rate
    assert opt.epochs_done == 1 and opt.steps_done == BATCHES and opt.lr == 0.005
    for p, q in zip(net.parameters(), start.parameters()):
        np.testing.assert_array_equal(p, q)


def test_a_failed_first_fit_leaves_the_optimizer_as_it_was(backend, rng):
    X, y = _data(rng)
    net = _deep()
    net._engine = _RaisingEngine(net._engine, bad_calls={2})
    opt = gd.SGD(lr=0.01, momentum=0.9)
    with pytest.raises(RuntimeError, match="engine failed"):
        net.fit(X, y, optimizer=opt, epochs=5, batch_size=BATCH, on_divergence="backoff")
    assert opt._bound() is None and opt.lr == 0.01 and opt.epochs_done == 0
