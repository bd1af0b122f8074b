"""Lane groups (csrc/gd/train_lanes.cpp): fit_many trains networks of one shape on the same data
as lanes of one pass per batch, and each network still equals its own fit bit for bit.

The lane products repeat the order of the one-network kernels per instruction set (the tiles'
chains, the one-column product's partial sums and fold, the one-row tail's interleaved sums), so
the shapes below reach each of them: one-output layers (the one-column product, with and without
a depth tail), hidden widths that are not a multiple of any vector width, last batches of one
row, and every instruction set this CPU runs (the ``isa`` fixture). ``_core._lane_epochs()``
tells whether the networks really ran as lanes: a comparison that fell back to one network at a
time would pass without testing anything.
"""
import numpy as np
import pytest

import gdcore as gd
from gdcore import _backend

from helpers import compare_fit_many, core_available


@pytest.fixture(autouse=True)
def compiled_networks():
    """Lanes are the compiled engine's: the networks built here use it (also in the suite's
    run with GDCORE_BACKEND=numpy)."""
    if not core_available():
        pytest.skip("the compiled core is not built in this installation")
    with gd.use_backend("cpp"):
        yield


def _lane_epochs():
    return _backend._core._lane_epochs()


def _data(rng, n, n_inputs, n_outputs, target):
    X = rng.normal(size=(n, n_inputs))
    if target == "labels":
        return X, (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    if target == "binary":
        y = (X[:, 0] + 0.5 * X[:, -1] > 0).astype(float)
        return X, y if n_outputs == 1 else np.stack([y, 1 - y], axis=1)
    Y = np.sin(X @ np.linspace(0.5, 1.5, n_inputs * n_outputs).reshape(n_inputs, n_outputs))
    return X, Y[:, 0] if n_outputs == 1 else Y


# (sizes, hidden activation, output activation, loss, target, n, batch size): each reaches
# another order of the one-network kernels.
CASES = {
    # the tiny benchmark network: one output (the one-column product, depth 16)
    "tiny": ([2, 16, 1], "tanh", "sigmoid", "bce", "binary", 100, 32),
    # relu's fused store and mask; a last batch of one row (the one-row tiles and tail)
    "relu-last-row": ([3, 7, 5, 2], "relu", "identity", "mse", "values", 37, 9),
    # softmax with cross_entropy on labels; hidden width 13 (column tails everywhere)
    "softmax": ([5, 13, 3], "sigmoid", "softmax", "cross_entropy", "labels", 41, 10),
    # one output of depth 21: the one-column product's depth tail; every batch one row
    "dot-tail": ([4, 21, 1], "elu", "identity", "mse", "values", 12, 1),
    # the weight gradient of a one-output layer 21 wide: the transposed one-row tail
    "narrow-tail": ([6, 21, 1], "gelu", "identity", "huber", "values", 50, 16),
    # softmax outside cross_entropy: applied per network; two hidden layers
    "softmax-mse": ([4, 9, 6, 3], "leaky_relu", "softmax", "mse", "values", 30, 8),
}


# (networks, threads) for lane_count networks a full group (64 bytes of the dtype): a group of
# half-width lane vectors (at most lane_count / 2 networks), one of full width, and two
# half-width groups on two threads.
GROUPINGS = {"half": (lambda lanes: lanes // 2 - 1, 1), "full": (lambda lanes: lanes - 1, 1),
             "two": (lambda lanes: lanes - 2, 2)}


@pytest.mark.parametrize("engine_factory", ["cpp"], indirect=True)
@pytest.mark.parametrize("grouping", list(GROUPINGS))
@pytest.mark.parametrize("case", list(CASES))
def test_lanes_equal_each_networks_own_fit(engine_factory, isa, dtype, rng, case, grouping):
    sizes, hidden, out, loss, target, n, batch = CASES[case]
    networks, threads = GROUPINGS[grouping]
    count = networks(64 // np.dtype(dtype).itemsize)
    X, y = _data(rng, n, sizes[0], sizes[-1], target)
    rates = np.geomspace(1e-3, 0.1, count)
    before = _lane_epochs()
    previous = gd.get_num_threads()
    gd.set_num_threads(threads)
    try:
        compare_fit_many(
            lambda: [gd.Network.from_sizes(sizes, activation=hidden, output_activation=out,
                                           loss=loss, dtype=dtype, seed=s) for s in range(count)],
            lambda: [gd.SGD(lr=r) for r in rates], X, y, epochs=3, batch_size=batch, seed=1,
            on_divergence="backoff")
    finally:
        gd.set_num_threads(previous)
    assert _lane_epochs() - before >= 3 * count


@pytest.mark.parametrize("engine_factory", ["cpp"], indirect=True)
def test_lanes_with_different_optimizers_regularisers_and_weights(engine_factory, dtype, rng):
    X, y = _data(rng, 45, 3, 1, "binary")
    w = rng.uniform(0.5, 2.0, size=45)
    before = _lane_epochs()
    compare_fit_many(
        lambda: [gd.Network.from_sizes([3, 10, 1], activation="tanh", output_activation="sigmoid",
                                       loss="bce", dtype=dtype, seed=s) for s in range(4)],
        lambda: [gd.SGD(lr=0.1), gd.SGD(lr=0.05, momentum=0.9, nesterov=True), gd.Adam(lr=0.01),
                 gd.RMSprop(lr=0.01)],
        X, y, epochs=4, batch_size=8, seed=5, l2=0.01, label_smoothing=0.1, sample_weight=w)
    assert _lane_epochs() - before == 4 * 4


# SGD groups whose lanes are alike in these cases are updated in one pass over the lane arrays
# (sgd_pass.hpp's lane pass), each lane with its own rates; with an l2 penalty, each lane's
# update is its own call.
SGD_CASES = {
    "momentum": dict(momentum=0.9),
    "nesterov": dict(momentum=0.8, nesterov=True),
    "weight-decay": dict(weight_decay=1e-3),
    "all": dict(momentum=0.5, nesterov=True, weight_decay=1e-2),
}


@pytest.mark.parametrize("engine_factory", ["cpp"], indirect=True)
@pytest.mark.parametrize("l2", [0.0, 0.01])
@pytest.mark.parametrize("sgd", list(SGD_CASES))
def test_sgd_lanes_updated_together_equal_each_networks_own_fit(engine_factory, isa, dtype, rng,
                                                                 sgd, l2):
    X, y = _data(rng, 50, 3, 1, "binary")
    count = 64 // np.dtype(dtype).itemsize - 3
    rates = np.geomspace(1e-3, 0.3, count)
    factors = np.linspace(0.5, 1.0, count)  # each lane its own momentum and decay too
    options = SGD_CASES[sgd]
    before = _lane_epochs()
    compare_fit_many(
        lambda: [gd.Network.from_sizes([3, 10, 1], activation="tanh", output_activation="sigmoid",
                                       loss="bce", dtype=dtype, seed=s) for s in range(count)],
        lambda: [gd.SGD(lr=r, **{k: v * f if isinstance(v, float) else v
                                 for k, v in options.items()})
                 for r, f in zip(rates, factors)],
        X, y, epochs=3, batch_size=8, seed=3, l2=l2)
    assert _lane_epochs() - before == 3 * count


@pytest.mark.parametrize("engine_factory", ["cpp"], indirect=True)
@pytest.mark.parametrize("outputs", [1, 2])
@pytest.mark.parametrize("extras", ["plain", "weights", "smoothing"])
def test_bce_lanes_computed_together_equal_each_networks_own_fit(engine_factory, isa, dtype,
                                                                  rng, outputs, extras):
    """bce without l2: every lane's loss and gradient in one pass (bce_gradient_lanes)."""
    X, y = _data(rng, 43, 3, outputs, "binary")
    count = 64 // np.dtype(dtype).itemsize - 1
    kwargs = {"weights": dict(sample_weight=rng.uniform(0.2, 3.0, size=43)),
              "smoothing": dict(label_smoothing=0.2), "plain": {}}[extras]
    before = _lane_epochs()
    compare_fit_many(
        lambda: [gd.Network.from_sizes([3, 7, outputs], activation="tanh",
                                       output_activation="sigmoid", loss="bce", dtype=dtype,
                                       seed=s) for s in range(count)],
        lambda: [gd.SGD(lr=r, momentum=0.9) for r in np.geomspace(1e-3, 1.0, count)],
        X, y, epochs=3, batch_size=10, seed=4, on_divergence="backoff", **kwargs)
    assert _lane_epochs() - before >= 3 * count


@pytest.mark.parametrize("engine_factory", ["cpp"], indirect=True)
def test_a_diverging_lane_backs_off_while_the_others_go_on(engine_factory, rng):
    X, y = _data(rng, 64, 3, 1, "values")
    y = y * 100.0
    rates = [0.001, 0.01, 5.0, 50.0]
    before = _lane_epochs()
    histories = compare_fit_many(
        lambda: [gd.Network.from_sizes([3, 8, 1], activation="relu", loss="mse", seed=s)
                 for s in range(len(rates))],
        lambda: [gd.SGD(lr=r) for r in rates], X, y, epochs=5, batch_size=16, seed=2,
        on_divergence="backoff")
    assert any(h.backoffs for h in histories) and not histories[0].backoffs
    assert _lane_epochs() - before >= 5 * 2


@pytest.mark.parametrize("engine_factory", ["cpp"], indirect=True)
def test_more_networks_than_lanes_fill_several_groups(engine_factory, dtype, rng):
    X, y = _data(rng, 40, 2, 1, "binary")
    count = 2 * (64 // np.dtype(dtype).itemsize) + 3  # two full groups and a part
    before = _lane_epochs()
    compare_fit_many(
        lambda: [gd.Network.from_sizes([2, 6, 1], activation="tanh", output_activation="sigmoid",
                                       loss="bce", dtype=dtype, seed=s) for s in range(count)],
        lambda: [gd.SGD(lr=0.01 * (1 + i)) for i in range(count)], X, y, epochs=2,
        batch_size=16, seed=0)
    assert _lane_epochs() - before == 2 * count


@pytest.mark.parametrize("engine_factory", ["cpp"], indirect=True)
def test_networks_that_cannot_be_lanes_train_alone_with_the_same_results(engine_factory, rng):
    X, y = _data(rng, 40, 4, 1, "values")
    before = _lane_epochs()
    # Dropout: the masks are drawn per network and step, not per lane.
    compare_fit_many(
        lambda: [gd.Network.from_sizes([4, 8, 1], activation="relu", loss="mse", seed=s,
                                       dropout=0.2) for s in range(3)],
        lambda: [gd.SGD(lr=0.01) for _ in range(3)], X, y, epochs=2, batch_size=8, seed=0)
    # Their own shuffling seeds: different batches.
    compare_fit_many(
        lambda: [gd.Network.from_sizes([4, 8, 1], activation="relu", loss="mse", seed=s)
                 for s in range(3)],
        lambda: [gd.SGD(lr=0.01) for _ in range(3)], X, y, epochs=2, batch_size=8, seed=None)
    # Products too large for the own kernels (OpenBLAS's order cannot be repeated).
    Xw = rng.normal(size=(300, 300))
    compare_fit_many(
        lambda: [gd.Network.from_sizes([300, 300, 1], activation="relu", loss="mse", seed=s)
                 for s in range(2)],
        lambda: [gd.SGD(lr=0.001) for _ in range(2)], Xw, Xw[:, 0], epochs=1, batch_size=300,
        seed=0)
    assert _lane_epochs() == before
