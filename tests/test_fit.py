"""fit: learning, stopping rules, divergence handling, continuation, validation."""
import numpy as np
import pytest

import gdcore as gd


def test_fit_learns_xor(backend):
    X, y = gd.datasets.xor()
    net = gd.Network.from_sizes([2, 8, 1], activation="tanh", output_activation="sigmoid",
                                loss="bce", seed=0)
    history = net.fit(X, y, optimizer=gd.SGD(lr=0.5, momentum=0.9), epochs=500)
    assert ((net.predict(X)[:, 0] > 0.5) == y).all()
    assert history.loss[-1] < 0.05 < history.loss[0]
    assert history.epochs == 500 and history.stop_reason == "epochs"


def test_fit_spirals_reaches_95_percent(backend):
    X, y = gd.datasets.spirals(n_samples=300, n_classes=3, seed=0)
    net = gd.Network.from_sizes([2, 64, 64, 3], output_activation="softmax",
                                loss="cross_entropy", seed=0)
    net.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=200, batch_size=32, seed=0)
    assert (net.predict(X).argmax(axis=1) == y).mean() >= 0.95


def test_fit_sine_regression(backend):
    X, y = gd.datasets.sine(n_samples=200, noise=0.0, seed=0)
    net = gd.Network.from_sizes([1, 32, 32, 1], activation="tanh", seed=0)
    net.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=300, batch_size=32, seed=0)
    assert net.loss(X, y) < 0.01


def test_full_batch_is_one_step_per_epoch(backend):
    # One identity unit, mse, full batch: each epoch is exactly one gradient step.
    net = gd.Network([gd.Layer(2, 1)], dtype="float64")
    net.layers[0].weights = [[1.0], [-2.0]]
    net.layers[0].bias = [0.5]
    X, y = np.array([[1.0, 2.0]]), np.array([0.0])
    opt = gd.SGD(lr=0.1)
    history = net.fit(X, y, optimizer=opt, epochs=3, shuffle=False)
    # step 1: out = 1 - 4 + 0.5 = -2.5, dL/dout = 2 out = -5, dW = (-5, -10), db = -5
    #         W = (1.5, -1.0), b = 1.0
    # step 2: out = 1.5 - 2 + 1 = 0.5, dL/dout = 1, W = (1.4, -1.2), b = 0.9
    # step 3: out = 1.4 - 2.4 + 0.9 = -0.1, dL/dout = -0.2, W = (1.42, -1.16), b = 0.92
    np.testing.assert_allclose(net.layers[0].weights[:, 0], [1.42, -1.16], rtol=1e-12)
    np.testing.assert_allclose(net.layers[0].bias, [0.92], rtol=1e-12)
    np.testing.assert_allclose(history.loss, [6.25, 0.25, 0.01], rtol=1e-12)
    assert opt.steps_done == 3 and history.lr == [0.1, 0.1, 0.1]


@pytest.mark.parametrize("make_opt", [
    lambda: gd.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda: gd.Adam(lr=0.01), lambda: gd.AdamW(lr=0.01), lambda: gd.RMSprop(lr=0.01, momentum=0.5),
], ids=["sgd", "adam", "adamw", "rmsprop"])
def test_optimizer_state_continues_across_fit_calls(backend, rng, make_opt):
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    a = gd.Network.from_sizes([3, 6, 1], dtype="float64", seed=0)
    b = a.copy()
    opt_a, opt_b = make_opt(), make_opt()
    a.fit(X, y, optimizer=opt_a, epochs=2, batch_size=8, shuffle=False)
    b.fit(X, y, optimizer=opt_b, epochs=1, batch_size=8, shuffle=False)
    b.fit(X, y, optimizer=opt_b, epochs=1, batch_size=8, shuffle=False)
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(la.weights, lb.weights)
    assert opt_a.steps_done == opt_b.steps_done == 10


def test_optimizer_bound_to_one_network(backend, rng):
    X, y = rng.normal(size=(8, 2)), rng.normal(size=8)
    opt = gd.Adam()
    first = gd.Network.from_sizes([2, 1], seed=0)
    first.fit(X, y, optimizer=opt, epochs=1)
    other = gd.Network.from_sizes([2, 1], seed=1)
    with pytest.raises(ValueError, match="state of another network"):
        other.fit(X, y, optimizer=opt, epochs=1)
    opt.reset()
    other.fit(X, y, optimizer=opt, epochs=1)


def test_shuffle_is_seeded(backend, rng):
    X, y = rng.normal(size=(50, 2)), rng.normal(size=50)
    nets = [gd.Network.from_sizes([2, 4, 1], seed=0) for _ in range(3)]
    for net, seed in zip(nets, (1, 1, 2)):
        net.fit(X, y, epochs=3, batch_size=8, seed=seed)
    np.testing.assert_array_equal(nets[0].layers[0].weights, nets[1].layers[0].weights)
    assert not np.array_equal(nets[0].layers[0].weights, nets[2].layers[0].weights)


def test_tol_stops_when_converged(backend):
    X, y = gd.datasets.sine(n_samples=64, seed=0)
    net = gd.Network.from_sizes([1, 8, 1], activation="tanh", seed=0)
    history = net.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=5000, tol=1e-3,
                      n_iter_no_change=5)
    assert history.converged and history.stop_reason == "converged"
    assert history.epochs < 5000


def test_validation_split_and_restore_best_weights(backend, rng):
    X, y = rng.normal(size=(100, 3)), rng.normal(size=100)
    net = gd.Network.from_sizes([3, 16, 1], seed=0)
    history = net.fit(X, y, optimizer=gd.SGD(lr=0.05), epochs=30, batch_size=10,
                      validation_split=0.2, restore_best_weights=True)
    assert len(history.val_loss) == 30
    best = history.best_epoch
    assert history.val_loss[best] == min(history.val_loss)
    # the final weights are those of the best epoch: their validation loss is the best one
    assert net.loss(X[80:], y[80:]) == pytest.approx(history.val_loss[best], rel=1e-5)


def test_validation_data_and_sample_weight(backend, rng):
    X, y = rng.normal(size=(30, 2)), rng.normal(size=30)
    net = gd.Network.from_sizes([2, 1], dtype="float64", seed=0)
    w = np.ones(30)
    h1 = net.copy().fit(X, y, epochs=3, shuffle=False, sample_weight=w,
                        validation_data=(X[:5], y[:5]))
    h2 = net.copy().fit(X, y, epochs=3, shuffle=False)
    np.testing.assert_allclose(h1.loss, h2.loss, rtol=1e-12)
    assert len(h1.val_loss) == 3 and h2.val_loss == []
    with pytest.raises(ValueError, match="either validation_data or validation_split"):
        net.fit(X, y, validation_data=(X, y), validation_split=0.1)
    with pytest.raises(ValueError, match="validation_data X has 3 features"):
        net.fit(X, y, validation_data=(np.zeros((4, 3)), np.zeros(4)))


def test_sample_weight_duplicates_equal_repeats(backend, rng):
    # Weight 2 on a sample equals that sample appearing twice (full batch).
    X, y = rng.normal(size=(5, 2)), rng.normal(size=5)
    base = gd.Network.from_sizes([2, 3, 1], dtype="float64", seed=0)
    a, b = base.copy(), base.copy()
    a.fit(X, y, epochs=5, shuffle=False, sample_weight=[2, 1, 1, 1, 1])
    b.fit(np.vstack([X, X[:1]]), np.append(y, y[0]), epochs=5, shuffle=False)
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_allclose(la.weights, lb.weights, rtol=1e-10)


def test_callbacks_and_max_time(backend, rng):
    X, y = rng.normal(size=(20, 2)), rng.normal(size=20)
    net = gd.Network.from_sizes([2, 1], seed=0)
    seen = []

    class Recorder:
        def on_epoch_end(self, epoch, logs):
            seen.append((epoch, logs["loss"]))

    history = net.fit(X, y, epochs=10, callbacks=[Recorder(), lambda e, logs: e == 3])
    assert history.stop_reason == "callback" and history.epochs == 4
    assert [e for e, _ in seen] == [0, 1, 2, 3]
    history = net.fit(X, y, epochs=10**6, max_time=0.05)
    assert history.stop_reason == "max_time" and history.epochs < 10**6


def _quadratic_problem():
    X = np.array([[1.0], [2.0], [3.0]])
    return X, 2 * X[:, 0]


def test_divergence_raise_restores_last_finite_weights(backend):
    X, y = _quadratic_problem()
    net = gd.Network([gd.Layer(1, 1, init="zeros")], dtype="float64")
    with pytest.raises(gd.DivergenceError, match=r"epoch \d+: loss .* learning rate 10.*find_lr"
                       ) as info:
        net.fit(X, y, optimizer=gd.SGD(lr=10.0), epochs=1000)
    assert isinstance(info.value, ArithmeticError)
    assert np.isfinite(net.layers[0].weights).all()
    # rolled back to the start of the epoch before the one that blew up
    assert info.value.history.diverged and info.value.epoch == info.value.history.epochs + 1


def test_divergence_stop_returns_finite_weights(backend):
    X, y = _quadratic_problem()
    net = gd.Network([gd.Layer(1, 1, init="zeros")], dtype="float64")
    history = net.fit(X, y, optimizer=gd.SGD(lr=10.0), epochs=1000, on_divergence="stop")
    assert history.diverged and history.stop_reason == "diverged"
    assert np.isfinite(net.layers[0].weights).all() and history.epochs < 1000
    assert np.isfinite(net.loss(X, y))


def test_divergence_backoff_recovers(backend):
    # The loss's Hessian has largest eigenvalue L ~ 11.1, so lr 1.0 > 2/L ~ 0.18 diverges;
    # three halvings bring it to 0.125, under 2/L.
    X, y = _quadratic_problem()
    net = gd.Network([gd.Layer(1, 1, init="zeros")], dtype="float64")
    history = net.fit(X, y, optimizer=gd.SGD(lr=1.0), epochs=600, on_divergence="backoff")
    assert history.diverged and history.backoffs >= 1
    assert history.lr[-1] < 1.0 and history.stop_reason == "epochs"
    assert net.loss(X, y) < 1e-6


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(epochs=0), ValueError, "epochs must be >= 1"),
    (dict(epochs=2.5), TypeError, "epochs must be an integer"),
    (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    (dict(optimizer=gd.SGD(lr=0.1), tol=-1.0), ValueError, "tol must be >= 0"),
    (dict(tol=float("nan")), ValueError, "tol must be finite"),
    (dict(validation_split=1.0), ValueError, "validation_split must be < 1"),
    (dict(on_divergence="ignore"), ValueError, "on_divergence must be one of"),
    (dict(optimizer="newton"), ValueError, "optimizer must be one of"),
    (dict(callbacks=[42]), TypeError, r"callbacks\[0\] must be callable"),
    (dict(max_time=0), ValueError, "max_time must be > 0"),
    (dict(n_iter_no_change=0), ValueError, "n_iter_no_change must be >= 1"),
    (dict(shuffle="yes"), TypeError, "shuffle must be True or False"),
])
def test_fit_argument_errors_leave_network_unchanged(backend, rng, kwargs, error, match):
    X, y = rng.normal(size=(10, 2)), rng.normal(size=10)
    net = gd.Network.from_sizes([2, 3, 1], seed=0)
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(error, match=match):
        net.fit(X, y, **kwargs)
    for p, q in zip(net.parameters(), before):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("make_lr, match", [
    (lambda: 0.0, "lr must be > 0"), (lambda: -1.0, "lr must be > 0"),
    (lambda: float("nan"), "lr must be finite"),
])
def test_bad_learning_rates(make_lr, match):
    with pytest.raises(ValueError, match=match):
        gd.SGD(lr=make_lr())


def test_batch_size_above_sample_count_is_clamped(backend, rng):
    X, y = rng.normal(size=(6, 2)), rng.normal(size=6)
    a = gd.Network.from_sizes([2, 1], dtype="float64", seed=0)
    b = a.copy()
    a.fit(X, y, epochs=2, batch_size=1000, shuffle=False)
    b.fit(X, y, epochs=2, batch_size=None, shuffle=False)
    np.testing.assert_array_equal(a.layers[0].weights, b.layers[0].weights)


def test_schedule_sets_learning_rate_per_epoch(backend, rng):
    X, y = rng.normal(size=(10, 2)), rng.normal(size=10)
    net = gd.Network.from_sizes([2, 1], seed=0)
    history = net.fit(X, y, optimizer=gd.SGD(lr=gd.schedules.Step(0.1, step_size=2, gamma=0.5)),
                      epochs=5)
    np.testing.assert_allclose(history.lr, [0.1, 0.1, 0.05, 0.05, 0.025])


def test_progress_bar(backend, rng, capsys):
    pytest.importorskip("tqdm")
    X, y = rng.normal(size=(10, 2)), rng.normal(size=10)
    gd.Network.from_sizes([2, 1], seed=0).fit(X, y, epochs=3, progress=True)
    assert "3/3" in capsys.readouterr().err


def test_zero_weight_batch_is_skipped(backend, rng):
    # The first batch carries zero total weight: no step is taken for it, so training equals
    # training on the remaining samples alone (the later batches are the same rows).
    X, y = rng.normal(size=(16, 2)), rng.normal(size=16)
    w = np.r_[np.zeros(4), np.ones(12)]
    base = gd.Network.from_sizes([2, 3, 1], dtype="float64", seed=0)
    a, b = base.copy(), base.copy()
    opt_a, opt_b = gd.SGD(lr=0.1, momentum=0.9), gd.SGD(lr=0.1, momentum=0.9)
    ha = a.fit(X, y, optimizer=opt_a, epochs=3, batch_size=4, shuffle=False, sample_weight=w)
    hb = b.fit(X[4:], y[4:], optimizer=opt_b, epochs=3, batch_size=4, shuffle=False)
    np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-12)
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_allclose(la.weights, lb.weights, rtol=1e-12)
    assert opt_a.steps_done == opt_b.steps_done == 9


def test_lr_auto_runs_the_range_test_reproducibly(backend):
    X, y = gd.datasets.two_moons(n_samples=200, noise=0.1, seed=0)
    start = gd.Network.from_sizes([2, 16, 2], output_activation="softmax",
                                  loss="cross_entropy", seed=0)
    runs = []
    for _ in range(2):
        net, opt = start.copy(), gd.Adam(lr="auto")
        history = net.fit(X, y, optimizer=opt, epochs=5, batch_size=32, seed=3)
        runs.append((history, net, opt))
    (h1, n1, o1), (h2, n2, o2) = runs
    expected = gd.find_lr(start, X, y, optimizer=gd.Adam(), batch_size=32, seed=3).suggestion
    assert h1.lr_found == h2.lr_found == o1.lr_found == expected
    assert h1.lr == [expected] * 5 and not o1.lr_is_auto
    assert "the range test chose" in h1.summary()
    for p, q in zip(n1.parameters(), n2.parameters()):
        np.testing.assert_array_equal(p, q)
    again = n1.fit(X, y, optimizer=o1, epochs=1, batch_size=32, seed=3)  # no second test
    assert again.lr == [expected]


@pytest.mark.parametrize("zero_part", ["validation", "training"])
def test_validation_split_with_a_zero_weight_part_fails_before_training(backend, rng, zero_part):
    X, y = rng.normal(size=(20, 2)), rng.normal(size=20)
    w = np.ones(20)
    if zero_part == "validation":
        w[16:] = 0.0
    else:
        w[:16] = 0.0
    net = gd.Network.from_sizes([2, 4, 1], seed=0)
    before = [p.copy() for p in net.parameters()]
    opt = gd.Adam()
    with pytest.raises(ValueError, match=f"sample_weight: the {zero_part} part of "
                                         r"validation_split=0.2 has zero total weight"):
        net.fit(X, y, optimizer=opt, sample_weight=w, validation_split=0.2, epochs=3)
    for p, q in zip(net.parameters(), before):
        np.testing.assert_array_equal(p, q)
    assert opt._bound() is None and opt.steps_done == 0
