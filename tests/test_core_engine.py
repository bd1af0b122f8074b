"""The compiled engine (``gdcore._core.EngineF32``/``EngineF64``) against the NumPy reference
engine (``gdcore.reference.engine.Engine``), and the core's own precondition checks.

Parity: forward/loss/gradients and one training step agree to rtol 1e-9 (float64) / 1e-4
(float32), relative to each array's largest entry; ten epochs of float64 training to 1e-6.

The core's errors: a wrong dtype, a non-array, or a non-C-contiguous/unaligned layout is a
``TypeError`` (the Python layer converts; the engine never does); a wrong shape, an index or label
out of range, a bad hyper-parameter or a read-only output buffer is a ``ValueError``; a second
call while one runs (another thread, or a signal handler re-entering) is a ``RuntimeError``.
"""
import signal
import sys
import threading
import time

import numpy as np
import pytest

from gdcore import _backend
from gdcore.reference.codes import ACTIVATIONS, LOSSES, OPTIMIZERS
from gdcore.reference.engine import Engine as RefEngine

core = _backend._core
if not _backend._core_engines_available():
    pytest.skip("the compiled core (gdcore._core.EngineF32) is not built",
                allow_module_level=True)

DTYPES = [np.float32, np.float64]
CORE = {np.float32: core.EngineF32, np.float64: core.EngineF64}
RTOL = {np.float32: 1e-4, np.float64: 1e-9}
HIDDEN = [a for a in ACTIVATIONS if a != "softmax"]

# (loss, output activation, targets): every loss with its valid outputs; CE with both targets
LOSS_CASES = [
    ("mse", "identity", "dense"), ("mse", "sigmoid", "dense"), ("mse", "softmax", "dense"),
    ("mae", "tanh", "dense"), ("huber", "identity", "dense"), ("huber", "elu", "dense"),
    ("bce", "sigmoid", "binary"), ("cross_entropy", "softmax", "labels"),
    ("cross_entropy", "softmax", "probs"),
]

# name -> (code, hyper = [lr, momentum, nesterov, weight_decay, beta1, beta2, eps, alpha])
OPTIMIZER_CASES = {
    "sgd": (OPTIMIZERS["sgd"], [0.1, 0.0, 0, 0.0, 0.9, 0.999, 1e-8, 0.99]),
    "sgd_momentum": (OPTIMIZERS["sgd"], [0.05, 0.9, 0, 0.0, 0.9, 0.999, 1e-8, 0.99]),
    "sgd_nesterov": (OPTIMIZERS["sgd"], [0.05, 0.9, 1, 0.0, 0.9, 0.999, 1e-8, 0.99]),
    "sgd_wd": (OPTIMIZERS["sgd"], [0.05, 0.5, 0, 1e-2, 0.9, 0.999, 1e-8, 0.99]),
    "adam": (OPTIMIZERS["adam"], [0.01, 0.0, 0, 1e-3, 0.9, 0.999, 1e-8, 0.99]),
    "adamw": (OPTIMIZERS["adamw"], [0.01, 0.0, 0, 1e-2, 0.8, 0.99, 1e-8, 0.99]),
    "rmsprop": (OPTIMIZERS["rmsprop"], [0.01, 0.0, 0, 0.0, 0.9, 0.999, 1e-8, 0.99]),
    "rmsprop_momentum": (OPTIMIZERS["rmsprop"], [0.005, 0.9, 0, 1e-3, 0.9, 0.999, 1e-8, 0.9]),
}


# ---------------------------------------------------------------------------------- helpers

def make_params(sizes, dtype, seed=0):
    """Weights (n_in, n_out) and biases of a network with these layer sizes."""
    rng = np.random.default_rng(seed)
    weights = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype)
               for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [(0.1 * rng.standard_normal(b)).astype(dtype) for b in sizes[1:]]
    return weights, biases


def make_pair(sizes, activations, loss, dtype, seed=0):
    """The core engine and the reference engine over two identical copies of the parameters."""
    weights, biases = make_params(sizes, dtype, seed)
    codes = [ACTIVATIONS[a] for a in activations]
    ref_w, ref_b = [w.copy() for w in weights], [b.copy() for b in biases]
    return (CORE[dtype](weights, biases, codes, LOSSES[loss]), weights, biases,
            RefEngine(ref_w, ref_b, codes, LOSSES[loss]), ref_w, ref_b)


def make_data(n, n_in, n_out, targets, dtype, seed=1, weighted=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in)).astype(dtype)
    if targets == "labels":
        Y = rng.integers(0, n_out, n).astype(np.int64)
    elif targets == "probs":
        P = rng.random((n, n_out))
        Y = (P / P.sum(axis=1, keepdims=True)).astype(dtype)
    elif targets == "binary":
        Y = (rng.random((n, n_out)) < 0.5).astype(dtype)
    else:  # dense, spread so that huber sees both of its regimes
        Y = (2.0 * rng.standard_normal((n, n_out))).astype(dtype)
    w = rng.uniform(0.1, 2.0, n).astype(dtype) if weighted else None
    return X, Y, w


def assert_close(actual, expected, rtol, what=""):
    """Relative agreement, measured against the largest entry of ``expected``."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = np.max(np.abs(expected)) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def slots_per_param(code, hyper):
    if code == OPTIMIZERS["sgd"]:
        return 1 if hyper[1] > 0 else 0
    if code == OPTIMIZERS["rmsprop"]:
        return 2 if hyper[1] > 0 else 1
    return 2


def make_state(weights, biases, code, hyper):
    params = [p for w, b in zip(weights, biases) for p in (w, b)]
    k = slots_per_param(code, hyper)
    return [np.zeros_like(params[i // k]) for i in range(k * len(params))]


def gradient_buffers(weights, biases):
    return [np.full_like(w, np.nan) for w in weights], [np.full_like(b, np.nan) for b in biases]


# ---------------------------------------------------------------------------------- parity

@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss,out,targets", LOSS_CASES)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_forward_loss_gradients_match_reference(hidden, loss, out, targets, weighted, dtype):
    sizes = [5, 7, 4]
    eng, weights, biases, ref, _, _ = make_pair(sizes, [hidden, out], loss, dtype)
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


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("out", list(ACTIVATIONS))
def test_every_output_activation_with_mse(out, dtype):
    eng, weights, biases, ref, _, _ = make_pair([3, 6, 5], ["tanh", out], "mse", dtype)
    X, Y, _ = make_data(9, 3, 5, "dense", dtype)
    assert_close(eng.forward(X), ref.forward(X), RTOL[dtype])
    dW, db = gradient_buffers(weights, biases)
    rW, rb = gradient_buffers(weights, biases)
    assert_close(eng.gradients(X, Y, None, dW, db), ref.gradients(X, Y, None, rW, rb),
                 RTOL[dtype])
    for a, b in zip(dW + db, rW + rb):
        assert_close(a, b, RTOL[dtype])


SHAPES = {
    "one_sample": ([4, 3, 2], 1),
    "one_feature": ([1, 5, 1], 20),
    "wide": ([300, 200, 3], 7),
    "tall": ([6, 8, 2], 3000),
    "deep": ([4, 6, 6, 6, 6, 3], 11),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_shapes_match_reference(shape, dtype):
    sizes, n = SHAPES[shape]
    acts = ["relu"] * (len(sizes) - 2) + ["identity"]
    eng, weights, biases, ref, _, _ = make_pair(sizes, acts, "mse", dtype)
    X, Y, _ = make_data(n, sizes[0], sizes[-1], "dense", dtype)
    assert_close(eng.forward(X), ref.forward(X), RTOL[dtype])
    dW, db = gradient_buffers(weights, biases)
    rW, rb = gradient_buffers(weights, biases)
    assert_close(eng.gradients(X, Y, None, dW, db), ref.gradients(X, Y, None, rW, rb),
                 RTOL[dtype])
    for a, b in zip(dW + db, rW + rb):
        assert_close(a, b, RTOL[dtype])
    # the workspace shrinks never and grows again: a smaller then a larger call
    assert_close(eng.forward(X[:1]), ref.forward(X[:1]), RTOL[dtype])
    X2 = np.concatenate([X, X])
    assert_close(eng.forward(X2), ref.forward(X2), RTOL[dtype])


def test_forward_of_no_rows():
    eng, *_ = make_pair([3, 4, 2], ["relu", "identity"], "mse", np.float64)
    out = eng.forward(np.zeros((0, 3)))
    assert out.shape == (0, 2) and out.dtype == np.float64


def run_epochs(engine, weights, biases, X, Y, w, orders, batch_size, opt):
    """Train ``engine`` one epoch per order; returns the epoch losses, the state and step."""
    code, hyper = OPTIMIZER_CASES[opt]
    hyper = np.array(hyper, dtype=np.float64)
    state = make_state(weights, biases, code, hyper)
    step = np.zeros(1, dtype=np.int64)
    losses = [engine.train_epoch(X, Y, w, order, batch_size, code, hyper, state, step)
              for order in orders]
    return losses, state, step


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss,out,targets", [LOSS_CASES[0], LOSS_CASES[6], LOSS_CASES[7],
                                              LOSS_CASES[8]])
@pytest.mark.parametrize("opt", list(OPTIMIZER_CASES))
def test_one_step_matches_reference(opt, loss, out, targets, weighted, dtype):
    eng, weights, biases, ref, ref_w, ref_b = make_pair([4, 8, 3], ["gelu", out], loss, dtype)
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


@pytest.mark.parametrize("order_kind", list(ORDERS))
@pytest.mark.parametrize("opt", list(OPTIMIZER_CASES))
def test_ten_epochs_float64_match_reference(opt, order_kind):
    dtype = np.float64
    eng, weights, biases, ref, ref_w, ref_b = make_pair([5, 12, 6, 3], ["tanh", "relu", "softmax"],
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


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_ten_epochs_mse_sample_weight(dtype):
    eng, weights, biases, ref, ref_w, ref_b = make_pair([3, 10, 2], ["elu", "identity"], "mse",
                                                        dtype)
    X, Y, w = make_data(40, 3, 2, "dense", dtype, weighted=True)
    rng = np.random.default_rng(3)
    orders = [rng.permutation(40) for _ in range(10)]
    got = run_epochs(eng, weights, biases, X, Y, w, orders, 7, "adam")
    want = run_epochs(ref, ref_w, ref_b, X, Y, w, orders, 7, "adam")
    rtol = 1e-6 if dtype == np.float64 else 1e-3
    assert_close(got[0], want[0], rtol)
    for a, b in zip(weights + biases, ref_w + ref_b):
        assert_close(a, b, rtol)


def test_divergence_stops_before_the_update():
    """A non-finite batch loss is returned and that batch is not applied (both engines)."""
    dtype = np.float64
    eng, weights, biases, ref, ref_w, ref_b = make_pair([3, 16, 2], ["relu", "identity"], "mse",
                                                        dtype)
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
def test_zero_weight_batches_are_skipped(dtype):
    """A batch whose weights sum to zero takes no step and is left out of the epoch loss."""
    eng, weights, biases, ref, ref_w, ref_b = make_pair([3, 5, 2], ["relu", "identity"], "mse",
                                                        dtype)
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


# cross_entropy's training path skips the output softmax in the forward pass and computes the
# softmax, the loss (log-sum-exp) and dL/dZ in one pass over the exponentials; the 64-128-10
# shape also takes the narrow (k < vector) products: dW1 through a transposed scratch block.
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("targets", ["labels", "probs"])
def test_fused_cross_entropy_step_and_gradients_match_reference(targets, weighted, dtype):
    sizes = [64, 128, 10]
    eng, weights, biases, ref, ref_w, ref_b = make_pair(sizes, ["relu", "softmax"],
                                                        "cross_entropy", dtype)
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


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_fused_cross_entropy_nonfinite_logits_stop_the_epoch(dtype):
    eng, weights, biases, *_ = make_pair([4, 6, 3], ["relu", "softmax"], "cross_entropy", dtype)
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


# ---------------------------------------------------------------------------------- ownership

def test_parameters_are_views_updated_in_place():
    dtype = np.float32
    weights, biases = make_params([4, 5, 2], dtype)
    before = [(p.__array_interface__["data"][0], p.copy()) for p in weights + biases]
    eng = core.EngineF32(weights, biases, [ACTIVATIONS["relu"], ACTIVATIONS["identity"]],
                         LOSSES["mse"])
    assert eng.weights[0] is weights[0] and eng.biases[1] is biases[1]
    assert (eng.n_inputs, eng.n_outputs, eng.n_layers) == (4, 2, 2)
    assert eng.dtype == np.float32 and eng.loss_code == LOSSES["mse"]
    X, Y, _ = make_data(8, 4, 2, "dense", dtype)
    code, hyper = OPTIMIZER_CASES["sgd"]
    eng.train_epoch(X, Y, None, np.arange(8), 4, code, np.array(hyper), [], np.zeros(1, np.int64))
    for p, (address, old) in zip(weights + biases, before):
        assert p.__array_interface__["data"][0] == address  # same buffer
        assert not np.array_equal(p, old)                     # new values
    # writes into the caller's arrays are seen by the engine (it holds no copy)
    weights[1][...] = 0
    biases[1][...] = 3
    np.testing.assert_array_equal(eng.forward(X), np.full((8, 2), 3, np.float32))


def test_gradients_fill_the_callers_buffers():
    eng, weights, biases, *_ = make_pair([3, 4, 2], ["tanh", "identity"], "mse", np.float64)
    X, Y, _ = make_data(6, 3, 2, "dense", np.float64)
    dW, db = gradient_buffers(weights, biases)
    addresses = [a.__array_interface__["data"][0] for a in dW + db]
    eng.gradients(X, Y, None, dW, db)
    assert [a.__array_interface__["data"][0] for a in dW + db] == addresses
    assert all(np.all(np.isfinite(a)) for a in dW + db)


# ---------------------------------------------------------------------------------- checks

def small_engine(dtype=np.float64, loss="cross_entropy", out="softmax"):
    weights, biases = make_params([3, 4, 2], dtype)
    eng = CORE[dtype](weights, biases, [ACTIVATIONS["relu"], ACTIVATIONS[out]], LOSSES[loss])
    return eng, weights, biases


def construct(weights, biases, acts=(3, 0), loss=0, cls=core.EngineF64):
    return cls(weights, biases, list(acts), loss)


def test_construction_errors():
    W, b = make_params([3, 4, 2], np.float64)
    with pytest.raises(ValueError, match="same length"):
        construct(W, b[:1])
    with pytest.raises(ValueError, match="at least one"):
        construct([], [], ())
    with pytest.raises(TypeError, match="weights must be a list"):
        construct(W[0], b)
    with pytest.raises(TypeError, match=r"weights\[0\] must be a float64"):
        construct([W[0].astype(np.float32), W[1]], b)
    with pytest.raises(TypeError, match=r"weights\[1\] must be a numpy.ndarray"):
        construct([W[0], W[1].tolist()], b)
    with pytest.raises(TypeError, match=r"weights\[0\] must be C-contiguous"):
        construct([np.asfortranarray(W[0]), W[1]], b)
    with pytest.raises(ValueError, match=r"weights\[1\] must have 4 rows"):
        construct([W[0], np.zeros((3, 2))], b)
    with pytest.raises(ValueError, match=r"biases\[0\] must have shape \(4,\)"):
        construct(W, [np.zeros(3), b[1]])
    with pytest.raises(ValueError, match=r"weights\[0\] must be a float64 array of shape"):
        construct([np.zeros(12), W[1]], b)
    read_only = W[0].copy()
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match=r"weights\[0\] must be writeable"):
        construct([read_only, W[1]], b)
    with pytest.raises(ValueError, match=r"activations\[1\] must be an activation code"):
        construct(W, b, acts=(3, 9))
    with pytest.raises(TypeError, match=r"activations\[0\] must be an int"):
        construct(W, b, acts=("relu", 0))
    with pytest.raises(ValueError, match="softmax is only allowed on the output layer"):
        construct(W, b, acts=(8, 8), loss=LOSSES["cross_entropy"])
    with pytest.raises(ValueError, match="loss must be a loss code"):
        construct(W, b, loss=5)
    with pytest.raises(ValueError, match="'bce' needs a 'sigmoid' output"):
        construct(W, b, acts=(3, 0), loss=LOSSES["bce"])
    with pytest.raises(ValueError, match="'cross_entropy' needs a 'softmax' output"):
        construct(W, b, acts=(3, 1), loss=LOSSES["cross_entropy"])
    with pytest.raises(TypeError, match="float32"):  # F32 engine over float64 arrays
        construct(W, b, cls=core.EngineF32)


def test_data_errors():
    eng, weights, biases = small_engine()
    X = np.zeros((5, 3))
    Y = np.array([0, 1, 1, 0, 1], dtype=np.int64)
    with pytest.raises(TypeError, match="X must be a float64 array"):
        eng.forward(X.astype(np.float32))
    with pytest.raises(TypeError, match="X must be a numpy.ndarray"):
        eng.forward(X.tolist())
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 3\), got \(5, 4\)"):
        eng.forward(np.zeros((5, 4)))
    with pytest.raises(ValueError, match="X must be a float64 array of shape"):
        eng.forward(np.zeros(3))
    with pytest.raises(TypeError, match="X must be C-contiguous"):
        eng.forward(np.zeros((5, 6))[:, ::2])
    with pytest.raises(TypeError, match="X must be C-contiguous"):
        eng.forward(np.zeros((3, 5)).T)
    with pytest.raises(ValueError, match="X must have at least one row"):
        eng.loss(np.zeros((0, 3)), Y[:0], None)
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\), got 2 at row 3"):
        eng.loss(X, np.array([0, 1, 1, 2, 0]), None)
    with pytest.raises(ValueError, match="class indices"):
        eng.loss(X, np.array([0, -1, 1, 1, 0]), None)
    with pytest.raises(TypeError, match="int64 class indices"):
        eng.loss(X, Y.astype(np.int32), None)
    with pytest.raises(ValueError, match=r"Y must have shape \(5,\)"):
        eng.loss(X, Y[:4], None)
    with pytest.raises(ValueError, match=r"Y must have shape \(5, 2\)"):
        eng.loss(X, np.zeros((5, 3)), None)
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(5,\)"):
        eng.loss(X, Y, np.ones(4))
    with pytest.raises(TypeError, match="sample_weight must be a float64"):
        eng.loss(X, Y, np.ones(5, dtype=np.float32))
    with pytest.raises(ValueError, match="non-negative"):
        eng.loss(X, Y, np.array([1.0, -1.0, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="positive sum"):
        eng.loss(X, Y, np.zeros(5))
    mse, *_ = small_engine(loss="mse", out="identity")
    with pytest.raises(TypeError, match="Y must be a float64 array"):
        mse.loss(X, Y, None)  # class indices are for cross_entropy only

    dW, db = gradient_buffers(weights, biases)
    with pytest.raises(ValueError, match="dW must hold 2 arrays"):
        eng.gradients(X, Y, None, dW[:1], db)
    with pytest.raises(ValueError, match=r"db\[1\] must have shape \(2,\)"):
        eng.gradients(X, Y, None, dW, [db[0], np.zeros(3)])
    frozen = dW[0].copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match=r"dW\[0\] must be writeable"):
        eng.gradients(X, Y, None, [frozen, dW[1]], db)
    with pytest.raises(TypeError, match=r"dW\[1\] must be C-contiguous"):
        eng.gradients(X, Y, None, [dW[0], np.asfortranarray(np.zeros((4, 2)))], db)


def test_train_epoch_errors_leave_everything_untouched():
    eng, weights, biases = small_engine()
    X = np.random.default_rng(0).standard_normal((6, 3))
    Y = np.array([0, 1, 1, 0, 1, 0], dtype=np.int64)
    order = np.arange(6, dtype=np.int64)
    code, hyper = OPTIMIZER_CASES["sgd_momentum"]
    hyper = np.array(hyper)
    state = make_state(weights, biases, code, hyper)
    step = np.zeros(1, dtype=np.int64)
    before = [p.copy() for p in weights + biases]

    def call(**changes):
        args = dict(X=X, Y=Y, sample_weight=None, order=order, batch_size=2, optimizer=code,
                    hyper=hyper, state=state, step=step)
        args.update(changes)
        return eng.train_epoch(**args)

    def bad_hyper(i, value):
        h = hyper.copy()
        h[i] = value
        return h

    with pytest.raises(ValueError, match=r"order must hold row indices of X in \[0, 6\)"):
        call(order=np.array([0, 1, 2, 3, 4, 6]))  # the bad index comes last
    with pytest.raises(ValueError, match="order must hold row indices"):
        call(order=np.array([-1, 0]))
    with pytest.raises(ValueError, match="at least one row index"):
        call(order=np.zeros(0, dtype=np.int64))
    with pytest.raises(TypeError, match="order must be a int64"):
        call(order=order.astype(np.int32))
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        call(batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        call(batch_size=2.0)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        call(batch_size=True)
    with pytest.raises(ValueError, match="optimizer must be an optimizer code"):
        call(optimizer=4)
    with pytest.raises(ValueError, match=r"hyper must have shape \(8,\)"):
        call(hyper=hyper[:7].copy())
    with pytest.raises(TypeError, match="hyper must be a float64"):
        call(hyper=hyper.astype(np.float32))
    with pytest.raises(ValueError, match=r"hyper\[0\] \(lr\) must be >= 0"):
        call(hyper=bad_hyper(0, -0.1))
    with pytest.raises(ValueError, match=r"hyper\[0\] \(lr\) must be finite"):
        call(hyper=bad_hyper(0, np.nan))
    with pytest.raises(ValueError, match=r"hyper\[2\] \(nesterov\) must be 0 or 1"):
        call(hyper=bad_hyper(2, 0.5))
    with pytest.raises(ValueError, match=r"hyper\[4\] \(beta1\) must be in \[0, 1\)"):
        call(optimizer=OPTIMIZERS["adam"], hyper=bad_hyper(4, 1.0),
             state=make_state(weights, biases, OPTIMIZERS["adam"], hyper))
    with pytest.raises(ValueError, match="state must hold 4 arrays"):
        call(state=state[:3])
    with pytest.raises(ValueError, match=r"state\[1\] must have shape \(4,\)"):
        call(state=[state[0], np.zeros(5), state[2], state[3]])
    with pytest.raises(ValueError, match=r"state must hold 8 arrays \(2 per parameter for adam"):
        call(optimizer=OPTIMIZERS["adam"])
    with pytest.raises(TypeError, match="step must be a int64"):
        call(step=np.zeros(1, dtype=np.int32))
    with pytest.raises(ValueError, match=r"step must have shape \(1,\)"):
        call(step=np.zeros(2, dtype=np.int64))
    frozen = step.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="step must be writeable"):
        call(step=frozen)
    with pytest.raises(ValueError, match=r"step\[0\] must be >= 0"):
        call(step=np.array([-1], dtype=np.int64))

    for p, old in zip(weights + biases, before):
        np.testing.assert_array_equal(p, old)
    assert step[0] == 0 and all(not s.any() for s in state)
    call()  # and the engine still works
    assert step[0] == 3


def test_num_threads_and_build_info():
    info = core.build_info()
    assert "OpenBLAS" in info["blas_config"] and info["blas_num_threads"] >= 1
    n = core.get_num_threads()
    core.set_num_threads(1)
    try:
        assert core.get_num_threads() == 1
    finally:
        core.set_num_threads(n)
    with pytest.raises(ValueError):
        core.set_num_threads(0)
    with pytest.raises(TypeError):
        core.set_num_threads(1.5)


# ---------------------------------------------------------------------------------- threads, signals

def long_epoch(dtype=np.float64, repeats=10000):
    """An engine and a train_epoch call of many small steps (order repeats the rows)."""
    weights, biases = make_params([16, 32, 4], dtype, seed=5)
    eng = CORE[dtype](weights, biases, [ACTIVATIONS["tanh"], ACTIVATIONS["identity"]],
                      LOSSES["mse"])
    X, Y, _ = make_data(64, 16, 4, "dense", dtype)
    order = np.tile(np.arange(64, dtype=np.int64), repeats)  # 640k steps of batch 1, ~1 s
    code, hyper = OPTIMIZER_CASES["sgd"]
    hyper = np.array(hyper)
    hyper[0] = 1e-4
    step = np.zeros(1, dtype=np.int64)
    args = (X, Y, None, order, 1, code, hyper, [], step)
    return eng, weights, biases, args


def test_concurrent_use_raises_runtime_error():
    eng, _, _, args = long_epoch()
    started = threading.Event()
    errors = []

    def train():
        started.set()
        try:
            eng.train_epoch(*args)
        except RuntimeError as exc:  # it may lose the race instead of the main thread
            errors.append(exc)

    worker = threading.Thread(target=train)
    worker.start()
    started.wait()
    X = args[0]
    deadline = time.monotonic() + 10
    try:
        while worker.is_alive() and not errors and time.monotonic() < deadline:
            try:
                eng.forward(X)
            except RuntimeError as exc:
                errors.append(exc)
                break
            time.sleep(0.005)
    finally:
        worker.join()
    if not errors:
        pytest.skip("the epoch ended before a concurrent call could overlap it")
    assert "already running" in str(errors[0])
    eng.forward(X)  # the busy flag is released afterwards


needs_alarm = pytest.mark.skipif(
    not hasattr(signal, "setitimer") or sys.platform == "win32",
    reason="needs signal.setitimer")


@needs_alarm
def test_interrupt_finishes_the_step_and_raises():
    eng, weights, biases, args = long_epoch()
    start_w = [p.copy() for p in weights + biases]

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            eng.train_epoch(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.monotonic() - t0
    step = args[-1]
    steps_done = int(step[0])
    assert 0 < steps_done < len(args[3]) and elapsed < 2.0

    # the parameters are exactly those of running the completed steps alone
    replay_w = [p.copy() for p in start_w]
    replay = core.EngineF64(replay_w[:2], replay_w[2:],
                            [ACTIVATIONS["tanh"], ACTIVATIONS["identity"]], LOSSES["mse"])
    X, Y, w, order, bs, code, hyper, state, _ = args
    replay_step = np.zeros(1, dtype=np.int64)
    replay.train_epoch(X, Y, w, order[:steps_done], bs, code, hyper, state, replay_step)
    assert replay_step[0] == steps_done
    for a, b in zip(weights + biases, replay_w[:2] + replay_w[2:]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@needs_alarm
def test_reentrant_call_from_a_signal_handler_raises_runtime_error():
    eng, _, _, args = long_epoch()

    def handler(signum, frame):
        eng.forward(args[0])  # the engine is busy in train_epoch

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    try:
        with pytest.raises(RuntimeError, match="already running"):
            eng.train_epoch(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert 0 < args[-1][0] < len(args[3])


# ---------------------------------------------------------------------------------- own kernels
# The core multiplies small products with its own vectorised kernels (one build per instruction
# set, picked at run time) and larger ones with OpenBLAS; float32 tanh/sigmoid/exp/bce use
# polynomial approximations. The shapes below sit at and around every dispatch threshold
# (vector width 8/16, the n == 1 dot path, the narrow transposed path, the packing and depth
# limits, OpenBLAS beyond), on every instruction set this CPU runs.

ISAS = core._kernel_isas()


@pytest.fixture(params=ISAS)
def isa(request):
    core._set_kernel_isa(request.param)
    yield request.param
    core._set_kernel_isa("auto")


def check_against_reference(sizes, n, acts, loss, targets, dtype):
    eng, weights, biases, ref, _, _ = make_pair(sizes, acts, loss, dtype, seed=len(sizes) + n)
    X, Y, _ = make_data(n, sizes[0], sizes[-1], targets, dtype, seed=n)
    rtol = RTOL[dtype]
    assert_close(eng.forward(X), ref.forward(X), rtol, "forward")
    assert_close(eng.predict(X), ref.forward(X), rtol, "predict")
    dW, db = gradient_buffers(weights, biases)
    rW, rb = gradient_buffers(weights, biases)
    assert_close(eng.gradients(X, Y, None, dW, db), ref.gradients(X, Y, None, rW, rb), rtol)
    for i in range(len(dW)):
        assert_close(dW[i], rW[i], rtol, f"dW[{i}]")
        assert_close(db[i], rb[i], rtol, f"db[{i}]")
    assert np.abs(db[-1]).max() > 0  # (dead relu units may zero every dW on tiny shapes)


# (n_inputs, n_hidden, n_outputs, batch): widths around 8 and 16 lanes, one output (dot path),
# narrow outputs under wide inputs (transposed path), depth 512/513 (own-kernel limit),
# n_out * n_in around 4096 (packing limit of dZ @ W^T), m n k around 2^17 (OpenBLAS beyond)
# and, for forward products (both operands as stored, n >= 32), around 2^18; one sample,
# one feature.
KERNEL_SHAPES = [
    (1, 1, 1, 1), (2, 16, 1, 32), (1, 7, 1, 5), (3, 8, 2, 4), (5, 9, 3, 3), (16, 15, 1, 17),
    (17, 16, 7, 9), (15, 17, 8, 2), (31, 32, 9, 8), (33, 31, 16, 12), (16, 33, 17, 31),
    (64, 128, 10, 32), (64, 128, 10, 1), (128, 10, 1, 40), (40, 64, 1, 7),
    (512, 8, 3, 6), (513, 8, 3, 6), (8, 512, 3, 5), (4, 513, 2, 3),
    (64, 64, 64, 16), (65, 64, 65, 16), (32, 128, 16, 16), (64, 256, 4, 17),
    (96, 128, 24, 64), (128, 129, 10, 63), (200, 160, 130, 40), (256, 100, 3, 40),
    (64, 64, 8, 32), (65, 64, 8, 32),
    (64, 128, 10, 31), (64, 129, 10, 32), (128, 128, 10, 16), (128, 64, 10, 33),
    (64, 31, 32, 132), (64, 32, 31, 128),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("hidden", ["tanh", "relu"])  # relu: fused into the products
@pytest.mark.parametrize("shape", KERNEL_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_kernel_shapes_match_reference(shape, hidden, dtype, isa):
    n_in, n_hidden, n_out, n = shape
    check_against_reference([n_in, n_hidden, n_out], n, [hidden, "identity"], "mse", "dense",
                            dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("sizes,n", [([65, 64, 65, 3], 16), ([300, 200, 130, 4], 40),
                                     ([5, 6, 7, 2], 1)])
def test_relu_stacks_match_reference(sizes, n, dtype, isa):
    """relu after relu: the backward mask of a relu layer applied by the own kernel or after an
    OpenBLAS product (shapes past its limits), and a relu output layer."""
    check_against_reference(sizes, n, ["relu", "relu", "identity"], "mse", "dense", dtype)
    check_against_reference(sizes, n, ["relu", "tanh", "relu"], "mse", "dense", dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("opt", ["sgd", "sgd_momentum", "sgd_nesterov", "sgd_wd"])
def test_small_workload_epochs_match_reference(opt, dtype, isa):
    """The issue's tiny/small workloads in miniature: bce and cross_entropy, two epochs."""
    for sizes, acts, loss, targets in [([2, 16, 1], ["tanh", "sigmoid"], "bce", "binary"),
                                       ([64, 128, 10], ["relu", "softmax"], "cross_entropy",
                                        "labels")]:
        eng, weights, biases, ref, ref_w, ref_b = make_pair(sizes, acts, loss, dtype)
        X, Y, _ = make_data(100, sizes[0], sizes[-1], targets, dtype)
        orders = [np.arange(100, dtype=np.int64)] * 2
        got = run_epochs(eng, weights, biases, X, Y, None, orders, 32, opt)
        want = run_epochs(ref, ref_w, ref_b, X, Y, None, orders, 32, opt)
        rtol = 1e-6 if dtype == np.float64 else 1e-4
        assert_close(got[0], want[0], rtol, "epoch losses")
        for i, (a, b) in enumerate(zip(weights + biases, ref_w + ref_b)):
            assert_close(a, b, rtol, f"parameter {i}")


def one_layer(code, loss, n, dtype=np.float32):
    """An engine whose output is f(X) itself: one layer, W = I, b = 0."""
    return CORE[dtype]([np.eye(n, dtype=dtype)], [np.zeros(n, dtype)], [code], loss)


def _expit(z):
    """The logistic function in float64, stable on both sides (no scipy needed)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def test_float32_math_accuracy(isa):
    z = np.concatenate([np.linspace(-87, 87, 20001), np.linspace(-1e-3, 1e-3, 2001),
                        [0.0, -0.0, 1e-30, -1e-30, 7.9, 8.0, -9.0]]).astype(np.float32)
    zd = z.astype(np.float64)
    col = z.reshape(-1, 1)

    def ulps(got, want):
        return np.abs(got - want) / np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)

    assert ulps(one_layer(2, 0, 1).forward(col).ravel(), np.tanh(zd)).max() <= 8
    assert ulps(one_layer(1, 0, 1).forward(col).ravel(), _expit(zd)).max() <= 4
    # beyond the normal range: limits, no overflow, NaN propagates
    extreme = np.array([[-1e4], [-100.0], [100.0], [1e4], [np.inf], [-np.inf], [np.nan]],
                       np.float32)
    t = one_layer(2, 0, 1).forward(extreme).ravel()
    s = one_layer(1, 0, 1).forward(extreme).ravel()
    np.testing.assert_array_equal(t[:6], [-1, -1, 1, 1, 1, -1])
    np.testing.assert_allclose(s[:6], [0, 0, 1, 1, 1, 0], atol=1e-30)
    assert np.isnan(t[6]) and np.isnan(s[6])
    # softmax (exp of z - max) and the bce loss (log1p(exp(-|z|)))
    X = (np.random.default_rng(0).standard_normal((500, 6)) * 30).astype(np.float32)
    want = np.exp(X - X.max(axis=1, keepdims=True))
    want /= want.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(one_layer(8, 4, 6).forward(X), want, rtol=1e-5, atol=1e-7)
    zb = np.linspace(-60, 60, 4001).astype(np.float32).reshape(-1, 1)
    for y in (0.0, 1.0):
        Y = np.full_like(zb, y)
        zz = zb.astype(np.float64)
        want = np.mean(np.maximum(zz, 0) - zz * y + np.log1p(np.exp(-np.abs(zz))))
        assert abs(one_layer(1, 3, 1).loss(zb, Y, None) - want) <= 1e-6 * want


def test_kernel_isa_selection():
    assert ISAS[0] == "x86-64" and core.build_info()["kernels_isa"] == ISAS[-1]
    with pytest.raises(ValueError, match="unknown or unsupported"):
        core._set_kernel_isa("sse9")
    assert core.build_info()["kernels_isa"] == ISAS[-1]


# ---------------------------------------------------------------------------------- predict

@pytest.fixture
def converter():
    """Registers gdcore._validation.features as predict's converter for the test."""
    from gdcore import _validation
    previous = core.get_input_converter()
    core.set_input_converter(_validation.features)
    yield _validation.features
    core.set_input_converter(previous)


@pytest.fixture
def no_converter():
    previous = core.get_input_converter()
    core.set_input_converter(None)
    yield
    core.set_input_converter(previous)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_predict_fast_path_equals_forward(dtype):
    eng, *_ = make_pair([6, 9, 3], ["relu", "softmax"], "cross_entropy", dtype)
    X, _, _ = make_data(50, 6, 3, "labels", dtype)
    out = eng.predict(X)
    assert out.dtype == dtype and out.shape == (50, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, eng.forward(X))
    one = eng.predict(X[7])  # a 1-D row is one sample
    assert one.shape == (1, 3)
    np.testing.assert_array_equal(one, eng.forward(X[7:8]))
    big = np.tile(X, (100, 1))  # past the stack scratch: a buffer of its own, GIL released
    np.testing.assert_array_equal(eng.predict(big), eng.forward(big))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_predict_converts_through_the_registered_converter(dtype, converter):
    eng, *_ = make_pair([4, 5, 2], ["tanh", "identity"], "mse", dtype)
    X, _, _ = make_data(6, 4, 2, "dense", dtype)
    want = eng.forward(X)
    other = np.float64 if dtype == np.float32 else np.float32
    for x in (X.tolist(), X.astype(other), np.asfortranarray(X), X[0].tolist()):
        got = eng.predict(x)
        assert got.dtype == dtype
        assert_close(got, want[: len(got)], RTOL[np.float32])
    calls = []

    def counting(X, n_inputs, dtype):
        calls.append((n_inputs, dtype))
        return converter(X, n_inputs, dtype)

    core.set_input_converter(counting)
    eng.predict(X)                 # fast path: the converter is not called
    eng.predict(X.tolist())
    assert calls == [(4, np.dtype(dtype))]
    core.set_input_converter(converter)
    bad = X.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        eng.predict(bad)
    with pytest.raises(ValueError, match="features"):
        eng.predict(X[:, :3].copy())
    with pytest.raises(ValueError, match="empty"):
        eng.predict(X[:0])


def test_predict_without_a_converter_checks_strictly(no_converter):
    eng, *_ = make_pair([4, 5, 2], ["tanh", "identity"], "mse", np.float32)
    X, _, _ = make_data(6, 4, 2, "dense", np.float32)
    np.testing.assert_array_equal(eng.predict(X[1]), eng.forward(X[1:2]))
    with pytest.raises(TypeError, match="X must be a float32 array"):
        eng.predict(X.astype(np.float64))
    with pytest.raises(TypeError, match="X must be a numpy.ndarray"):
        eng.predict(X.tolist())
    bad = X.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="finite"):
        eng.predict(bad)
    with pytest.raises(ValueError, match="at least one row"):
        eng.predict(X[:0])
    with pytest.raises(TypeError, match="callable"):
        core.set_input_converter(3)


def test_predict_from_many_threads_and_during_training():
    """Concurrent predictions never raise and never mix up results; a training call on the
    same engine meanwhile is waited for."""
    eng, weights, biases, args = long_epoch(np.float64, repeats=200)
    X = args[0]
    rows = [np.ascontiguousarray(X[i]) for i in range(8)]
    want = [eng.forward(X[i:i + 1]) for i in range(8)]
    big = np.tile(X, (40, 1))
    want_big = eng.forward(big)
    errors = []

    def predict(i):
        try:
            for _ in range(300):
                np.testing.assert_array_equal(eng.predict(rows[i]), want[i])
                if i % 4 == 0:
                    np.testing.assert_array_equal(eng.predict(big), want_big)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=predict, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]

    # predictions while an epoch runs: no RuntimeError, finite outputs of the right shape
    results = []
    trainer = threading.Thread(target=lambda: eng.train_epoch(*args))
    trainer.start()
    while trainer.is_alive() and len(results) < 200:
        results.append(eng.predict(rows[0]))
    trainer.join()
    assert all(r.shape == (1, 4) and np.isfinite(r).all() for r in results)
    np.testing.assert_array_equal(eng.predict(rows[0]), eng.forward(X[:1]))
