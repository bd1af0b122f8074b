"""Forward, loss and whole-network gradients of both engines (``engine_factory``).

- Every engine's gradients equal central differences of its own loss.
- The compiled core's forward/loss/gradients equal the reference engine's to rtol 1e-9
  (float64) / 1e-4 (float32), relative to each array's largest entry (explicit comparison).
- The reference dense layer writes its gradients into the buffers it is given.
"""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from gdcore.reference.codes import ACTIVATIONS
from gdcore.reference.dense import dense_backward, dense_forward
from helpers import (DTYPES, HIDDEN, RTOL, assert_close, central_differences, core_only,
                     gradient_buffers, make_data, make_net, make_pair, make_samples,
                     zeros_like_params)

# ------------------------------------------------------------------ against central differences


def check_gradients(factory, sizes, acts, loss, target, n, weighted, seed=0):
    weights, biases, engine = make_net(factory, sizes, acts, loss, seed=seed)
    X, Y, w = make_samples(n, sizes[0], sizes[-1], target, seed=seed + 1)
    w = w if weighted else None
    dW, db = zeros_like_params(weights, biases)
    value = engine.gradients(X, Y, w, dW, db)
    assert value == pytest.approx(engine.loss(X, Y, w), rel=1e-15)

    numeric = central_differences(lambda: engine.loss(X, Y, w), weights + biases)
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
def test_gradients_match_central_differences(engine_factory, sizes, acts, loss, target,
                                             weighted):
    check_gradients(engine_factory, sizes, acts, loss, target, n=6, weighted=weighted)


EDGE_SHAPES = [  # (sizes, n): one sample, one feature, wide (n_in > n), tall
    ([3, 4, 2], 1), ([1, 3, 2], 5), ([20, 3, 2], 3), ([2, 3, 2], 200),
]


@pytest.mark.parametrize("sizes, n", EDGE_SHAPES, ids=["one-sample", "one-feature", "wide", "tall"])
@pytest.mark.parametrize("acts, loss, target", [
    (["tanh", "identity"], "mse", "real"), (["relu", "softmax"], "cross_entropy", "index"),
])
def test_gradients_on_edge_shapes(engine_factory, sizes, n, acts, loss, target):
    check_gradients(engine_factory, sizes, acts, loss, target, n=n, weighted=True, seed=3)


def test_dense_backward_writes_into_given_buffers():
    """The reference dense layer (gdcore.reference.dense), which the numpy engine is built of."""
    rng = np.random.default_rng(0)
    W, b, X = rng.normal(size=(3, 2)), rng.normal(size=2), rng.normal(size=(4, 3))
    Z = dense_forward(X, W, b)
    assert_allclose(Z, X @ W + b)
    assert_array_equal(dense_forward(X, W, b, relu=True), np.maximum(Z, 0))
    dW, db = np.empty((3, 2)), np.empty(2)
    dX = dense_backward(X, np.ones((4, 2)), W, dW, db, need_da_prev=False)
    assert dX is None
    assert_allclose(dW, X.T @ np.ones((4, 2)))
    assert_allclose(db, [4.0, 4.0])
    # the input gradient, and with relu_prev the previous relu layer's dZ (mask from its A)
    dX = dense_backward(X, np.ones((4, 2)), W, dW, db)
    assert_allclose(dX, np.ones((4, 2)) @ W.T)
    dZ_prev = dense_backward(X, np.ones((4, 2)), W, dW, db, relu_prev=True)
    assert_array_equal(dZ_prev, np.where(X > 0, dX, 0))


# ------------------------------------------------------------------ compiled core vs reference

# (loss, output activation, targets): every loss with its valid outputs; CE with both targets
LOSS_CASES = [
    ("mse", "identity", "dense"), ("mse", "sigmoid", "dense"), ("mse", "softmax", "dense"),
    ("mae", "tanh", "dense"), ("huber", "identity", "dense"), ("huber", "elu", "dense"),
    ("bce", "sigmoid", "binary"), ("cross_entropy", "softmax", "labels"),
    ("cross_entropy", "softmax", "probs"),
]


@core_only
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss,out,targets", LOSS_CASES)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_forward_loss_gradients_match_reference(engine_factory, hidden, loss, out, targets,
                                                weighted, dtype):
    sizes = [5, 7, 4]
    eng, weights, biases, ref, _, _ = make_pair(engine_factory, sizes, [hidden, out], loss, dtype)
    X, Y, w = make_data(13, sizes[0], sizes[-1], targets, dtype, weighted=weighted)
    rtol = RTOL[dtype]

    out_core, out_ref = eng.forward(X), ref.forward(X)
    assert out_core.dtype == dtype and out_core.shape == (13, sizes[-1])
    assert_close(out_core, out_ref, rtol, "forward")
    assert_close(eng.loss(X, Y, w), ref.loss(X, Y, w), rtol, "loss")

    dW, db = gradient_buffers(weights, biases)
    rW, rb = gradient_buffers(weights, biases)
    value = eng.gradients(X, Y, w, dW, db)
    assert_close(value, ref.gradients(X, Y, w, rW, rb), rtol, "gradients' loss")
    for i in range(len(dW)):
        assert_close(dW[i], rW[i], rtol, f"dW[{i}]")
        assert_close(db[i], rb[i], rtol, f"db[{i}]")
    # guard against agreeing on nothing: the last layer's gradient is never all zero here
    assert np.abs(dW[-1]).max() > 0


def _assert_engines_agree(eng, ref, weights, biases, X, Y, dtype):
    """The two engines' forward pass, loss and every gradient agree on (X, Y)."""
    assert_close(eng.forward(X), ref.forward(X), RTOL[dtype])
    dW, db = gradient_buffers(weights, biases)
    rW, rb = gradient_buffers(weights, biases)
    assert_close(eng.gradients(X, Y, None, dW, db), ref.gradients(X, Y, None, rW, rb),
                 RTOL[dtype])
    for a, b in zip(dW + db, rW + rb):
        assert_close(a, b, RTOL[dtype])


@core_only
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("out", list(ACTIVATIONS))
def test_every_output_activation_with_mse(engine_factory, out, dtype):
    eng, weights, biases, ref, _, _ = make_pair(engine_factory, [3, 6, 5], ["tanh", out], "mse",
                                                dtype)
    X, Y, _ = make_data(9, 3, 5, "dense", dtype)
    _assert_engines_agree(eng, ref, weights, biases, X, Y, dtype)


SHAPES = {
    "one_sample": ([4, 3, 2], 1),
    "one_feature": ([1, 5, 1], 20),
    "wide": ([300, 200, 3], 7),
    "tall": ([6, 8, 2], 3000),
    "deep": ([4, 6, 6, 6, 6, 3], 11),
}


@core_only
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_shapes_match_reference(engine_factory, shape, dtype):
    sizes, n = SHAPES[shape]
    acts = ["relu"] * (len(sizes) - 2) + ["identity"]
    eng, weights, biases, ref, _, _ = make_pair(engine_factory, sizes, acts, "mse", dtype)
    X, Y, _ = make_data(n, sizes[0], sizes[-1], "dense", dtype)
    _assert_engines_agree(eng, ref, weights, biases, X, Y, dtype)
    # the workspace shrinks never and grows again: a smaller then a larger call
    assert_close(eng.forward(X[:1]), ref.forward(X[:1]), RTOL[dtype])
    X2 = np.concatenate([X, X])
    assert_close(eng.forward(X2), ref.forward(X2), RTOL[dtype])


def test_forward_of_no_rows(engine_factory):
    eng, *_ = make_pair(engine_factory, [3, 4, 2], ["relu", "identity"], "mse", np.float64)
    out = eng.forward(np.zeros((0, 3)))
    assert out.shape == (0, 2) and out.dtype == np.float64
