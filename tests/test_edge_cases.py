"""Edge cases the public calls accept on both backends: one sample, one feature, a batch size
above the sample count (clamped to one full batch)."""
import numpy as np

import gdcore as gd
from helpers import assert_same_params


def test_one_sample_and_one_feature_work_everywhere(backend):
    net = gd.Network.from_sizes([1, 2, 1], activation="tanh", dtype="float64", seed=0)
    X, y = np.array([[0.5]]), np.array([1.0])
    assert net.forward(X).shape == (1, 1)
    assert net.forward([0.5]).shape == (1, 1)
    assert np.isfinite(net.loss(X, y))
    history = net.fit(X, y, epochs=2, batch_size=1)
    assert history.epochs == 2
    assert gd.find_lr(net, X, y, steps=3).lrs.size >= 1
    assert gd.check_gradients(net, X, y) < 1e-5


# ----------------------------------------------------------------- batch size clamping

def test_batch_size_above_the_sample_count_is_one_full_batch(backend, rng):
    """Documented in fit's docstring: a batch size above the training samples is clamped."""
    assert "clamped" in gd.Network.fit.__doc__ + gd.training.fit.__doc__
    X, y = rng.normal(size=(7, 2)), rng.normal(size=7)
    base = gd.Network.from_sizes([2, 3, 1], dtype="float64", seed=0)
    a, b = base.copy(), base.copy()
    opt_a, opt_b = gd.SGD(lr=0.1), gd.SGD(lr=0.1)
    ha = a.fit(X, y, optimizer=opt_a, epochs=3, batch_size=10**9, shuffle=False)
    hb = b.fit(X, y, optimizer=opt_b, epochs=3, batch_size=None, shuffle=False)
    assert opt_a.steps_done == opt_b.steps_done == 3  # one step per epoch
    assert ha.loss == hb.loss
    assert_same_params(a, b)


def test_batch_size_is_clamped_to_the_training_part_of_a_split(backend, rng):
    X, y = rng.normal(size=(10, 2)), rng.normal(size=10)
    base = gd.Network.from_sizes([2, 1], dtype="float64", seed=0)
    a, b = base.copy(), base.copy()
    opt_a, opt_b = gd.SGD(lr=0.1), gd.SGD(lr=0.1)
    a.fit(X, y, optimizer=opt_a, epochs=2, batch_size=9, validation_split=0.3, shuffle=False)
    b.fit(X[:7], y[:7], optimizer=opt_b, epochs=2, batch_size=7, shuffle=False)
    assert opt_a.steps_done == opt_b.steps_done == 2
    assert_same_params(a, b)


def test_find_lr_batch_size_above_sample_count(backend, rng):
    X, y = rng.normal(size=(5, 2)), rng.normal(size=5)
    net = gd.Network.from_sizes([2, 3, 1], dtype="float64", seed=0)
    big = gd.find_lr(net, X, y, steps=10, batch_size=1000)
    full = gd.find_lr(net, X, y, steps=10, batch_size=5)
    np.testing.assert_array_equal(big.losses, full.losses)
