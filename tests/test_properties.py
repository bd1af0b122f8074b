"""Property-based tests (hypothesis): random architectures, activations, losses, dtypes, data.

On each backend: outputs have the right shape and are finite, softmax rows sum to 1, sigmoid
outputs lie in [0, 1], losses are finite and non-negative, backpropagation matches finite
differences for smooth activations (float64), and one epoch of training keeps everything
finite. Across backends (when the compiled core is built): forward, loss, gradients and one
epoch of fit agree, float64 to ~1e-9 and float32 to 1e-4 relative.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import gdcore as gd
from gdcore import _backend

HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu"]
SMOOTH = ["identity", "sigmoid", "tanh", "elu", "softplus", "gelu"]
# every loss with the output activations it may use
OUTPUTS = {
    "mse": HIDDEN + ["softmax"],
    "mae": HIDDEN + ["softmax"],
    "huber": HIDDEN + ["softmax"],
    "bce": ["sigmoid"],
    "cross_entropy": ["softmax"],
}
BACKENDS = ["numpy", "cpp"]
CORE_BUILT = _backend._core_engines_available()

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def using(name):
    """Networks created inside are built on backend ``name``."""
    return gd.use_backend(name)


def _bounded(shape, low=-2.0, high=2.0):
    return st.lists(st.floats(low, high, allow_nan=False, allow_subnormal=False),
                    min_size=int(np.prod(shape)), max_size=int(np.prod(shape))).map(
        lambda v: np.array(v, dtype=np.float64).reshape(shape))


@st.composite
def problems(draw, losses=tuple(OUTPUTS), hidden=tuple(HIDDEN), dtypes=("float32", "float64")):
    """A network description and data for it: (spec dict, X, y, sample_weight or None)."""
    loss = draw(st.sampled_from(losses))
    out = draw(st.sampled_from([a for a in OUTPUTS[loss] if a in hidden or a in
                                ("sigmoid", "softmax")]))
    n_layers = draw(st.integers(1, 3))
    sizes = draw(st.lists(st.integers(1, 8), min_size=n_layers + 1, max_size=n_layers + 1))
    if out == "softmax":
        sizes[-1] = max(sizes[-1], 2)
    spec = dict(sizes=sizes, activation=draw(st.sampled_from(hidden)), output_activation=out,
                loss=loss, dtype=draw(st.sampled_from(dtypes)), seed=draw(st.integers(0, 2**16)))
    n = draw(st.integers(1, 10))
    X = draw(_bounded((n, sizes[0])))
    k = sizes[-1]
    if loss == "cross_entropy":
        if draw(st.booleans()):
            y = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
        else:
            raw = draw(_bounded((n, k), 0.01, 1.0))
            y = raw / raw.sum(axis=1, keepdims=True)
    elif loss == "bce":
        y = draw(_bounded((n, k), 0.0, 1.0))
    else:
        y = draw(_bounded((n, k), -3.0, 3.0))
    w = draw(st.one_of(st.none(), _bounded((n,), 0.1, 2.0)))
    return spec, X, y, w


def _net(spec):
    return gd.Network.from_sizes(**spec)


def _tolerances(dtype):
    return (1e-9, 1e-10) if dtype == "float64" else (1e-4, 1e-5)


def _close(a, b, dtype, what):
    """Equal to rtol relative to the larger array's scale (plus atol)."""
    rtol, atol = _tolerances(dtype)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0), 1.0)
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale + atol, err_msg=what)


# ------------------------------------------------------------------- one backend at a time

@pytest.mark.parametrize("backend_name", BACKENDS)
@SETTINGS
@given(problem=problems())
def test_outputs_and_losses_are_well_formed(backend_name, problem):
    if backend_name == "cpp" and not CORE_BUILT:
        pytest.skip("the compiled core is not built")
    spec, X, y, w = problem
    with using(backend_name):
        net = _net(spec)
    out = net.forward(X)
    assert out.shape == (X.shape[0], spec["sizes"][-1]) and out.dtype == np.dtype(spec["dtype"])
    assert np.isfinite(out).all()
    if spec["output_activation"] == "softmax":
        assert (out >= 0).all() and (out <= 1).all()
        np.testing.assert_allclose(out.sum(axis=1), 1.0,
                                   rtol=0, atol=1e-5 if spec["dtype"] == "float32" else 1e-12)
    if spec["output_activation"] == "sigmoid":
        assert (out >= 0).all() and (out <= 1).all()
    loss = net.loss(X, y, sample_weight=w)
    assert np.isfinite(loss) and loss >= 0.0
    grads = net.gradients(X, y, sample_weight=w)
    assert [g.shape for pair in grads for g in pair] == [p.shape for p in net.parameters()]
    assert all(np.isfinite(g).all() for pair in grads for g in pair)
    # a 1-D X is one sample
    np.testing.assert_array_equal(net.forward(X[0]), net.forward(X[:1]))


@pytest.mark.parametrize("backend_name", BACKENDS)
@SETTINGS
@given(problem=problems(losses=("mse", "huber", "bce", "cross_entropy"), hidden=tuple(SMOOTH),
                        dtypes=("float64",)))
def test_backpropagation_matches_finite_differences(backend_name, problem):
    if backend_name == "cpp" and not CORE_BUILT:
        pytest.skip("the compiled core is not built")
    spec, X, y, w = problem
    with using(backend_name):
        net = _net(spec)
    if spec["loss"] == "huber":  # stay away from huber's kink in the second derivative
        assume(np.abs(np.abs(net.forward(X) - y) - 1.0).min() > 1e-3)
    grads = net.gradients(X, y)
    largest = max(np.abs(g).max() for pair in grads for g in pair)
    assume(largest > 1e-4)  # relative errors of a vanishing gradient measure rounding only
    assert gd.check_gradients(net, X, y) < 1e-5


@pytest.mark.parametrize("backend_name", BACKENDS)
@SETTINGS
@given(problem=problems(), batch_size=st.integers(1, 12),
       optimizer=st.sampled_from(["sgd", "momentum", "adam", "adamw", "rmsprop"]))
def test_one_epoch_keeps_everything_finite(backend_name, problem, batch_size, optimizer):
    if backend_name == "cpp" and not CORE_BUILT:
        pytest.skip("the compiled core is not built")
    spec, X, y, w = problem
    with using(backend_name):
        net = _net(spec)
    opt = _optimizer(optimizer)
    history = net.fit(X, y, optimizer=opt, epochs=1, batch_size=batch_size, sample_weight=w,
                      seed=0)
    assert history.epochs == 1 and np.isfinite(history.loss[0]) and history.loss[0] >= 0
    assert opt.steps_done == -(-X.shape[0] // min(batch_size, X.shape[0]))
    assert all(np.isfinite(p).all() for p in net.parameters())


def _optimizer(name):
    return {"sgd": lambda: gd.SGD(lr=0.05), "momentum": lambda: gd.SGD(lr=0.05, momentum=0.9),
            "adam": lambda: gd.Adam(lr=0.01), "adamw": lambda: gd.AdamW(lr=0.01),
            "rmsprop": lambda: gd.RMSprop(lr=0.005, momentum=0.5)}[name]()


# ------------------------------------------------------------------------ across backends

needs_core = pytest.mark.skipif(not CORE_BUILT, reason="the compiled core is not built")


def _pair(spec):
    with using("numpy"):
        ref = _net(spec)
    with using("cpp"):
        core = _net(spec)
    assert ref.backend == "numpy" and core.backend == "cpp"
    for p, q in zip(ref.parameters(), core.parameters()):
        np.testing.assert_array_equal(p, q)  # the same seed gives the same start
    return ref, core


@needs_core
@SETTINGS
@given(problem=problems())
def test_backends_agree_on_forward_loss_and_gradients(problem):
    spec, X, y, w = problem
    ref, core = _pair(spec)
    dtype = spec["dtype"]
    _close(core.forward(X), ref.forward(X), dtype, "forward")
    _close(core.loss(X, y, sample_weight=w), ref.loss(X, y, sample_weight=w), dtype, "loss")
    for i, ((cw, cb), (rw, rb)) in enumerate(zip(core.gradients(X, y, sample_weight=w),
                                                  ref.gradients(X, y, sample_weight=w))):
        _close(cw, rw, dtype, f"dW{i}")
        _close(cb, rb, dtype, f"db{i}")


@needs_core
@SETTINGS
@given(problem=problems(), batch_size=st.integers(1, 12),
       optimizer=st.sampled_from(["sgd", "momentum", "adam", "adamw", "rmsprop"]))
def test_backends_agree_on_one_epoch_of_fit(problem, batch_size, optimizer):
    spec, X, y, w = problem
    # Adam and RMSprop divide by sqrt(v): in float32, rounding noise of a gradient that is
    # nearly zero becomes a step of order lr, so the normalising optimizers are compared in
    # float64 only.
    assume(spec["dtype"] == "float64" or optimizer in ("sgd", "momentum"))
    ref, core = _pair(spec)
    opt_ref, opt_core = _optimizer(optimizer), _optimizer(optimizer)
    h_ref = ref.fit(X, y, optimizer=opt_ref, epochs=1, batch_size=batch_size, sample_weight=w,
                    seed=3)
    h_core = core.fit(X, y, optimizer=opt_core, epochs=1, batch_size=batch_size,
                      sample_weight=w, seed=3)
    dtype = spec["dtype"]
    _close(h_core.loss, h_ref.loss, dtype, "epoch loss")
    assert opt_core.steps_done == opt_ref.steps_done
    for i, (p, q) in enumerate(zip(core.parameters(), ref.parameters())):
        _close(p, q, dtype, f"parameter {i}")
    for i, (s, t) in enumerate(zip(opt_core.state, opt_ref.state)):
        _close(s, t, dtype, f"optimizer state {i}")
