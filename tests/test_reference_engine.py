"""The reference engine: whole-network gradients, the epoch loop, and buffer ownership."""
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from gdcore.reference.codes import ACTIVATIONS, LOSSES, OPTIMIZERS
from gdcore.reference.dense import dense_backward, dense_forward
from gdcore.reference.engine import Engine
from gdcore.reference.optimizers import n_slots, optimizer_step


def make_net(sizes, acts, loss, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(scale=1.0 / math.sqrt(n_in), size=(n_in, n_out)).astype(dtype)
               for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(scale=0.2, size=n_out).astype(dtype) for n_out in sizes[1:]]
    return weights, biases, Engine(weights, biases, [ACTIVATIONS[a] for a in acts], LOSSES[loss])


def make_data(n, n_in, n_out, target, dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in)).astype(dtype)
    if target == "real":
        Y = rng.normal(scale=2.0, size=(n, n_out)).astype(dtype)
    elif target == "binary":
        Y = rng.integers(0, 2, size=(n, n_out)).astype(dtype)
    elif target == "index":
        Y = rng.integers(0, n_out, size=n)
    else:
        Y = rng.dirichlet(np.ones(n_out), size=n).astype(dtype)
    w = rng.uniform(0.2, 3.0, size=n).astype(dtype)
    return X, Y, w


def zeros_like_params(weights, biases):
    return [np.zeros_like(W) for W in weights], [np.zeros_like(b) for b in biases]


def make_state(kind, hyper, weights, biases):
    params = [p for W, b in zip(weights, biases) for p in (W, b)]
    return [np.zeros_like(p) for p in params for _ in range(n_slots(kind, hyper))]


def make_hyper(lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, beta1=0.9, beta2=0.999,
               eps=1e-8, alpha=0.99):
    return np.array([lr, momentum, float(nesterov), weight_decay, beta1, beta2, eps, alpha])


def central_differences(engine, params, X, Y, w, eps=1e-6):
    """d loss / d p for every entry of every parameter, perturbing the caller's arrays in place
    (the engine sees the change because it keeps views)."""
    numeric = []
    for P in params:
        G = np.zeros_like(P)
        for idx in np.ndindex(P.shape):
            saved = P[idx]
            P[idx] = saved + eps
            lp = engine.loss(X, Y, w)
            P[idx] = saved - eps
            lm = engine.loss(X, Y, w)
            P[idx] = saved
            G[idx] = (lp - lm) / (2 * eps)
        numeric.append(G)
    return numeric


def check_gradients(sizes, acts, loss, target, n, weighted, seed=0):
    weights, biases, engine = make_net(sizes, acts, loss, seed=seed)
    X, Y, w = make_data(n, sizes[0], sizes[-1], target, seed=seed + 1)
    w = w if weighted else None
    dW, db = zeros_like_params(weights, biases)
    value = engine.gradients(X, Y, w, dW, db)
    assert value == pytest.approx(engine.loss(X, Y, w), rel=1e-15)

    numeric = central_differences(engine, weights + biases, X, Y, w)
    analytic = dW + db
    assert max(np.max(np.abs(g)) for g in numeric) > 1e-3  # guard: not trivially zero
    for a, g in zip(analytic, numeric):
        assert_allclose(a, g, rtol=1e-5, atol=1e-8)


NETWORKS = [  # (sizes, activations, loss, target kind)
    ([3, 5, 2], ["tanh", "identity"], "mse", "real"),
    ([3, 4, 2], ["relu", "identity"], "mae", "real"),
    ([3, 4, 2], ["sigmoid", "identity"], "huber", "real"),
    ([4, 3, 3], ["elu", "sigmoid"], "bce", "binary"),
    ([4, 5, 3], ["gelu", "softmax"], "cross_entropy", "index"),
    ([4, 5, 3], ["softplus", "softmax"], "cross_entropy", "probability"),
    ([3, 4, 4, 3], ["leaky_relu", "tanh", "softmax"], "mse", "probability"),
    ([5, 1], ["sigmoid"], "bce", "binary"),
]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("sizes, acts, loss, target", NETWORKS,
                         ids=[f"{'-'.join(a)}-{l}-{t}" for _, a, l, t in NETWORKS])
def test_gradients_match_central_differences(sizes, acts, loss, target, weighted):
    check_gradients(sizes, acts, loss, target, n=6, weighted=weighted)


EDGE_SHAPES = [  # (sizes, n): one sample, one feature, wide (n_in > n), tall
    ([3, 4, 2], 1), ([1, 3, 2], 5), ([20, 3, 2], 3), ([2, 3, 2], 200),
]


@pytest.mark.parametrize("sizes, n", EDGE_SHAPES, ids=["one-sample", "one-feature", "wide", "tall"])
@pytest.mark.parametrize("acts, loss, target", [
    (["tanh", "identity"], "mse", "real"), (["relu", "softmax"], "cross_entropy", "index"),
])
def test_gradients_on_edge_shapes(sizes, n, acts, loss, target):
    check_gradients(sizes, acts, loss, target, n=n, weighted=True, seed=3)


def test_dense_backward_writes_into_given_buffers():
    rng = np.random.default_rng(0)
    W, b, X = rng.normal(size=(3, 2)), rng.normal(size=2), rng.normal(size=(4, 3))
    Z, A = dense_forward(W, b, ACTIVATIONS["identity"], X)
    assert_allclose(Z, X @ W + b)
    dW, db = np.empty((3, 2)), np.empty(2)
    gW, gb, dX = dense_backward(W, X, np.ones((4, 2)), False, dW, db)
    assert gW is dW and gb is db and dX is None
    assert_allclose(dW, X.T @ np.ones((4, 2)))
    assert_allclose(db, [4.0, 4.0])


# ---------------------------------------------------------------------------- train_epoch

def test_one_step_equals_a_manual_forward_backward_update():
    weights, biases, engine = make_net([3, 4, 2], ["tanh", "identity"], "mse")
    X, Y, _ = make_data(5, 3, 2, "real")
    W0, b0, W1, b1 = (a.copy() for a in (weights[0], biases[0], weights[1], biases[1]))
    lr = 0.1

    # forward
    A1 = np.tanh(X @ W0 + b0)
    A2 = A1 @ W1 + b1
    loss = np.mean((A2 - Y) ** 2)
    # loss gradient: d/dA2 of mean over n*k entries
    dZ2 = 2 * (A2 - Y) / A2.size
    # backward
    dW1, db1 = A1.T @ dZ2, dZ2.sum(axis=0)
    dZ1 = (dZ2 @ W1.T) * (1 - A1 ** 2)
    dW0, db0 = X.T @ dZ1, dZ1.sum(axis=0)
    # update
    expected = [W0 - lr * dW0, b0 - lr * db0, W1 - lr * dW1, b1 - lr * db1]

    step = np.zeros(1, dtype=np.int64)
    epoch_loss = engine.train_epoch(X, Y, None, np.arange(5), 5, OPTIMIZERS["sgd"],
                                    make_hyper(lr=lr), [], step)
    assert epoch_loss == pytest.approx(loss, rel=1e-14)
    for got, want in zip([weights[0], biases[0], weights[1], biases[1]], expected):
        assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    assert step[0] == 1


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_one_step_equals_gradients_then_optimizer_step(optimizer):
    weights, biases, engine = make_net([4, 5, 3], ["gelu", "softmax"], "cross_entropy")
    X, Y, w = make_data(7, 4, 3, "index")
    kind, hyper = OPTIMIZERS[optimizer], make_hyper(lr=0.05, momentum=0.5, weight_decay=0.1)

    # the manual step on copies
    mW, mb = [W.copy() for W in weights], [b.copy() for b in biases]
    manual = Engine(mW, mb, engine.activations, engine.loss_code)
    dW, db = zeros_like_params(mW, mb)
    loss = manual.gradients(X, Y, w, dW, db)
    mstate, mstep = make_state(kind, hyper, mW, mb), np.zeros(1, dtype=np.int64)
    optimizer_step(kind, [mW[0], mb[0], mW[1], mb[1]], [dW[0], db[0], dW[1], db[1]],
                   mstate, hyper, mstep)

    state, step = make_state(kind, hyper, weights, biases), np.zeros(1, dtype=np.int64)
    epoch_loss = engine.train_epoch(X, Y, w, np.arange(7), 7, kind, hyper, state, step)
    assert epoch_loss == pytest.approx(loss, rel=1e-15)
    for got, want in zip(weights + biases + state, mW + mb + mstate):
        assert_array_equal(got, want)
    assert step[0] == mstep[0] == 1


@pytest.mark.parametrize("weighted", [False, True], ids=["counts", "sample-weights"])
def test_epoch_loss_with_zero_lr_is_the_loss_of_all_samples(weighted):
    # with lr = 0 nothing moves, so sum_b(loss_b w_b)/sum_b(w_b) over batches of 4, 4, 2
    # must equal the loss of the whole data set; a plain mean of batch losses would not
    weights, biases, engine = make_net([3, 4, 2], ["tanh", "identity"], "mse")
    X, Y, w = make_data(10, 3, 2, "real")
    w = w if weighted else None
    order = np.random.default_rng(5).permutation(10)
    epoch_loss = engine.train_epoch(X, Y, w, order, 4, OPTIMIZERS["sgd"], make_hyper(lr=0.0),
                                    [], np.zeros(1, dtype=np.int64))
    assert epoch_loss == pytest.approx(engine.loss(X, Y, w), rel=1e-13)

    batches = [order[0:4], order[4:8], order[8:10]]
    plain_mean = np.mean([engine.loss(X[r], Y[r], None if w is None else w[r]) for r in batches])
    assert epoch_loss != pytest.approx(plain_mean, rel=1e-6)


@pytest.mark.parametrize("weighted", [False, True], ids=["counts", "sample-weights"])
def test_epoch_loss_weights_each_batch_loss_measured_before_its_update(weighted):
    weights, biases, engine = make_net([3, 4, 2], ["sigmoid", "identity"], "huber")
    X, Y, w = make_data(11, 3, 2, "real")
    w = w if weighted else None
    kind, hyper = OPTIMIZERS["adam"], make_hyper(lr=0.05)
    order = np.random.default_rng(6).permutation(11)

    # replay batch by batch on copies: loss first, then a one-batch epoch (the same update)
    rW, rb = [W.copy() for W in weights], [b.copy() for b in biases]
    replay = Engine(rW, rb, engine.activations, engine.loss_code)
    rstate, rstep = make_state(kind, hyper, rW, rb), np.zeros(1, dtype=np.int64)
    total, total_weight = 0.0, 0.0
    for start in range(0, 11, 4):  # batches of 4, 4, 3
        rows = order[start:start + 4]
        wb = None if w is None else w[rows]
        loss_b = replay.loss(X[rows], Y[rows], wb)
        weight_b = len(rows) if w is None else float(np.sum(wb))
        total, total_weight = total + loss_b * weight_b, total_weight + weight_b
        replay.train_epoch(X, Y, w, rows, 4, kind, hyper, rstate, rstep)

    state, step = make_state(kind, hyper, weights, biases), np.zeros(1, dtype=np.int64)
    epoch_loss = engine.train_epoch(X, Y, w, order, 4, kind, hyper, state, step)
    assert epoch_loss == pytest.approx(total / total_weight, rel=1e-14)
    for got, want in zip(weights + biases + state, rW + rb + rstate):
        assert_allclose(got, want, rtol=1e-14, atol=1e-16)
    assert step[0] == rstep[0] == 3


@pytest.mark.parametrize("bad, expect", [(1e200, math.inf), (math.nan, None)])
def test_a_non_finite_batch_stops_the_epoch_before_its_update(bad, expect):
    weights, biases, engine = make_net([3, 4, 2], ["tanh", "identity"], "mse")
    X, Y, _ = make_data(9, 3, 2, "real")
    X[4, 0] = bad  # row 4 is in the second batch of order 0..8 with batches of 3
    Y[4, 0] = bad  # (1e200)^2 overflows: loss inf;  nan: loss nan
    kind, hyper = OPTIMIZERS["sgd"], make_hyper(lr=0.1, momentum=0.9)

    fW, fb = [W.copy() for W in weights], [b.copy() for b in biases]
    first = Engine(fW, fb, engine.activations, engine.loss_code)  # the first batch only
    fstate, fstep = make_state(kind, hyper, fW, fb), np.zeros(1, dtype=np.int64)
    first.train_epoch(X, Y, None, np.arange(3), 3, kind, hyper, fstate, fstep)

    state, step = make_state(kind, hyper, weights, biases), np.zeros(1, dtype=np.int64)
    epoch_loss = engine.train_epoch(X, Y, None, np.arange(9), 3, kind, hyper, state, step)
    assert not math.isfinite(epoch_loss)
    assert epoch_loss == expect if expect is not None else math.isnan(epoch_loss)
    assert step[0] == 1
    for got, want in zip(weights + biases + state, fW + fb + fstate):
        assert_array_equal(got, want)


def test_step_counts_every_batch_from_where_it_was():
    weights, biases, engine = make_net([3, 2], ["identity"], "mse")
    X, Y, _ = make_data(10, 3, 2, "real")
    step = np.array([5], dtype=np.int64)
    engine.train_epoch(X, Y, None, np.arange(10), 3, OPTIMIZERS["sgd"], make_hyper(), [], step)
    assert step[0] == 5 + 4  # batches of 3, 3, 3, 1


def test_order_and_batches_are_honoured_including_a_short_last_batch():
    # order [3, 3, 1] with batch_size 2: batches X[[3, 3]] then X[[1]]; other rows unused
    weights, biases, engine = make_net([3, 4, 2], ["relu", "identity"], "mse")
    X, Y, w = make_data(6, 3, 2, "real")
    kind, hyper = OPTIMIZERS["sgd"], make_hyper(lr=0.1, momentum=0.9, nesterov=True)

    mW, mb = [W.copy() for W in weights], [b.copy() for b in biases]
    manual = Engine(mW, mb, engine.activations, engine.loss_code)
    mstate, mstep = make_state(kind, hyper, mW, mb), np.zeros(1, dtype=np.int64)
    dW, db = zeros_like_params(mW, mb)
    for rows in ([3, 3], [1]):
        rows = np.array(rows)
        manual.gradients(X[rows], Y[rows], w[rows], dW, db)
        optimizer_step(kind, [mW[0], mb[0], mW[1], mb[1]], [dW[0], db[0], dW[1], db[1]],
                       mstate, hyper, mstep)

    state, step = make_state(kind, hyper, weights, biases), np.zeros(1, dtype=np.int64)
    engine.train_epoch(X, Y, w, np.array([3, 3, 1]), 2, kind, hyper, state, step)
    for got, want in zip(weights + biases + state, mW + mb + mstate):
        assert_allclose(got, want, rtol=1e-14, atol=1e-16)
    assert step[0] == 2


def test_batch_size_larger_than_the_data_is_one_full_batch():
    weights, biases, engine = make_net([3, 2], ["identity"], "mse")
    X, Y, _ = make_data(4, 3, 2, "real")
    step = np.zeros(1, dtype=np.int64)
    loss = engine.loss(X, Y)
    assert engine.train_epoch(X, Y, None, np.arange(4), 100, OPTIMIZERS["sgd"], make_hyper(),
                              [], step) == pytest.approx(loss, rel=1e-15)
    assert step[0] == 1


# ---------------------------------------------------------------------------- ownership

def test_the_engine_never_copies_or_rebinds_the_callers_arrays():
    weights, biases, engine = make_net([3, 4, 2], ["tanh", "identity"], "mse")
    X, Y, _ = make_data(8, 3, 2, "real")
    kind, hyper = OPTIMIZERS["adam"], make_hyper(lr=0.1)
    state, step = make_state(kind, hyper, weights, biases), np.zeros(1, dtype=np.int64)
    before = [a.copy() for a in weights + biases + state]
    originals = list(weights + biases + state)

    for i in range(2):
        assert engine.weights[i] is weights[i] and engine.biases[i] is biases[i]
    engine.train_epoch(X, Y, None, np.arange(8), 3, kind, hyper, state, step)

    for i in range(2):  # still the same objects, and they changed in place
        assert engine.weights[i] is weights[i] and engine.biases[i] is biases[i]
    for a, original, old in zip(weights + biases + state, originals, before):
        assert a is original
        assert not np.array_equal(a, old)
    assert step[0] == 3

    # an in-place change by the caller is seen by the engine: views, not copies
    out = engine.forward(X)
    weights[1][...] = 0.0
    biases[1][...] = 7.0
    assert_allclose(engine.forward(X), np.full_like(out, 7.0))
    assert not np.shares_memory(engine.forward(X), weights[1])  # the output is new memory

    dW, db = zeros_like_params(weights, biases)
    ids = [id(a) for a in dW + db]
    engine.gradients(X, Y, None, dW, db)
    assert [id(a) for a in dW + db] == ids
    assert np.any(dW[1] != 0)  # filled in place


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_float32_engine_stays_float32(optimizer):
    weights, biases, engine = make_net([3, 4, 3], ["elu", "softmax"], "cross_entropy",
                                       dtype=np.float32)
    X, Y, w = make_data(9, 3, 3, "index", dtype=np.float32)
    kind, hyper = OPTIMIZERS[optimizer], make_hyper(lr=0.05, momentum=0.9)
    state, step = make_state(kind, hyper, weights, biases), np.zeros(1, dtype=np.int64)
    loss = engine.train_epoch(X, Y, w, np.arange(9), 4, kind, hyper, state, step)
    assert isinstance(loss, float) and math.isfinite(loss)
    assert all(a.dtype == np.float32 for a in weights + biases + state)
    assert engine.forward(X).dtype == np.float32
    assert isinstance(engine.loss(X, Y, w), float)


def test_float32_matches_float64_closely():
    w64, b64, e64 = make_net([3, 4, 2], ["gelu", "sigmoid"], "bce")
    w32, b32, e32 = make_net([3, 4, 2], ["gelu", "sigmoid"], "bce", dtype=np.float32)
    X, Y, _ = make_data(12, 3, 2, "binary")
    kind, hyper = OPTIMIZERS["adam"], make_hyper(lr=0.01)
    for W, b, eng, dt in ((w64, b64, e64, np.float64), (w32, b32, e32, np.float32)):
        state, step = make_state(kind, hyper, W, b), np.zeros(1, dtype=np.int64)
        eng.train_epoch(X.astype(dt), Y.astype(dt), None, np.arange(12), 5, kind, hyper, state,
                        step)
    for a, b in zip(w32 + b32, w64 + b64):
        assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- bad input

def test_construction_errors():
    W = [np.zeros((3, 4)), np.zeros((4, 2))]
    b = [np.zeros(4), np.zeros(2)]
    mse, tanh, ident = LOSSES["mse"], ACTIVATIONS["tanh"], ACTIVATIONS["identity"]
    with pytest.raises(ValueError, match="equal length"):
        Engine(W, b[:1], [tanh, ident], mse)
    with pytest.raises(TypeError, match="float32 or float64"):
        Engine([w.astype(np.int64) for w in W], b, [tanh, ident], mse)
    with pytest.raises(TypeError, match=r"biases\[1\]"):
        Engine(W, [b[0], b[1].astype(np.float32)], [tanh, ident], mse)
    with pytest.raises(ValueError, match=r"weights\[1\]"):
        Engine([W[0], np.zeros((5, 2))], b, [tanh, ident], mse)
    with pytest.raises(ValueError, match=r"biases\[0\]"):
        Engine(W, [np.zeros(3), b[1]], [tanh, ident], mse)
    with pytest.raises(ValueError, match="C-contiguous"):
        Engine([np.zeros((4, 3)).T, W[1]], b, [tanh, ident], mse)
    with pytest.raises(ValueError, match="activation code"):
        Engine(W, b, [tanh, 42], mse)
    with pytest.raises(ValueError, match="loss code"):
        Engine(W, b, [tanh, ident], 42)
    with pytest.raises(ValueError, match="sigmoid"):
        Engine(W, b, [tanh, ident], LOSSES["bce"])
    with pytest.raises(ValueError, match="softmax"):
        Engine(W, b, [tanh, ACTIVATIONS["sigmoid"]], LOSSES["cross_entropy"])


def test_call_errors():
    weights, biases, engine = make_net([3, 4, 2], ["tanh", "softmax"], "cross_entropy")
    X, Y, w = make_data(5, 3, 2, "index")
    sgd, hyper, step = OPTIMIZERS["sgd"], make_hyper(), np.zeros(1, dtype=np.int64)
    with pytest.raises(TypeError, match="X"):
        engine.forward(X.astype(np.float32))
    with pytest.raises(ValueError, match="X"):
        engine.forward(X[:, :2])
    with pytest.raises(ValueError, match="Y"):
        engine.loss(X, Y[:4], None)
    with pytest.raises(ValueError, match="class indices"):
        engine.loss(X, Y + 2, None)
    with pytest.raises(TypeError, match="integers"):
        engine.loss(X, Y.astype(np.float64), None)
    with pytest.raises(ValueError, match="sample_weight"):
        engine.loss(X, Y, w[:3])
    with pytest.raises(ValueError, match=r"dW\[0\]"):
        engine.gradients(X, Y, None, [np.zeros((4, 3)), np.zeros((4, 2))],
                         [np.zeros(4), np.zeros(2)])
    with pytest.raises(ValueError, match="order"):
        engine.train_epoch(X, Y, None, np.array([0, 5]), 2, sgd, hyper, [], step)
    with pytest.raises(TypeError, match="order"):
        engine.train_epoch(X, Y, None, np.array([0.0, 1.0]), 2, sgd, hyper, [], step)
    with pytest.raises(ValueError, match="batch_size"):
        engine.train_epoch(X, Y, None, np.arange(5), 0, sgd, hyper, [], step)
    with pytest.raises(ValueError, match="hyper"):
        engine.train_epoch(X, Y, None, np.arange(5), 2, sgd, hyper[:7], [], step)
    with pytest.raises(ValueError, match="state"):
        engine.train_epoch(X, Y, None, np.arange(5), 2, sgd, make_hyper(momentum=0.9), [], step)
    with pytest.raises(TypeError, match="step"):
        engine.train_epoch(X, Y, None, np.arange(5), 2, sgd, hyper, [], np.zeros(1))
    with pytest.raises(ValueError, match="optimizer code"):
        engine.train_epoch(X, Y, None, np.arange(5), 2, 9, hyper, [], step)
    assert step[0] == 0  # nothing ran
