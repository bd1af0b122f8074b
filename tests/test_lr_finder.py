"""find_lr and check_gradients."""
import numpy as np
import pytest

import gdcore as gd


def test_find_lr_leaves_weights_bit_identical_and_suggests_in_range(backend):
    X, y = gd.datasets.spirals(n_samples=300, seed=0)
    net = gd.Network.from_sizes([2, 32, 3], output_activation="softmax", loss="cross_entropy",
                                seed=0)
    before = [p.copy() for p in net.parameters()]
    result = gd.find_lr(net, X, y, lr_min=1e-5, lr_max=10.0, steps=100)
    for p, q in zip(net.parameters(), before):
        np.testing.assert_array_equal(p, q)
    assert 1e-5 <= result.suggestion <= 10.0
    assert len(result.lrs) == len(result.losses) >= 10
    assert np.all(np.diff(result.lrs) > 0)
    # the rate it suggests trains: the loss falls in a few epochs
    history = net.copy().fit(X, y, optimizer=gd.SGD(lr=result.suggestion), epochs=20,
                             batch_size=32, seed=0)
    assert history.loss[-1] < history.loss[0]


def test_find_lr_stops_when_loss_blows_up(backend):
    X, y = gd.datasets.sine(n_samples=100, seed=0)
    net = gd.Network.from_sizes([1, 16, 1], activation="tanh", seed=0)
    result = gd.find_lr(net, X, y, lr_min=1e-4, lr_max=1e4, steps=200)
    assert len(result.lrs) < 200  # stopped early: the loss exploded past 4x its best


def test_find_lr_argument_errors():
    net = gd.Network.from_sizes([1, 1], seed=0)
    X, y = np.zeros((4, 1)), np.zeros(4)
    with pytest.raises(ValueError, match="lr_max must be > lr_min"):
        gd.find_lr(net, X, y, lr_min=1.0, lr_max=0.1)
    with pytest.raises(ValueError, match="steps must be >= 2"):
        gd.find_lr(net, X, y, steps=1)
    with pytest.raises(ValueError, match="lr_min must be > 0"):
        gd.find_lr(net, X, y, lr_min=0.0)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "elu", "softplus", "gelu", "identity"])
def test_check_gradients_small_for_smooth_activations(backend, dtype, rng, activation):
    net = gd.Network.from_sizes([3, 4, 2], activation=activation, dtype=dtype, seed=0)
    X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    assert gd.check_gradients(net, X, y) < 1e-6


def test_check_gradients_detects_wrong_gradients(backend, rng, monkeypatch):
    net = gd.Network.from_sizes([3, 4, 1], activation="tanh", dtype="float64", seed=0)
    X, y = rng.normal(size=(6, 3)), rng.normal(size=6)
    real = gd.Network.gradients
    monkeypatch.setattr(gd.Network, "gradients",
                        lambda self, *a, **k: [(2 * dW, db) for dW, db in real(self, *a, **k)])
    assert gd.check_gradients(net, X, y) > 0.1
