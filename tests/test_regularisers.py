"""The regularisers: l2 (scikit-learn's alpha), label smoothing (torch's formula), per-layer
dropout (counter-based masks, the same on both engines) and the squared_error loss.

- Engine level (``engine_factory``: both engines): gradients equal central differences of the
  engine's own objective (float64), for each regulariser; values against torch and
  scikit-learn; the compiled core equals the reference (masks bit for bit, training to 1e-12
  in float64, 1e-5 in float32).
- Public level (``backend``): dropout only in training, rate 0 is no dropout bit for bit,
  saving and copying keep the rates, bad values are refused with nothing changed.
"""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import gdcore as gd
from gdcore.reference.codes import ACTIVATIONS, LOSSES, OPTIMIZERS
from gdcore.reference.dropout import dropout_mask, keep_threshold
from gdcore.reference.random import mix64, random_bits, stream_key
from helpers import (DTYPES, central_differences, core_available, core_only, make_data,
                     make_hyper, make_net, make_pair, make_samples, make_state,
                     zeros_like_params)

# ---------------------------------------------------------------------------- helpers


def rates_for(weights, rate):
    """float64 dropout rates: ``rate`` on every hidden layer, 0 on the output layer."""
    return np.array([rate] * (len(weights) - 1) + [0.0])


def fd_check(engine, weights, biases, X, Y, w, **keywords):
    """The engine's gradient of its objective with ``keywords`` equals central differences of
    its own loss with the same keywords (float64), and is not trivially zero."""
    dW, db = zeros_like_params(weights, biases)
    value = engine.gradients(X, Y, w, dW, db, **keywords)
    assert value == pytest.approx(engine.loss(X, Y, w, **keywords), rel=1e-14)
    numeric = central_differences(lambda: engine.loss(X, Y, w, **keywords), weights + biases)
    assert max(np.max(np.abs(g)) for g in numeric) > 1e-3  # guard: not trivially zero
    for a, g in zip(dW + db, numeric):
        assert_allclose(a, g, rtol=1e-5, atol=1e-8)
    return value


# ---------------------------------------------------------------------------- squared_error

def test_squared_error_by_hand(engine_factory):
    # One identity layer: W = I, b = 0, so A = X.  d = A - Y = [[1, -2], [0.5, 0]]
    # l = 0.5 * mean(d^2) per row: 0.5 * (1 + 4) / 2 = 1.25 and 0.5 * 0.25 / 2 = 0.0625
    # L = (1.25 + 0.0625) / 2 = 0.65625; dL/dA = d / (n k) = d / 4.
    W, b = np.eye(2), np.zeros(2)
    engine = engine_factory([W], [b], ["identity"], "squared_error")
    X = np.array([[1.0, 0.0], [0.5, 1.0]])
    Y = np.array([[0.0, 2.0], [0.0, 1.0]])
    assert engine.loss(X, Y, None) == pytest.approx(0.65625, rel=1e-15)
    dW, db = zeros_like_params([W], [b])
    engine.gradients(X, Y, None, dW, db)
    dA = np.array([[1.0, -2.0], [0.5, 0.0]]) / 4
    assert_allclose(db[0], dA.sum(axis=0), rtol=1e-15)
    assert_allclose(dW[0], X.T @ dA, rtol=1e-15)


def test_squared_error_is_half_the_mse(engine_factory):
    weights, biases, se = make_net(engine_factory, [3, 5, 2], ["tanh", "identity"],
                                   "squared_error")
    mse = engine_factory(weights, biases, [ACTIVATIONS["tanh"], ACTIVATIONS["identity"]],
                         LOSSES["mse"])
    X, Y, w = make_samples(7, 3, 2, "real")
    assert se.loss(X, Y, w) == pytest.approx(0.5 * mse.loss(X, Y, w), rel=1e-14)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_squared_error_gradient_matches_central_differences(engine_factory, weighted):
    weights, biases, engine = make_net(engine_factory, [3, 5, 2], ["sigmoid", "identity"],
                                       "squared_error")
    X, Y, w = make_samples(6, 3, 2, "real")
    fd_check(engine, weights, biases, X, Y, w if weighted else None)


def test_squared_error_accepted_by_the_public_layer(backend):
    X, y = gd.datasets.sine(n_samples=64, seed=0)
    net = gd.Network.from_sizes([1, 8, 1], activation="tanh", loss="squared_error", seed=0,
                                dtype="float64")
    mse = gd.Network.from_sizes([1, 8, 1], activation="tanh", loss="mse", seed=0,
                                dtype="float64")
    assert net.loss(X, y) == pytest.approx(0.5 * mse.loss(X, y), rel=1e-13)
    history = net.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=20, metrics=("r2", "mse"))
    assert history.loss[-1] < history.loss[0]
    with pytest.raises(ValueError, match="accuracy"):
        net.fit(X, y, epochs=1, metrics=("accuracy",))


# ---------------------------------------------------------------------------- l2

L2_NETWORKS = [  # (sizes, activations, loss, target)
    ([3, 5, 2], ["tanh", "identity"], "squared_error", "real"),
    ([4, 5, 3], ["relu", "softmax"], "cross_entropy", "index"),
    ([4, 3, 3, 2], ["elu", "gelu", "sigmoid"], "bce", "binary"),
]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("sizes, acts, loss, target", L2_NETWORKS,
                         ids=[f"{l}-{t}" for _, _, l, t in L2_NETWORKS])
def test_l2_gradient_matches_central_differences(engine_factory, sizes, acts, loss, target,
                                                 weighted):
    weights, biases, engine = make_net(engine_factory, sizes, acts, loss)
    X, Y, w = make_samples(6, sizes[0], sizes[-1], target)
    w = w if weighted else None
    fd_check(engine, weights, biases, X, Y, w, l2=0.7)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_l2_is_the_penalty_over_the_weight_sum(engine_factory, weighted):
    """objective = loss + 0.5 l2 sum ||W||^2 / sum(w), gradient dW + l2 W / sum(w); biases
    untouched."""
    weights, biases, engine = make_net(engine_factory, [3, 4, 2], ["tanh", "identity"], "mse")
    X, Y, w = make_samples(5, 3, 2, "real")
    w = w if weighted else None
    sum_w = 5.0 if w is None else float(w.sum())
    squares = sum(float(np.sum(W * W)) for W in weights)
    plain = engine.loss(X, Y, w)
    assert engine.loss(X, Y, w, l2=0.3) == pytest.approx(plain + 0.15 * squares / sum_w,
                                                         rel=1e-14)
    dW0, db0 = zeros_like_params(weights, biases)
    dW1, db1 = zeros_like_params(weights, biases)
    engine.gradients(X, Y, w, dW0, db0)
    engine.gradients(X, Y, w, dW1, db1, l2=0.3)
    for g0, g1, W in zip(dW0, dW1, weights):
        assert_allclose(g1, g0 + 0.3 * W / sum_w, rtol=1e-13, atol=1e-16)
    for g0, g1 in zip(db0, db1):
        assert_array_equal(g0, g1)


def sklearn_loss_grad(model, weights, biases, X, y, w):
    """scikit-learn's own objective and gradient (``_loss_grad_lbfgs``) at these parameters."""
    from sklearn.neural_network._multilayer_perceptron import _pack
    layer_units = [X.shape[1]] + [W.shape[1] for W in weights]
    activations = [X] + [None] * (len(layer_units) - 1)
    deltas = [None] * (len(activations) - 1)
    coef_grads = [np.empty((a, b)) for a, b in zip(layer_units[:-1], layer_units[1:])]
    intercept_grads = [np.empty(b) for b in layer_units[1:]]
    packed = _pack([W.copy() for W in weights], [b.copy() for b in biases])
    loss, grad = model._loss_grad_lbfgs(packed, X, y, w, activations, deltas, coef_grads,
                                        intercept_grads)
    return loss, grad, _pack


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("task", ["regressor", "classifier"])
def test_l2_equals_scikit_learns_alpha(engine_factory, task, weighted):
    """scikit-learn's MLP objective and gradient with alpha, computed by scikit-learn itself
    on the same parameters: squared_error (one output) and cross_entropy (softmax)."""
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 4))
    alpha = 0.37
    if task == "regressor":
        y = rng.normal(size=40)
        model = MLPRegressor(hidden_layer_sizes=(6,), activation="tanh", alpha=alpha,
                             solver="lbfgs", max_iter=1, random_state=0)
        sizes, acts, loss, Y = [4, 6, 1], ["tanh", "identity"], "squared_error", y[:, None]
        y_sk = y[:, None]
    else:
        y = rng.integers(0, 3, size=40)
        model = MLPClassifier(hidden_layer_sizes=(6,), activation="tanh", alpha=alpha,
                              solver="lbfgs", max_iter=1, random_state=0)
        sizes, acts, loss, Y = [4, 6, 3], ["tanh", "softmax"], "cross_entropy", y
        y_sk = np.eye(3)[y]
    w = rng.uniform(0.2, 3.0, size=40) if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)  # builds the model's layers; its parameters are replaced below
    weights, biases, engine = make_net(engine_factory, sizes, acts, loss, seed=5)
    sk_loss, sk_grad, pack = sklearn_loss_grad(model, weights, biases, X, y_sk, w)
    dW, db = zeros_like_params(weights, biases)
    ours = engine.gradients(X, Y, w, dW, db, l2=alpha)
    assert ours == pytest.approx(sk_loss, rel=1e-12)
    assert ours != pytest.approx(engine.loss(X, Y, w), rel=1e-3)  # the penalty matters here
    assert_allclose(pack(dW, db), sk_grad, rtol=1e-10, atol=1e-14)


def test_l2_divides_by_the_sum_of_the_users_sample_weights(backend):
    """The public layer scales sample weights by a power of two before the engines see them;
    l2 is scaled with them, so the penalty is over the sum of the weights as given, however
    large or small."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=20)
    w = rng.uniform(0.5, 2.0, size=20)
    net = gd.Network.from_sizes([3, 4, 1], activation="tanh", seed=0, dtype="float64")
    squares = sum(float(np.sum(layer.weights ** 2)) for layer in net.layers)
    plain = net.gradients(X, y, w)
    for scale in (1.0, 1e30, 1e-30):
        sum_w = float(np.sum(w * scale))
        expected = net.loss(X, y, w) + 0.5 * 0.2 * squares / sum_w
        assert net.loss(X, y, w * scale, l2=0.2) == pytest.approx(expected, rel=1e-13)
        grads = net.gradients(X, y, w * scale, l2=0.2)
        for layer, (dW, db), (dW0, db0) in zip(net.layers, grads, plain):
            assert_allclose(dW, dW0 + 0.2 * layer.weights / sum_w, rtol=1e-12)
            assert_allclose(db, db0, rtol=1e-13)


# ---------------------------------------------------------------------------- label smoothing

SMOOTHED = [  # (sizes, activations, loss, target)
    ([4, 5, 3], ["tanh", "softmax"], "cross_entropy", "index"),
    ([4, 5, 3], ["softplus", "softmax"], "cross_entropy", "probability"),
    ([4, 5, 2], ["elu", "sigmoid"], "bce", "binary"),
]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("sizes, acts, loss, target", SMOOTHED,
                         ids=[f"{l}-{t}" for _, _, l, t in SMOOTHED])
def test_label_smoothing_gradient_matches_central_differences(engine_factory, sizes, acts,
                                                              loss, target, weighted):
    weights, biases, engine = make_net(engine_factory, sizes, acts, loss)
    X, Y, w = make_samples(6, sizes[0], sizes[-1], target)
    w = w if weighted else None
    smoothed = fd_check(engine, weights, biases, X, Y, w, label_smoothing=0.2)
    assert smoothed != pytest.approx(engine.loss(X, Y, w), rel=1e-6)
    fd_check(engine, weights, biases, X, Y, w, label_smoothing=0.2, l2=0.1)


@pytest.mark.parametrize("target", ["index", "probability"])
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.6])
def test_label_smoothing_equals_torch(engine_factory, target, eps):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    # One softmax layer: the logits are X @ W + b, given to torch as they are.
    weights, biases, engine = make_net(engine_factory, [4, 5], ["softmax"], "cross_entropy")
    X, Y, _ = make_samples(9, 4, 5, target)
    logits = torch.tensor(X @ weights[0] + biases[0], requires_grad=True)
    expected = F.cross_entropy(logits, torch.tensor(Y), label_smoothing=eps)
    expected.backward()
    dW, db = zeros_like_params(weights, biases)
    value = engine.gradients(X, Y, None, dW, db, label_smoothing=eps)
    assert value == pytest.approx(expected.item(), rel=1e-13)
    assert engine.loss(X, Y, None, label_smoothing=eps) == pytest.approx(expected.item(),
                                                                         rel=1e-13)
    assert_allclose(db[0], logits.grad.numpy().sum(axis=0), rtol=1e-11, atol=1e-15)


def test_label_smoothing_for_bce_smooths_towards_one_half(engine_factory):
    """bce: target y (1 - eps) + eps / 2, the loss of BCEWithLogits on those targets."""
    torch = pytest.importorskip("torch")
    weights, biases, engine = make_net(engine_factory, [3, 2], ["sigmoid"], "bce")
    X, Y, _ = make_samples(8, 3, 2, "binary")
    eps = 0.3
    z = torch.tensor(X @ weights[0] + biases[0])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        z, torch.tensor(Y * (1 - eps) + eps / 2)).item()
    assert engine.loss(X, Y, None, label_smoothing=eps) == pytest.approx(expected, rel=1e-13)


# ---------------------------------------------------------------------------- dropout masks

def test_mix64_known_values():
    """splitmix64 from state 0: its first outputs as published with the generator (Vigna's
    splitmix64.c), which is mix64(k * golden_gamma)."""
    gamma = 0x9E3779B97F4A7C15
    outputs = [int(mix64(np.uint64((k * gamma) % 2 ** 64))) for k in (1, 2, 3)]
    assert outputs == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


@core_only
@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_masks_of_both_engines_are_identical(engine_factory, dtype):
    from gdcore import _core
    cases = [(0, 0, 0, 0.5), (1, 2, 3, 0.1), (2 ** 64 - 1, 2 ** 62, 7, 0.9),
             (12345, 1, 0, 0.3), (7, 10 ** 9, 1, 1 - 2 ** -30), (3, 5, 2, 2 ** -33)]
    for seed, step, layer, rate in cases:
        for rows, cols in [(1, 1), (3, 7), (37, 53), (1, 1001)]:
            core = _core.dropout_mask(seed, step, layer, rate, rows, cols, np.dtype(dtype))
            ref = dropout_mask(seed, step, layer, rate, (rows, cols), dtype)
            assert core.dtype == ref.dtype == dtype
            assert core.tobytes() == ref.tobytes(), (seed, step, layer, rate, rows, cols)


def test_dropout_masks_differ_between_steps_and_layers_and_keep_the_rate():
    rate, shape = 0.3, (200, 100)
    masks = {(t, layer): dropout_mask(11, t, layer, rate, shape)
             for t in (1, 2) for layer in (0, 1)}
    keys = list(masks)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            # independent masks agree on about 0.7^2 + 0.3^2 = 58% of the elements
            agree = np.mean((masks[a] > 0) == (masks[b] > 0))
            assert 0.55 < agree < 0.61, (a, b, agree)
    for mask in masks.values():
        kept = np.mean(mask > 0)
        # 20000 Bernoulli(0.7): standard deviation 0.0032; 5 of them
        assert abs(kept - 0.7) < 0.016
        assert set(np.unique(mask)) == {0.0, 1 / 0.7}
    # the same (seed, step, layer): the same mask; another seed: another mask
    assert_array_equal(dropout_mask(11, 1, 0, rate, shape), masks[(1, 0)])
    assert np.mean((dropout_mask(12, 1, 0, rate, shape) > 0) == (masks[(1, 0)] > 0)) < 0.61


def test_random_bits_are_uniform_and_streams_are_pure_functions_of_the_counter():
    key = stream_key(5, 3, 1)
    bits = random_bits(key, 0, 100000)
    assert bits.dtype == np.uint32
    # each of the 32 bits set about half the time (sd 0.0016)
    ones = np.unpackbits(bits.view(np.uint8)).reshape(-1, 32).mean(axis=0)
    assert np.all(np.abs(ones - 0.5) < 0.01)
    # any slice of the stream is the same numbers (counter-based, no state)
    assert_array_equal(random_bits(key, 777, 50), bits[777:827])
    assert keep_threshold(0.0) == 0 and keep_threshold(0.5) == 2 ** 31
    assert dropout_mask(5, 3, 1, 0.0, (4, 4)).min() == 1.0  # rate 0 keeps everything


# ---------------------------------------------------------------------------- dropout gradients

@pytest.mark.parametrize("acts", [["relu", "identity"], ["tanh", "sigmoid", "identity"],
                                  ["relu", "relu", "identity"], ["gelu", "elu", "identity"]],
                         ids="-".join)
def test_dropout_gradient_with_a_fixed_mask_matches_central_differences(engine_factory, acts):
    sizes = [3] + [6] * (len(acts) - 1) + [2]
    weights, biases, engine = make_net(engine_factory, sizes, acts, "mse")
    X, Y, w = make_samples(7, 3, 2, "real")
    rates = np.array([0.4] * (len(acts) - 1) + [0.0])
    keywords = dict(dropout=rates, dropout_seed=9, dropout_step=4)
    with_dropout = fd_check(engine, weights, biases, X, Y, w, **keywords)
    assert with_dropout != pytest.approx(engine.loss(X, Y, w), rel=1e-6)
    fd_check(engine, weights, biases, X, Y, w, l2=0.2, **keywords)


def test_dropout_forward_is_the_masked_activation(engine_factory):
    """One hidden identity layer with W1 = I: the output is the hidden activation times the
    mask of layer 0 (the mask the reference draws)."""
    rng = np.random.default_rng(0)
    W0, b0 = rng.normal(size=(3, 5)), rng.normal(size=5)
    W1, b1 = np.eye(5), np.zeros(5)
    engine = engine_factory([W0, W1], [b0, b1], ["identity", "identity"], "mse")
    X = rng.normal(size=(4, 3))
    Y = np.zeros((4, 5))
    mask = dropout_mask(21, 3, 0, 0.5, (4, 5))
    A = X @ W0 + b0
    expected = np.mean((A * mask) ** 2, axis=1).mean()
    got = engine.loss(X, Y, None, dropout=np.array([0.5, 0.0]), dropout_seed=21,
                      dropout_step=3)
    assert got == pytest.approx(expected, rel=1e-14)


# ---------------------------------------------------------------------------- engine parity

@core_only
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["dropout", "all", "smoothing_probs", "l2_weighted"])
def test_core_trains_as_the_reference_with_regularisers(engine_factory, dtype, case):
    specs = {
        "dropout": ([5, 16, 12, 3], ["relu", "tanh", "softmax"], "cross_entropy", "labels",
                    dict(dropout=[0.3, 0.5, 0.0], dropout_seed=42)),
        "all": ([5, 16, 12, 3], ["relu", "relu", "softmax"], "cross_entropy", "labels",
                dict(l2=0.05, label_smoothing=0.1, dropout=[0.2, 0.1, 0.0],
                     dropout_seed=2 ** 64 - 3)),
        "smoothing_probs": ([4, 8, 3], ["sigmoid", "softmax"], "cross_entropy", "probs",
                            dict(label_smoothing=0.25)),
        "l2_weighted": ([4, 8, 2], ["elu", "identity"], "squared_error", "dense",
                        dict(l2=0.3, dropout=[0.25, 0.0], dropout_seed=1)),
    }
    sizes, acts, loss, target, keywords = specs[case]
    if "dropout" in keywords:
        keywords = {**keywords, "dropout": np.array(keywords["dropout"])}
    core, W, b, ref, rW, rb = make_pair(engine_factory, sizes, acts, loss, dtype, seed=3)
    X, Y, w = make_data(90, sizes[0], sizes[-1], target, dtype, seed=4,
                        weighted=case == "l2_weighted")
    code, hyper = OPTIMIZERS["adam"], make_hyper(lr=0.01)
    rng = np.random.default_rng(0)
    orders = [rng.permutation(90).astype(np.int64) for _ in range(4)]
    results = []
    for engine, weights, biases in ((core, W, b), (ref, rW, rb)):
        state = make_state(weights, biases, code, hyper)
        step = np.zeros(1, dtype=np.int64)
        losses = [engine.train_epoch(X, Y, w, order, 16, code, hyper, state, step, **keywords)
                  for order in orders]
        results.append((losses, weights + biases, int(step[0])))
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    (core_losses, core_params, core_steps), (ref_losses, ref_params, ref_steps) = results
    assert core_steps == ref_steps == 4 * 6
    assert_allclose(core_losses, ref_losses, rtol=rtol)
    for p, q in zip(core_params, ref_params):
        scale = np.max(np.abs(q))
        assert_allclose(p, q, rtol=rtol, atol=rtol * scale)


def test_dropout_rate_zero_is_no_dropout_bit_for_bit(engine_factory):
    sizes, acts = [4, 8, 6, 3], ["relu", "tanh", "softmax"]
    trained = []
    for dropout in (None, np.zeros(3)):
        weights, biases, engine = make_net(engine_factory, sizes, acts, "cross_entropy")
        X, Y, _ = make_samples(40, 4, 3, "index")
        code, hyper = OPTIMIZERS["sgd"], make_hyper(lr=0.1, momentum=0.9)
        state = make_state(weights, biases, code, hyper)
        step = np.zeros(1, dtype=np.int64)
        order = np.arange(40, dtype=np.int64)
        losses = [engine.train_epoch(X, Y, None, order, 8, code, hyper, state, step,
                                     dropout=dropout, dropout_seed=5) for _ in range(3)]
        trained.append((losses, weights + biases))
    assert trained[0][0] == trained[1][0]
    for p, q in zip(trained[0][1], trained[1][1]):
        assert_array_equal(p, q)


def test_masks_change_every_step_and_follow_the_step_count(engine_factory):
    """Two epochs in one call equal two calls of one epoch (the masks follow step[0]), and
    differ from replaying the first epoch's masks."""
    sizes, acts = [4, 10, 2], ["relu", "identity"]
    X, Y, _ = make_samples(32, 4, 2, "real")
    keywords = dict(dropout=np.array([0.5, 0.0]), dropout_seed=3)
    code, hyper = OPTIMIZERS["sgd"], make_hyper(lr=0.05)
    ends = []
    for orders in ([np.arange(64) % 32], [np.arange(32), np.arange(32)]):
        weights, biases, engine = make_net(engine_factory, sizes, acts, "mse")
        state, step = make_state(weights, biases, code, hyper), np.zeros(1, dtype=np.int64)
        for order in orders:
            engine.train_epoch(X, Y, None, order.astype(np.int64), 8, code, hyper, state, step,
                               **keywords)
        ends.append(weights + biases)
    for p, q in zip(*ends):
        assert_allclose(p, q, rtol=1e-14, atol=1e-15)
    # with step reset between the epochs, the second replays the first epoch's masks
    weights, biases, engine = make_net(engine_factory, sizes, acts, "mse")
    state, step = make_state(weights, biases, code, hyper), np.zeros(1, dtype=np.int64)
    for _ in range(2):
        engine.train_epoch(X, Y, None, np.arange(32, dtype=np.int64), 8, code, hyper, state,
                           step, **keywords)
        step[0] = 0
    assert not np.allclose(weights[0], ends[0][0], rtol=1e-6)


# ---------------------------------------------------------------------------- public layer

def make_classifier(dropout=0.0, dtype="float64", seed=0):
    return gd.Network.from_sizes([2, 16, 16, 3], activation="relu", output_activation="softmax",
                                 loss="cross_entropy", seed=seed, dtype=dtype, dropout=dropout)


def test_dropout_only_while_training(backend, dtype):
    X, y = gd.datasets.spirals(n_samples=90, n_classes=3, seed=0)
    plain, dropped = make_classifier(dtype=dtype), make_classifier(0.5, dtype=dtype)
    assert_array_equal(dropped.predict(X), plain.predict(X))
    assert dropped.loss(X, y) == plain.loss(X, y)
    for (a, c), (b, d) in zip(dropped.gradients(X, y), plain.gradients(X, y)):
        assert_array_equal(a, b)
        assert_array_equal(c, d)
    # training does drop: another path than without dropout
    plain.fit(X, y, optimizer=gd.SGD(lr=0.1), epochs=2, batch_size=30, seed=1)
    dropped.fit(X, y, optimizer=gd.SGD(lr=0.1), epochs=2, batch_size=30, seed=1)
    assert not np.allclose(dropped.layers[0].weights, plain.layers[0].weights)


def test_fit_with_zero_rates_is_fit_without_dropout(backend):
    X, y = gd.datasets.spirals(n_samples=60, n_classes=3, seed=0)
    a, b = make_classifier(), make_classifier([0.0, 0.0])
    ha = a.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=3, batch_size=16, seed=2)
    hb = b.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=3, batch_size=16, seed=2)
    assert ha.loss == hb.loss
    for p, q in zip(a.parameters(), b.parameters()):
        assert_array_equal(p, q)


def test_fit_with_dropout_is_reproducible_from_its_seed(backend):
    X, y = gd.datasets.spirals(n_samples=60, n_classes=3, seed=0)
    runs = []
    for seed in (7, 7, 8):
        net = make_classifier(0.3)
        runs.append(net.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=3, batch_size=16,
                            seed=seed, shuffle=False).loss)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


@pytest.mark.skipif(not core_available(), reason="needs the compiled core")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_with_every_regulariser_agrees_across_backends(dtype):
    X, y = gd.datasets.spirals(n_samples=120, n_classes=3, seed=0)
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=120)
    results = []
    for name in ("cpp", "numpy"):
        with gd.use_backend(name):
            net = make_classifier([0.2, 0.3], dtype=dtype)
            history = net.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=5, batch_size=32,
                              seed=3, l2=1e-2, label_smoothing=0.1, sample_weight=w,
                              validation_split=0.2)
            results.append((history, net))
    (h1, n1), (h2, n2) = results
    rtol = 1e-12 if dtype == "float64" else 1e-5
    assert_allclose(h1.loss, h2.loss, rtol=rtol)
    assert_allclose(h1.val_loss, h2.val_loss, rtol=rtol)
    for p, q in zip(n1.parameters(), n2.parameters()):
        assert_allclose(p, q, rtol=rtol, atol=rtol * np.max(np.abs(q)))


def test_history_loss_is_the_objective_and_val_loss_the_data_loss(backend):
    X, y = gd.datasets.spirals(n_samples=80, n_classes=3, seed=0)
    net = make_classifier()
    objective = net.loss(X, y, l2=0.5, label_smoothing=0.2)
    h = net.fit(X, y, optimizer=gd.SGD(lr=0.01), epochs=1, l2=0.5, label_smoothing=0.2,
                validation_data=(X, y))
    # full batch: the epoch's loss is the objective at the starting weights; the validation
    # loss the plain loss of the weights after the step
    assert h.loss[0] == pytest.approx(objective, rel=1e-12)
    assert h.start_loss == h.loss[0]
    assert h.val_loss[0] == pytest.approx(net.loss(X, y), rel=1e-12)
    assert h.loss[0] > h.val_loss[0]


def test_train_epoch_takes_the_regularisers(backend):
    X, y = gd.datasets.spirals(n_samples=40, n_classes=3, seed=0)
    net = make_classifier()
    objective = net.loss(X, y, l2=0.1, label_smoothing=0.1)
    loss = net.train_epoch(X, y, gd.SGD(lr=0.01), l2=0.1, label_smoothing=0.1)
    assert loss == pytest.approx(objective, rel=1e-12)


def test_check_gradients_with_the_regularisers(backend):
    X, y = gd.datasets.spirals(n_samples=20, n_classes=3, seed=0)
    net = gd.Network.from_sizes([2, 5, 4, 3], activation="tanh", output_activation="softmax",
                                loss="cross_entropy", seed=0, dropout=[0.3, 0.4])
    w = np.linspace(0.5, 2.0, 20)
    error = gd.check_gradients(net, X, y, sample_weight=w, l2=0.3, label_smoothing=0.1,
                               dropout=True)
    assert error < 1e-6


def test_dropout_rates_survive_copy_pickle_and_save(backend, tmp_path):
    net = make_classifier([0.25, 0.5])
    for other in (net.copy(), pickle.loads(pickle.dumps(net))):
        assert [layer.dropout for layer in other.layers] == [0.25, 0.5, 0.0]
    net.save(tmp_path / "net.npz")
    loaded = gd.Network.load(tmp_path / "net.npz")
    assert [layer.dropout for layer in loaded.layers] == [0.25, 0.5, 0.0]
    layer = gd.Layer(3, 4, "relu", dropout=0.2)
    assert pickle.loads(pickle.dumps(layer)).dropout == 0.2
    assert "dropout=0.2" in repr(layer)


def test_layer_dropout_is_settable_and_used_by_the_next_fit(backend):
    X, y = gd.datasets.spirals(n_samples=60, n_classes=3, seed=0)
    a, b = make_classifier(), make_classifier([0.4, 0.0])
    a.layers[0].dropout = 0.4
    ha = a.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=2, batch_size=16, seed=2)
    hb = b.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=2, batch_size=16, seed=2)
    assert ha.loss == hb.loss


BAD_FIT = [
    (dict(l2=-0.1), ValueError, "l2 must be >= 0.0"),
    (dict(l2=float("nan")), ValueError, "l2 must be finite"),
    (dict(l2="big"), TypeError, "l2 must be a real number"),
    (dict(label_smoothing=1.0), ValueError, "label_smoothing must be < 1.0"),
    (dict(label_smoothing=-0.1), ValueError, "label_smoothing must be >= 0.0"),
]


@pytest.mark.parametrize("kwargs, error, match", BAD_FIT, ids=[str(k) for k, _, _ in BAD_FIT])
def test_bad_regularisers_are_refused_with_nothing_changed(backend, kwargs, error, match):
    X, y = gd.datasets.spirals(n_samples=30, n_classes=3, seed=0)
    net = make_classifier([0.2, 0.2])
    opt = gd.Adam(lr=0.01)
    net.fit(X, y, optimizer=opt, epochs=1, seed=0)
    before = [p.copy() for p in net.parameters()]
    state = [s.copy() for s in opt.state]
    steps = opt.steps_done
    for call in (lambda: net.fit(X, y, optimizer=opt, epochs=1, **kwargs),
                 lambda: net.train_epoch(X, y, opt, **kwargs),
                 lambda: net.loss(X, y, **kwargs),
                 lambda: net.gradients(X, y, **kwargs)):
        with pytest.raises(error, match=match):
            call()
    for p, q in zip(net.parameters(), before):
        assert_array_equal(p, q)
    for s, t in zip(opt.state, state):
        assert_array_equal(s, t)
    assert opt.steps_done == steps


def test_label_smoothing_is_refused_for_other_losses(backend):
    X, y = gd.datasets.sine(n_samples=20, seed=0)
    net = gd.Network.from_sizes([1, 4, 1], activation="tanh", loss="mse", seed=0)
    with pytest.raises(ValueError, match="label_smoothing applies to the losses"):
        net.fit(X, y, epochs=1, label_smoothing=0.1)
    with pytest.raises(ValueError, match="label_smoothing applies to the losses"):
        net.loss(X, y, label_smoothing=0.1)
    net.loss(X, y, label_smoothing=0.0)  # 0 is no smoothing: allowed everywhere


def test_bad_dropout_rates_are_refused(backend):
    with pytest.raises(ValueError, match="dropout must be < 1.0"):
        gd.Layer(3, 4, "relu", dropout=1.0)
    with pytest.raises(ValueError, match="dropout must be >= 0.0"):
        gd.Layer(3, 4, "relu", dropout=-0.5)
    with pytest.raises(TypeError, match="dropout must be a real number"):
        gd.Layer(3, 4, "relu", dropout="half")
    with pytest.raises(ValueError, match="output layer"):
        gd.Network([gd.Layer(3, 4, "relu"), gd.Layer(4, 2, "identity", dropout=0.5)])
    with pytest.raises(ValueError, match="one rate per hidden layer"):
        gd.Network.from_sizes([2, 4, 4, 1], dropout=[0.1])
    with pytest.raises(ValueError, match=r"dropout\[1\] must be < 1.0"):
        gd.Network.from_sizes([2, 4, 4, 1], dropout=[0.1, 1.5])
    net = gd.Network.from_sizes([2, 4, 1], seed=0)
    with pytest.raises(ValueError, match="output layer"):
        net.layers[-1].dropout = 0.3
    assert net.layers[-1].dropout == 0.0
    with pytest.raises(ValueError, match="dropout must be < 1.0"):
        net.layers[0].dropout = 1.0
    assert net.layers[0].dropout == 0.0
    with pytest.raises(TypeError, match="dropout must be True or False"):
        net.loss(np.zeros((2, 2)), np.zeros(2), dropout=1)


def test_engines_check_the_dropout_array(engine_factory):
    weights, biases, engine = make_net(engine_factory, [3, 4, 2], ["tanh", "identity"], "mse")
    X, Y, _ = make_samples(4, 3, 2, "real")
    cases = [
        (np.array([0.1, 0.0], dtype=np.float32), TypeError, "dtype"),
        (np.array([0.1, 0.0, 0.0]), ValueError, "shape"),
        (np.array([[0.1, 0.0]]), ValueError, "shape"),
        ([0.1, 0.0], TypeError, "type"),
        (np.array([0.1, 0.0, 0.0, 0.0])[::2], TypeError, "layout"),
    ]
    for dropout, error, code in cases:
        with pytest.raises(error, match="dropout") as info:
            engine.loss(X, Y, None, dropout=dropout)
        assert info.value.code == code
