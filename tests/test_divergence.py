"""Divergence: a far-too-large learning rate is detected, reported and recovered from.

``on_divergence="raise"`` raises DivergenceError naming the epoch, the loss and the rate and
suggesting find_lr; ``"stop"`` returns the weights of the last sane epoch (checked by replaying
that many epochs from the start); ``"backoff"`` halves the rate and converges where the starting
rate diverges, for a linear model (tests/test_fit.py) and for small classification networks
trained with Adam and SGD. Counters (epochs, optimizer steps) always match the weights.
"""
import math

import numpy as np
import pytest

import gdcore as gd
from conftest import FlakyEngine
from gdcore.schedules import Schedule


def _moons():
    return gd.datasets.two_moons(n_samples=200, noise=0.1, seed=0)


def _classifier():
    return gd.Network.from_sizes([2, 16, 16, 2], activation="relu", output_activation="softmax",
                                 loss="cross_entropy", dtype="float64", seed=0)


def _accuracy(net, X, y):
    return float((net.predict(X).argmax(axis=1) == y).mean())


# Full-batch runs whose starting rate diverges within a few epochs (both backends alike).
DIVERGING = {
    "adam": lambda: gd.Adam(lr=10.0),
    "sgd": lambda: gd.SGD(lr=100.0),
}


@pytest.mark.parametrize("name", DIVERGING)
def test_raise_names_epoch_loss_and_learning_rate(backend, name):
    X, y = _moons()
    net = _classifier()
    with pytest.raises(gd.DivergenceError) as info:
        net.fit(X, y, optimizer=DIVERGING[name](), epochs=100)
    err = info.value
    message = str(err)
    assert f"at epoch {err.epoch}:" in message and f"loss {err.loss}" in message
    assert f"learning rate {err.lr:g}" in message and "find_lr" in message
    assert err.lr == DIVERGING[name]().schedule.initial_lr
    # a loss clearly above the start (or not finite), not noise
    assert not (math.isfinite(err.loss)
                and err.loss <= gd.training.DIVERGENCE_FACTOR * err.history.start_loss)
    assert err.history.diverged and err.history.stop_reason == "diverged"
    assert all(np.isfinite(p).all() for p in net.parameters())
    assert np.isfinite(net.loss(X, y))


@pytest.mark.parametrize("name", DIVERGING)
def test_stop_returns_the_weights_of_the_last_sane_epoch(backend, name):
    X, y = _moons()
    start = _classifier()
    net = start.copy()
    opt = DIVERGING[name]()
    history = net.fit(X, y, optimizer=opt, epochs=100, on_divergence="stop")
    assert history.diverged and history.stop_reason == "diverged" and history.epochs < 100
    assert opt.epochs_done == history.epochs == len(history.loss)
    assert opt.steps_done == history.epochs  # full batch: one step per epoch
    # replaying that many epochs from the start gives exactly these weights and state
    replay, replay_opt = start.copy(), DIVERGING[name]()
    if history.epochs:
        replay_history = replay.fit(X, y, optimizer=replay_opt, epochs=history.epochs)
        assert replay_history.loss == history.loss
    for p, q in zip(net.parameters(), replay.parameters()):
        np.testing.assert_array_equal(p, q)
    for s, t in zip(opt.state, replay_opt.state):
        np.testing.assert_array_equal(s, t)


@pytest.mark.parametrize("name", DIVERGING)
def test_backoff_converges_where_the_starting_rate_diverges(backend, name):
    X, y = _moons()
    net = _classifier()
    before = _accuracy(net, X, y)
    opt = DIVERGING[name]()
    history = net.fit(X, y, optimizer=opt, epochs=200, on_divergence="backoff")
    assert history.diverged and history.backoffs >= 1 and history.stop_reason == "epochs"
    assert history.epochs == opt.epochs_done == opt.steps_done == 200
    assert history.lr[-1] == opt.schedule.initial_lr / 2 ** history.backoffs == opt.lr
    assert history.loss[-1] < 0.75 * history.loss[0]
    assert _accuracy(net, X, y) >= 0.9 > before


def test_minibatch_blow_up_in_the_first_epoch_is_detected(backend):
    """The reference is the loss of the starting weights: with mini-batches a too-large rate
    wrecks the network inside epoch 0, whose mean loss must not become the yardstick."""
    X, y = _moons()
    start = _classifier()
    net = start.copy()
    with pytest.raises(gd.DivergenceError, match="at epoch 0: .*learning rate 20"):
        net.fit(X, y, optimizer=gd.SGD(lr=20.0), epochs=5, batch_size=32)
    for p, q in zip(net.parameters(), start.parameters()):  # rolled back to the start
        np.testing.assert_array_equal(p, q)
    # backoff keeps the step counter in line with the weights: 7 batches per epoch
    opt = gd.SGD(lr=20.0, momentum=0.5)
    history = net.fit(X, y, optimizer=opt, epochs=5, batch_size=32, on_divergence="backoff")
    assert history.backoffs >= 1 and history.epochs == 5
    assert opt.steps_done == 7 * history.epochs and opt.epochs_done == history.epochs


def test_repeated_backoff_at_one_epoch_keeps_counters_and_weights_in_step(backend, rng):
    # Calls: epoch 0 ok, epoch 1 ok, epoch 2 diverges (back to the start of epoch 1, which is
    # forgotten), the retry of epoch 1 diverges too (back to the start of epoch 1 again: no
    # epoch may be forgotten twice), then epochs 1, 2, 3 go through at a quarter of the rate.
    X, y = rng.normal(size=(12, 3)), rng.normal(size=12)
    start = gd.Network.from_sizes([3, 4, 1], activation="tanh", dtype="float64", seed=0)
    net = start.copy()
    net._engine = FlakyEngine(net._engine, bad_calls={3, 4})
    opt = gd.SGD(lr=0.1)
    history = net.fit(X, y, optimizer=opt, epochs=4, batch_size=5, shuffle=False,
                      on_divergence="backoff")
    assert history.backoffs == 2 and history.epochs == opt.epochs_done == 4
    assert history.lr == [0.1, 0.025, 0.025, 0.025]
    assert opt.steps_done == 3 * history.epochs  # 3 batches per epoch
    replay = start.copy()
    replay.fit(X, y, optimizer=gd.SGD(lr=0.1), epochs=1, batch_size=5, shuffle=False)
    replay.fit(X, y, optimizer=gd.SGD(lr=0.025), epochs=3, batch_size=5, shuffle=False)
    for p, q in zip(net.parameters(), replay.parameters()):
        np.testing.assert_array_equal(p, q)


class _Jump(Schedule):
    """0.01 for five epochs, then a rate that makes the next step explode."""

    def __init__(self):
        super().__init__(0.01)

    def _lr(self, epoch):
        return 0.01 if epoch < 5 else 100.0

    def _params(self):
        return {}


def test_restore_best_weights_never_restores_diverged_weights(backend):
    # Full batch: the loss of epoch 5 (measured before its update) is the lowest, and the
    # weights after epoch 5 are those that blew up in epoch 6. "stop" drops epoch 5; the
    # best weights must then not be the exploded ones.
    X = np.array([[1.0], [2.0], [3.0]])
    y = 2 * X[:, 0]
    net = gd.Network([gd.Layer(1, 1, init="zeros")], dtype="float64")
    opt = gd.SGD(lr=_Jump())
    history = net.fit(X, y, optimizer=opt, epochs=50, on_divergence="stop",
                      restore_best_weights=True)
    assert history.diverged and history.epochs == opt.epochs_done == 5
    assert history.best_epoch == 4
    final = net.loss(X, y)
    assert np.isfinite(final) and final < history.loss[0]
    assert final <= min(history.loss)  # the weights after the best recorded epoch


def test_schedule_giving_a_bad_rate_mid_fit_is_a_clear_error(backend, rng):
    class Negative(Schedule):
        def __init__(self):
            super().__init__(0.01)

        def _lr(self, epoch):
            return 0.01 if epoch == 0 else -1.0

        def _params(self):
            return {}

    X, y = rng.normal(size=(10, 2)), rng.normal(size=10)
    net = gd.Network.from_sizes([2, 1], dtype="float64", seed=0)
    with pytest.raises(ValueError, match=r"learning rate for epoch 1 is -1\.0"):
        net.fit(X, y, optimizer=gd.SGD(lr=Negative()), epochs=3)
    assert all(np.isfinite(p).all() for p in net.parameters())


def test_backoff_gives_up_after_max_backoffs(backend):
    # Every epoch "diverges": after MAX_BACKOFFS halvings, DivergenceError.
    X = np.array([[1.0], [2.0]])
    y = np.array([1.0, 2.0])
    net = gd.Network([gd.Layer(1, 1)], dtype="float64")
    net._engine = FlakyEngine(net._engine, bad_calls=range(1, 1000))
    start = [p.copy() for p in net.parameters()]
    with pytest.raises(gd.DivergenceError) as info:
        net.fit(X, y, optimizer=gd.SGD(lr=1.0), epochs=10, on_divergence="backoff")
    assert info.value.history.backoffs == gd.training.MAX_BACKOFFS
    assert info.value.lr == pytest.approx(2.0 ** -gd.training.MAX_BACKOFFS)
    for p, q in zip(net.parameters(), start):
        np.testing.assert_array_equal(p, q)


# --- the rule: clearly above the starting loss is divergence --------------------------------------

def _spirals():
    X, y = gd.datasets.spirals(n_samples=300, n_classes=3, seed=0)
    net = gd.Network.from_sizes([2, 64, 64, 3], activation="relu", output_activation="softmax",
                                loss="cross_entropy", seed=0)
    return X, y, net


def _sine(dtype="float32"):
    X, y = gd.datasets.sine(seed=0)
    return X, y, gd.Network.from_sizes([1, 32, 1], activation="tanh", dtype=dtype, seed=0)


def _limit(history, dtype):
    floor = math.sqrt(float(np.finfo(dtype).eps))
    return gd.training.DIVERGENCE_FACTOR * history.start_loss + floor


def test_readme_spirals_at_sgd_rate_10_is_divergence(backend, dtype):
    """Today's README example at SGD lr=10 ends near twice its starting loss at chance accuracy:
    that is divergence, and "raise" leaves the network at sane weights, as its message says."""
    X, y, net = _spirals()
    net = gd.Network.from_sizes([2, 64, 64, 3], activation="relu", output_activation="softmax",
                                loss="cross_entropy", dtype=dtype, seed=0)
    start = net.copy()
    with pytest.raises(gd.DivergenceError) as info:
        net.fit(X, y, optimizer=gd.SGD(lr=10.0), epochs=200, batch_size=32, seed=0)
    history = info.value.history
    assert history.diverged and history.stop_reason == "diverged"
    assert net.loss(X, y) <= _limit(history, dtype) * 1.2  # (start measured on 256 samples)
    if history.epochs == 0:
        assert "restored to the starting weights" in str(info.value)
        for p, q in zip(net.parameters(), start.parameters()):
            np.testing.assert_array_equal(p, q)
    else:
        assert f"weights after epoch {history.epochs - 1}" in str(info.value)


@pytest.mark.parametrize("mode", ["raise", "stop"])
def test_full_batch_blow_up_leaves_the_last_sane_weights(backend, dtype, mode):
    """SGD lr=50, full batch, on sine: the loss climbs from ~0.3 to thousands. The weights left
    are those of the last epoch whose loss was sane, exactly (a replay of that many epochs)."""
    X, y, start = _sine(dtype)
    net = start.copy()
    opt = gd.SGD(lr=50.0)
    if mode == "raise":
        with pytest.raises(gd.DivergenceError) as info:
            net.fit(X, y, optimizer=opt, epochs=200)
        history = info.value.history
    else:
        history = net.fit(X, y, optimizer=opt, epochs=200, on_divergence="stop")
    assert history.diverged and history.stop_reason == "diverged"
    assert net.loss(X, y) <= _limit(history, dtype)
    assert opt.epochs_done == history.epochs == opt.steps_done
    replay = start.copy()
    if history.epochs:
        replay.fit(X, y, optimizer=gd.SGD(lr=50.0), epochs=history.epochs)
    for p, q in zip(net.parameters(), replay.parameters()):
        np.testing.assert_array_equal(p, q)


def test_backoff_ends_below_the_starting_loss(backend, dtype):
    X, y, net = _sine(dtype)
    history = net.fit(X, y, optimizer=gd.SGD(lr=50.0), epochs=300, on_divergence="backoff")
    assert history.diverged and history.backoffs >= 1 and history.epochs == 300
    assert net.loss(X, y) < 0.5 * history.start_loss
    assert [e["reason"] for e in history.events] == ["diverged"] * history.backoffs
    assert "undone: epoch" in history.summary()


# Rates that train each problem well (from bench/lr_finder_suite.py's grid), with mini-batch
# noise and several seeds: none may be taken for divergence.
GOOD_RATES = [
    ("spirals", "adam", 1e-2), ("spirals", "sgd", 3e-2),
    ("moons", "adam", 1e-2), ("moons", "sgd", 1e-1),
    ("sine", "adam", 1e-2), ("sine", "sgd", 3e-2),
    ("xor", "adam", 3e-2), ("xor", "sgd", 1e-1),
]


def _problem(name, dtype):
    if name == "spirals":
        X, y = gd.datasets.spirals(n_samples=300, n_classes=3, seed=1)
        return X, y, gd.Network.from_sizes([2, 64, 64, 3], output_activation="softmax",
                                           loss="cross_entropy", dtype=dtype, seed=1)
    if name == "moons":
        X, y = gd.datasets.two_moons(n_samples=300, seed=1)
        return X, y, gd.Network.from_sizes([2, 32, 2], output_activation="softmax",
                                           loss="cross_entropy", dtype=dtype, seed=1)
    if name == "xor":
        X, y = gd.datasets.xor(n_samples=200, noise=0.1, seed=1)
        return X, y, gd.Network.from_sizes([2, 16, 1], activation="tanh",
                                           output_activation="sigmoid", loss="bce",
                                           dtype=dtype, seed=1)
    X, y = gd.datasets.sine(n_samples=300, seed=1)
    return X, y, gd.Network.from_sizes([1, 32, 32, 1], activation="tanh", dtype=dtype, seed=1)


@pytest.mark.parametrize("problem, kind, lr", GOOD_RATES)
def test_good_rates_never_trip_the_divergence_rule(backend, dtype, problem, kind, lr):
    X, y, start = _problem(problem, dtype)
    for seed in range(3):
        opt = gd.Adam(lr=lr) if kind == "adam" else gd.SGD(lr=lr, momentum=0.9)
        history = start.copy().fit(X, y, optimizer=opt, epochs=30, batch_size=32, seed=seed)
        assert not history.diverged and history.loss[-1] < start.loss(X, y)


@pytest.mark.parametrize("lr", [0.01, 1.0, 50.0])
def test_the_starting_loss_is_recorded_only_where_a_check_needs_it(backend, lr):
    """fit measures the starting loss ahead (mini-batches, several epochs, no dropout) but
    records it only where a check needs it: from epoch 1 on, or at epoch 0 when that epoch's
    loss is above SCREEN_MARGIN times the loss of 32 evenly spaced samples. It is the loss of
    the starting weights (here on all 200 samples)."""
    X, y = _moons()
    start = _classifier()
    expected = start.loss(X, y)
    step = X.shape[0] // gd.training.SCREEN_SAMPLES
    rows = slice(None, step * gd.training.SCREEN_SAMPLES, step)
    screen = start.loss(X[rows], y[rows])
    kwargs = dict(epochs=3, batch_size=32, seed=0, on_divergence="stop")
    history = start.copy().fit(X, y, optimizer=gd.SGD(lr=lr), **kwargs)
    assert history.start_loss == expected
    first = start.copy().fit(X, y, optimizer=gd.SGD(lr=lr), callbacks=[lambda e, logs: True],
                             **kwargs)  # stops after epoch 0
    if not first.loss or first.loss[0] > gd.training.SCREEN_MARGIN * screen:
        assert first.start_loss == expected
    else:
        assert math.isnan(first.start_loss)


def test_a_continued_fit_measures_the_start_only_when_its_loss_rises(backend):
    """fit(epochs=1) called again with the same optimizer skips measuring the starting loss
    while the loss does not rise above the last epoch's; a rise is still caught."""
    X, y = _moons()
    net = _classifier()
    opt = gd.SGD(lr=_Jump(), momentum=0.5)  # 0.01 for five epochs, then 100
    net.fit(X, y, optimizer=opt, epochs=1, batch_size=32, seed=0)
    for _ in range(4):
        history = net.fit(X, y, optimizer=opt, epochs=1, batch_size=32, seed=0)
        assert math.isnan(history.start_loss) and not history.diverged
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(gd.DivergenceError, match=r"at epoch 0: .*learning rate 100 \(started"):
        net.fit(X, y, optimizer=opt, epochs=1, batch_size=32, seed=0)
    for p, q in zip(net.parameters(), before):
        np.testing.assert_array_equal(p, q)
