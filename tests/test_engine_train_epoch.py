"""``train_epoch`` of both engines (``engine_factory``): what one epoch computes, step by step.

- Either engine: an epoch equals its own forward/backward/update done by hand or batch by
  batch; the epoch loss weights each batch's loss measured before its update; a non-finite
  batch stops the epoch before its update; the step counter counts batches; float32 stays
  float32.
- The compiled core against the reference engine (explicit comparison): one step to rtol 1e-9
  (float64) / 1e-4 (float32), ten float64 epochs to 1e-6.
"""
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from gdcore.reference.codes import OPTIMIZERS
from helpers import (DTYPES, OPTIMIZER_CASES, RTOL, assert_close, core_only, gradient_buffers,
                     make_data, make_hyper, make_net, make_pair, make_samples, make_state,
                     reference_step, run_epochs, zeros_like_params)

# ---------------------------------------------------------------------------- either engine


def test_one_step_equals_a_manual_forward_backward_update(engine_factory):
    weights, biases, engine = make_net(engine_factory, [3, 4, 2], ["tanh", "identity"], "mse")
    X, Y, _ = make_samples(5, 3, 2, "real")
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
def test_one_step_equals_gradients_then_optimizer_step(engine_factory, optimizer):
    weights, biases, engine = make_net(engine_factory, [4, 5, 3], ["gelu", "softmax"],
                                       "cross_entropy")
    X, Y, w = make_samples(7, 4, 3, "index")
    kind, hyper = OPTIMIZERS[optimizer], make_hyper(lr=0.05, momentum=0.5, weight_decay=0.1)

    # the manual step on copies: the same engine's gradients, the reference optimizer rule
    mW, mb = [W.copy() for W in weights], [b.copy() for b in biases]
    manual = engine_factory(mW, mb, ["gelu", "softmax"], "cross_entropy")
    dW, db = zeros_like_params(mW, mb)
    loss = manual.gradients(X, Y, w, dW, db)
    mstate, mstep = make_state(mW, mb, kind, hyper), np.zeros(1, dtype=np.int64)
    reference_step(kind, [mW[0], mb[0], mW[1], mb[1]], [dW[0], db[0], dW[1], db[1]],
                   mstate, hyper, mstep)

    state, step = make_state(weights, biases, kind, hyper), np.zeros(1, dtype=np.int64)
    epoch_loss = engine.train_epoch(X, Y, w, np.arange(7), 7, kind, hyper, state, step)
    assert epoch_loss == pytest.approx(loss, rel=1e-15)
    for got, want in zip(weights + biases + state, mW + mb + mstate):
        assert_array_equal(got, want)
    assert step[0] == mstep[0] == 1


@pytest.mark.parametrize("weighted", [False, True], ids=["counts", "sample-weights"])
def test_epoch_loss_with_zero_lr_is_the_loss_of_all_samples(engine_factory, weighted):
    # with lr = 0 nothing moves, so sum_b(loss_b w_b)/sum_b(w_b) over batches of 4, 4, 2
    # must equal the loss of the whole data set; a plain mean of batch losses would not
    weights, biases, engine = make_net(engine_factory, [3, 4, 2], ["tanh", "identity"], "mse")
    X, Y, w = make_samples(10, 3, 2, "real")
    w = w if weighted else None
    order = np.random.default_rng(5).permutation(10)
    epoch_loss = engine.train_epoch(X, Y, w, order, 4, OPTIMIZERS["sgd"], make_hyper(lr=0.0),
                                    [], np.zeros(1, dtype=np.int64))
    assert epoch_loss == pytest.approx(engine.loss(X, Y, w), rel=1e-13)

    batches = [order[0:4], order[4:8], order[8:10]]
    plain_mean = np.mean([engine.loss(X[r], Y[r], None if w is None else w[r]) for r in batches])
    assert epoch_loss != pytest.approx(plain_mean, rel=1e-6)


@pytest.mark.parametrize("weighted", [False, True], ids=["counts", "sample-weights"])
def test_epoch_loss_weights_each_batch_loss_measured_before_its_update(engine_factory, weighted):
    weights, biases, engine = make_net(engine_factory, [3, 4, 2], ["sigmoid", "identity"],
                                       "huber")
    X, Y, w = make_samples(11, 3, 2, "real")
    w = w if weighted else None
    kind, hyper = OPTIMIZERS["adam"], make_hyper(lr=0.05)
    order = np.random.default_rng(6).permutation(11)

    # replay batch by batch on copies: loss first, then a one-batch epoch (the same update)
    rW, rb = [W.copy() for W in weights], [b.copy() for b in biases]
    replay = engine_factory(rW, rb, ["sigmoid", "identity"], "huber")
    rstate, rstep = make_state(rW, rb, kind, hyper), np.zeros(1, dtype=np.int64)
    total, total_weight = 0.0, 0.0
    for start in range(0, 11, 4):  # batches of 4, 4, 3
        rows = order[start:start + 4]
        wb = None if w is None else w[rows]
        loss_b = replay.loss(X[rows], Y[rows], wb)
        weight_b = len(rows) if w is None else float(np.sum(wb))
        total, total_weight = total + loss_b * weight_b, total_weight + weight_b
        replay.train_epoch(X, Y, w, rows, 4, kind, hyper, rstate, rstep)

    state, step = make_state(weights, biases, kind, hyper), np.zeros(1, dtype=np.int64)
    epoch_loss = engine.train_epoch(X, Y, w, order, 4, kind, hyper, state, step)
    assert epoch_loss == pytest.approx(total / total_weight, rel=1e-14)
    for got, want in zip(weights + biases + state, rW + rb + rstate):
        assert_allclose(got, want, rtol=1e-14, atol=1e-16)
    assert step[0] == rstep[0] == 3


@pytest.mark.parametrize("bad, expect", [(1e200, math.inf), (math.nan, None)])
def test_a_non_finite_batch_stops_the_epoch_before_its_update(engine_factory, bad, expect):
    weights, biases, engine = make_net(engine_factory, [3, 4, 2], ["tanh", "identity"], "mse")
    X, Y, _ = make_samples(9, 3, 2, "real")
    X[4, 0] = bad  # row 4 is in the second batch of order 0..8 with batches of 3
    Y[4, 0] = bad  # (1e200)^2 overflows: loss inf;  nan: loss nan
    kind, hyper = OPTIMIZERS["sgd"], make_hyper(lr=0.1, momentum=0.9)

    fW, fb = [W.copy() for W in weights], [b.copy() for b in biases]
    first = engine_factory(fW, fb, ["tanh", "identity"], "mse")  # the first batch only
    fstate, fstep = make_state(fW, fb, kind, hyper), np.zeros(1, dtype=np.int64)
    first.train_epoch(X, Y, None, np.arange(3), 3, kind, hyper, fstate, fstep)

    state, step = make_state(weights, biases, kind, hyper), np.zeros(1, dtype=np.int64)
    epoch_loss = engine.train_epoch(X, Y, None, np.arange(9), 3, kind, hyper, state, step)
    assert not math.isfinite(epoch_loss)
    assert epoch_loss == expect if expect is not None else math.isnan(epoch_loss)
    assert step[0] == 1
    for got, want in zip(weights + biases + state, fW + fb + fstate):
        assert_array_equal(got, want)


def test_step_counts_every_batch_from_where_it_was(engine_factory):
    weights, biases, engine = make_net(engine_factory, [3, 2], ["identity"], "mse")
    X, Y, _ = make_samples(10, 3, 2, "real")
    step = np.array([5], dtype=np.int64)
    engine.train_epoch(X, Y, None, np.arange(10), 3, OPTIMIZERS["sgd"], make_hyper(), [], step)
    assert step[0] == 5 + 4  # batches of 3, 3, 3, 1


def test_order_and_batches_are_honoured_including_a_short_last_batch(engine_factory):
    # order [3, 3, 1] with batch_size 2: batches X[[3, 3]] then X[[1]]; other rows unused
    weights, biases, engine = make_net(engine_factory, [3, 4, 2], ["relu", "identity"], "mse")
    X, Y, w = make_samples(6, 3, 2, "real")
    kind, hyper = OPTIMIZERS["sgd"], make_hyper(lr=0.1, momentum=0.9, nesterov=True)

    mW, mb = [W.copy() for W in weights], [b.copy() for b in biases]
    manual = engine_factory(mW, mb, ["relu", "identity"], "mse")
    mstate, mstep = make_state(mW, mb, kind, hyper), np.zeros(1, dtype=np.int64)
    dW, db = zeros_like_params(mW, mb)
    for rows in ([3, 3], [1]):
        rows = np.array(rows)
        manual.gradients(X[rows], Y[rows], w[rows], dW, db)
        reference_step(kind, [mW[0], mb[0], mW[1], mb[1]], [dW[0], db[0], dW[1], db[1]],
                       mstate, hyper, mstep)

    state, step = make_state(weights, biases, kind, hyper), np.zeros(1, dtype=np.int64)
    engine.train_epoch(X, Y, w, np.array([3, 3, 1]), 2, kind, hyper, state, step)
    for got, want in zip(weights + biases + state, mW + mb + mstate):
        assert_allclose(got, want, rtol=1e-14, atol=1e-16)
    assert step[0] == 2


def test_batch_size_larger_than_the_data_is_one_full_batch(engine_factory):
    weights, biases, engine = make_net(engine_factory, [3, 2], ["identity"], "mse")
    X, Y, _ = make_samples(4, 3, 2, "real")
    step = np.zeros(1, dtype=np.int64)
    loss = engine.loss(X, Y, None)
    assert engine.train_epoch(X, Y, None, np.arange(4), 100, OPTIMIZERS["sgd"], make_hyper(),
                              [], step) == pytest.approx(loss, rel=1e-15)
    assert step[0] == 1


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_float32_engine_stays_float32(engine_factory, optimizer):
    weights, biases, engine = make_net(engine_factory, [3, 4, 3], ["elu", "softmax"],
                                       "cross_entropy", dtype=np.float32)
    X, Y, w = make_samples(9, 3, 3, "index", dtype=np.float32)
    kind, hyper = OPTIMIZERS[optimizer], make_hyper(lr=0.05, momentum=0.9)
    state, step = make_state(weights, biases, kind, hyper), np.zeros(1, dtype=np.int64)
    loss = engine.train_epoch(X, Y, w, np.arange(9), 4, kind, hyper, state, step)
    assert isinstance(loss, float) and math.isfinite(loss)
    assert all(a.dtype == np.float32 for a in weights + biases + state)
    assert engine.forward(X).dtype == np.float32
    assert isinstance(engine.loss(X, Y, w), float)


def test_float32_matches_float64_closely(engine_factory):
    w64, b64, e64 = make_net(engine_factory, [3, 4, 2], ["gelu", "sigmoid"], "bce")
    w32, b32, e32 = make_net(engine_factory, [3, 4, 2], ["gelu", "sigmoid"], "bce",
                             dtype=np.float32)
    X, Y, _ = make_samples(12, 3, 2, "binary")
    kind, hyper = OPTIMIZERS["adam"], make_hyper(lr=0.01)
    for W, b, eng, dt in ((w64, b64, e64, np.float64), (w32, b32, e32, np.float32)):
        state, step = make_state(W, b, kind, hyper), np.zeros(1, dtype=np.int64)
        eng.train_epoch(X.astype(dt), Y.astype(dt), None, np.arange(12), 5, kind, hyper, state,
                        step)
    for a, b in zip(w32 + b32, w64 + b64):
        assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_divergence_stops_before_the_update(engine_factory):
    """A non-finite batch loss is returned and that batch is not applied; the compiled core
    stops at the same step as the reference engine, with the same parameters."""
    dtype = np.float64
    eng, weights, biases, ref, ref_w, ref_b = make_pair(engine_factory, [3, 16, 2],
                                                        ["relu", "identity"], "mse", dtype)
    X, Y, _ = make_data(64, 3, 2, "dense", dtype)
    X *= 100.0
    code, hyper = OPTIMIZER_CASES["sgd"]
    hyper = np.array(hyper)
    hyper[0] = 10.0  # lr: diverges within the epoch
    order = np.arange(64, dtype=np.int64)
    step, ref_step = np.zeros(1, np.int64), np.zeros(1, np.int64)
    loss = eng.train_epoch(X, Y, None, order, 4, code, hyper, [], step)
    ref_loss = ref.train_epoch(X, Y, None, order, 4, code, hyper, [], ref_step)
    assert not np.isfinite(loss) and not np.isfinite(ref_loss)
    assert 0 < step[0] == ref_step[0] < 16
    for a, b in zip(weights + biases, ref_w + ref_b):
        assert np.all(np.isfinite(a))
        assert_close(a, b, 1e-9)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_zero_weight_batches_are_skipped(engine_factory, dtype):
    """A batch whose weights sum to zero takes no step and is left out of the epoch loss
    (the engine against the reference engine)."""
    eng, weights, biases, ref, ref_w, ref_b = make_pair(engine_factory, [3, 5, 2],
                                                        ["relu", "identity"], "mse", dtype)
    X, Y, w = make_data(12, 3, 2, "dense", dtype, weighted=True)
    w[4:8] = 0  # the second batch of 4
    order = np.arange(12, dtype=np.int64)
    got = run_epochs(eng, weights, biases, X, Y, w, [order, order[::-1].copy()], 4, "sgd_momentum")
    want = run_epochs(ref, ref_w, ref_b, X, Y, w, [order, order[::-1].copy()], 4, "sgd_momentum")
    assert got[2][0] == want[2][0] == 4
    assert_close(got[0], want[0], RTOL[dtype])
    for a, b in zip(weights + biases, ref_w + ref_b):
        assert_close(a, b, RTOL[dtype])
    # an epoch that visits only zero-weight rows takes no step and has no loss
    step = np.zeros(1, dtype=np.int64)
    code, hyper = OPTIMIZER_CASES["sgd"]
    loss = eng.train_epoch(X, Y, w, order[4:8], 4, code, np.array(hyper), [], step)
    assert np.isnan(loss) and step[0] == 0


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_fused_cross_entropy_nonfinite_logits_stop_the_epoch(engine_factory, dtype):
    eng, weights, biases, *_ = make_pair(engine_factory, [4, 6, 3], ["relu", "softmax"],
                                         "cross_entropy", dtype)
    X, Y, _ = make_data(8, 4, 3, "labels", dtype)
    X[5, 0] = np.inf  # second batch of 4
    before = [p.copy() for p in weights + biases]
    code, hyper = OPTIMIZER_CASES["sgd"]
    step = np.zeros(1, np.int64)
    loss = eng.train_epoch(X, Y, None, np.arange(8, dtype=np.int64), 4, code, np.array(hyper),
                           [], step)
    assert not np.isfinite(loss) and step[0] == 1
    assert all(np.all(np.isfinite(p)) for p in weights + biases)
    assert any(not np.array_equal(p, q) for p, q in zip(weights + biases, before))


# ------------------------------------------------------------------ compiled core vs reference

@core_only
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss,out,targets", [("mse", "identity", "dense"),
                                              ("bce", "sigmoid", "binary"),
                                              ("cross_entropy", "softmax", "labels"),
                                              ("cross_entropy", "softmax", "probs")])
@pytest.mark.parametrize("opt", list(OPTIMIZER_CASES))
def test_one_step_matches_reference(engine_factory, opt, loss, out, targets, weighted, dtype):
    eng, weights, biases, ref, ref_w, ref_b = make_pair(engine_factory, [4, 8, 3], ["gelu", out],
                                                        loss, dtype)
    X, Y, w = make_data(10, 4, 3, targets, dtype, weighted=weighted)
    order = np.arange(10, dtype=np.int64)
    got = run_epochs(eng, weights, biases, X, Y, w, [order], 10, opt)
    want = run_epochs(ref, ref_w, ref_b, X, Y, w, [order], 10, opt)
    rtol = RTOL[dtype]
    assert_close(got[0], want[0], rtol, "epoch loss")
    assert got[2][0] == want[2][0] == 1
    for i, (a, b) in enumerate(zip(weights + biases, ref_w + ref_b)):
        assert_close(a, b, rtol, f"parameter {i}")
    for i, (a, b) in enumerate(zip(got[1], want[1])):
        assert_close(a, b, rtol, f"state[{i}]")


ORDERS = {
    "sequential": lambda rng, n: np.arange(n, dtype=np.int64),   # read in place, no gather
    "shuffled": lambda rng, n: rng.permutation(n).astype(np.int64),
    "subset_with_repeats": lambda rng, n: rng.integers(0, n, n // 2 + 3).astype(np.int64),
}


@core_only
@pytest.mark.parametrize("order_kind", list(ORDERS))
@pytest.mark.parametrize("opt", list(OPTIMIZER_CASES))
def test_ten_epochs_float64_match_reference(engine_factory, opt, order_kind):
    dtype = np.float64
    eng, weights, biases, ref, ref_w, ref_b = make_pair(engine_factory, [5, 12, 6, 3],
                                                        ["tanh", "relu", "softmax"],
                                                        "cross_entropy", dtype)
    X, Y, w = make_data(50, 5, 3, "labels", dtype, weighted=True)
    rng = np.random.default_rng(7)
    orders = [ORDERS[order_kind](rng, 50) for _ in range(10)]
    got = run_epochs(eng, weights, biases, X, Y, w, orders, 8, opt)  # last batch short
    want = run_epochs(ref, ref_w, ref_b, X, Y, w, orders, 8, opt)
    assert_close(got[0], want[0], 1e-6, "epoch losses")
    assert got[2][0] == want[2][0] == sum(-(-len(o) // 8) for o in orders)
    for i, (a, b) in enumerate(zip(weights + biases, ref_w + ref_b)):
        assert_close(a, b, 1e-6, f"parameter {i}")
    for i, (a, b) in enumerate(zip(got[1], want[1])):
        assert_close(a, b, 1e-6, f"state[{i}]")


@core_only
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_ten_epochs_mse_sample_weight(engine_factory, dtype):
    eng, weights, biases, ref, ref_w, ref_b = make_pair(engine_factory, [3, 10, 2],
                                                        ["elu", "identity"], "mse", dtype)
    X, Y, w = make_data(40, 3, 2, "dense", dtype, weighted=True)
    rng = np.random.default_rng(3)
    orders = [rng.permutation(40) for _ in range(10)]
    got = run_epochs(eng, weights, biases, X, Y, w, orders, 7, "adam")
    want = run_epochs(ref, ref_w, ref_b, X, Y, w, orders, 7, "adam")
    rtol = 1e-6 if dtype == np.float64 else 1e-3
    assert_close(got[0], want[0], rtol)
    for a, b in zip(weights + biases, ref_w + ref_b):
        assert_close(a, b, rtol)


# cross_entropy's training path skips the output softmax in the forward pass and computes the
# softmax, the loss (log-sum-exp) and dL/dZ in one pass over the exponentials; the 64-128-10
# shape also takes the narrow (k < vector) products: dW1 through a transposed scratch block.
@core_only
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("targets", ["labels", "probs"])
def test_fused_cross_entropy_step_and_gradients_match_reference(engine_factory, targets,
                                                                weighted, dtype):
    sizes = [64, 128, 10]
    eng, weights, biases, ref, ref_w, ref_b = make_pair(engine_factory, sizes,
                                                        ["relu", "softmax"], "cross_entropy",
                                                        dtype)
    X, Y, w = make_data(32, 64, 10, targets, dtype, weighted=weighted)
    X *= 3.0  # spread the logits: some exponentials far below the row maximum
    rtol = RTOL[dtype]
    dW, db = gradient_buffers(weights, biases)
    rW, rb = gradient_buffers(ref_w, ref_b)
    assert_close(eng.gradients(X, Y, w, dW, db), ref.gradients(X, Y, w, rW, rb), rtol, "loss")
    for i, (a, b) in enumerate(zip(dW + db, rW + rb)):
        assert_close(a, b, rtol, f"gradient {i}")
    # forward and loss after the fused pass still apply the softmax
    probs = eng.forward(X)
    assert_close(probs, ref.forward(X), rtol, "forward")
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=10 * rtol)
    assert_close(eng.loss(X, Y, w), ref.loss(X, Y, w), rtol, "loss()")
    # one step of the whole batch, then three epochs of batches of 10 (the last one short)
    order = np.arange(32, dtype=np.int64)
    got = run_epochs(eng, weights, biases, X, Y, w, [order], 32, "sgd_momentum")
    want = run_epochs(ref, ref_w, ref_b, X, Y, w, [order], 32, "sgd_momentum")
    assert_close(got[0], want[0], rtol, "epoch loss")
    for i, (a, b) in enumerate(zip(weights + biases, ref_w + ref_b)):
        assert_close(a, b, rtol, f"parameter {i}")
    rng = np.random.default_rng(5)
    orders = [rng.permutation(32).astype(np.int64) for _ in range(3)]
    got = run_epochs(eng, weights, biases, X, Y, w, orders, 10, "sgd_momentum")
    want = run_epochs(ref, ref_w, ref_b, X, Y, w, orders, 10, "sgd_momentum")
    rtol = 1e-6 if dtype == np.float64 else 1e-3
    assert_close(got[0], want[0], rtol, "epoch losses")
    for i, (a, b) in enumerate(zip(weights + biases, ref_w + ref_b)):
        assert_close(a, b, rtol, f"parameter {i} after 3 epochs")
