"""gd.Rprop: torch.optim.Rprop's rule (the rule itself is checked step by step against torch in
test_engine_optimizers.py, and the two engines against each other in test_engine_train_epoch.py);
here the public optimizer: its arguments, fit with it, its state."""
import numpy as np
import pytest

import gdcore as gd


def test_defaults_and_hyper_vector():
    opt = gd.Rprop()
    assert opt.lr == 0.01 and opt.etas == (0.5, 1.2) and opt.step_sizes == (1e-6, 50.0)
    assert gd.optimizers.get_optimizer("rprop").name == "rprop"
    hyper = dict(zip(gd.reference.codes.HYPER, opt.hyper(0.02)))
    assert hyper["lr"] == 0.02 and hyper["eta_minus"] == 0.5 and hyper["eta_plus"] == 1.2
    assert hyper["step_size_min"] == 1e-6 and hyper["step_size_max"] == 50.0
    assert repr(opt) == "Rprop(lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-06, 50.0))"


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(etas=(1.5, 1.2)), ValueError, r"0 < etas\[0\] < 1 < etas\[1\]"),
    (dict(etas=(0.5, 0.9)), ValueError, r"0 < etas\[0\] < 1 < etas\[1\]"),
    (dict(etas=(0.0, 1.2)), ValueError, r"etas\[0\] must be > 0"),
    (dict(etas=0.5), TypeError, "etas must be a pair"),
    (dict(step_sizes=(1.0, 0.1)), ValueError, "minimum <= maximum"),
    (dict(step_sizes=(-1.0, 1.0)), ValueError, r"step_sizes\[0\] must be >= 0"),
    (dict(step_sizes=(0.0, float("inf"))), ValueError, r"step_sizes\[1\] must be finite"),
    (dict(lr=0.0), ValueError, "lr must be > 0"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        gd.Rprop(**kwargs)


def test_assignment_is_checked_as_the_constructor():
    opt = gd.Rprop()
    with pytest.raises(ValueError, match=r"etas\[1\] must be > 0"):
        opt.etas = (0.5, -1.0)
    assert opt.etas == (0.5, 1.2)


def test_full_batch_fit_learns_and_the_engines_agree(backend):
    X, y = gd.datasets.two_moons(200, noise=0.1, seed=0)
    net = gd.Network.from_sizes([2, 16, 1], activation="tanh", output_activation="sigmoid",
                                loss="bce", dtype="float64", seed=0)
    history = net.fit(X, y, optimizer=gd.Rprop(lr=0.01), epochs=60, batch_size=None)
    assert history.loss[-1] < 0.5 * history.loss[0]
    with gd.use_backend("numpy"):
        twin = gd.Network.from_sizes([2, 16, 1], activation="tanh",
                                     output_activation="sigmoid", loss="bce", dtype="float64",
                                     seed=0)
        twin_history = twin.fit(X, y, optimizer=gd.Rprop(lr=0.01), epochs=60, batch_size=None)
    np.testing.assert_allclose(history.loss, twin_history.loss, rtol=1e-9)
    for p, q in zip(net.parameters(), twin.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)


def test_state_round_trip_continues_exactly(backend):
    X, y = gd.datasets.two_moons(64, noise=0.1, seed=1)

    def fresh():
        return gd.Network.from_sizes([2, 8, 1], activation="tanh", output_activation="sigmoid",
                                     loss="bce", dtype="float64", seed=3)

    straight, opt = fresh(), gd.Rprop(lr=0.05)
    straight.fit(X, y, optimizer=opt, epochs=10, batch_size=None)

    first, opt1 = fresh(), gd.Rprop(lr=0.05)
    first.fit(X, y, optimizer=opt1, epochs=4, batch_size=None)
    saved = opt1.state_dict()
    second, opt2 = first.copy(), gd.Rprop()
    opt2.load_state_dict(saved)
    second.fit(X, y, optimizer=opt2, epochs=6, batch_size=None)
    for p, q in zip(straight.parameters(), second.parameters()):
        np.testing.assert_array_equal(p, q)


def test_the_range_test_refuses_rprop(backend):
    X, y = gd.datasets.two_moons(64, noise=0.1, seed=1)
    net = gd.Network.from_sizes([2, 8, 1], activation="tanh", output_activation="sigmoid",
                                loss="bce", seed=3)
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(ValueError, match="Rprop adapts its own step sizes"):
        gd.find_lr(net, X, y, optimizer=gd.Rprop())
    with pytest.raises(ValueError, match="Rprop adapts its own step sizes"):
        net.fit(X, y, optimizer=gd.Rprop(lr="auto"), epochs=2)
    for p, q in zip(net.parameters(), before):
        np.testing.assert_array_equal(p, q)
