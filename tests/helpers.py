"""Helpers shared by the tests (imported by conftest.py and by test modules as ``helpers``).

- :func:`tolerance`, :data:`RTOL`, :func:`assert_close`: how close two results must be.
- :func:`central_differences`: numerical gradients, the one finite-difference helper.
- :class:`EngineFactory`: builds the engine of one kind (``"cpp"``: ``gdcore._core.EngineF32``
  / ``EngineF64``; ``"numpy"``: ``gdcore.reference.engine.Engine``) over the caller's arrays;
  conftest's ``engine_factory`` fixture hands one out per engine.
- Engine-level data: parameters, data sets, optimizer hyper-parameters and state.
- :func:`compare_fit_many`: fit_many against one fit per network, bit for bit.
"""
from __future__ import annotations

import functools
import math

import numpy as np

import gdcore as gd
from gdcore import _backend
from gdcore.reference.codes import ACTIVATIONS, HYPER, LOSSES, OPTIMIZERS
from gdcore.reference.engine import Engine as RefEngine
from gdcore.reference.optimizers import OptimizerConfig, optimizer_update

ENGINES = ["numpy", "cpp"]
DTYPES = [np.float32, np.float64]
HIDDEN = [a for a in ACTIVATIONS if a != "softmax"]

# ------------------------------------------------------------------------------- tolerance

RTOL = {np.float32: 1e-4, np.float64: 1e-9}


def tolerance(dtype):
    """Comparison tolerance for results computed in ``dtype``."""
    return 1e-4 if np.dtype(dtype) == np.float32 else 1e-9


def assert_close(actual, expected, rtol, what=""):
    """Relative agreement, measured against the largest entry of ``expected``."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = np.max(np.abs(expected)) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


# ------------------------------------------------------------------------------- gradients

def central_differences(f, params, eps=1e-6):
    """d f() / d p for every entry of every array in ``params``, by central differences.

    Each entry is perturbed in place (and restored), so ``f`` must read the arrays themselves:
    an engine's loss over its parameter views, or a function of the very arrays passed.
    """
    numeric = []
    for P in params:
        G = np.zeros(P.shape, dtype=np.float64)
        for idx in np.ndindex(P.shape):
            saved = P[idx]
            P[idx] = saved + eps
            fp = f()
            P[idx] = saved - eps
            fm = f()
            P[idx] = saved
            G[idx] = (fp - fm) / (2 * eps)
        numeric.append(G.astype(P.dtype, copy=False))
    return numeric


# ------------------------------------------------------------------------------- engines

def core_available() -> bool:
    return _backend._core_engines_available()


class EngineFactory:
    """Builds engines of one kind over the caller's arrays (no copies).

    ``factory(weights, biases, activations, loss)`` takes activation and loss codes as given
    (names are translated, anything else is passed through unchanged so that the engine's own
    checks see it).
    """

    def __init__(self, kind: str):
        self.kind = kind

    @property
    def is_core(self) -> bool:
        return self.kind == "cpp"

    def engine_class(self, dtype):
        if self.kind == "numpy":
            return functools.partial(RefEngine, dtype=np.dtype(dtype))
        core = _backend._core
        return core.EngineF32 if np.dtype(dtype) == np.float32 else core.EngineF64

    def __call__(self, weights, biases, activations, loss, dtype=None):
        acts = [ACTIVATIONS.get(a, a) if isinstance(a, str) else a for a in activations]
        if isinstance(loss, str):
            loss = LOSSES.get(loss, loss)
        if dtype is None:
            dtype = weights[0].dtype if isinstance(weights, list) and weights and \
                isinstance(weights[0], np.ndarray) else np.float64
        return self.engine_class(dtype)(weights, biases, acts, loss)

    def __repr__(self):
        return f"EngineFactory({self.kind!r})"


# ------------------------------------------------------------------------------- parameters, data

def make_params(sizes, dtype, seed=0):
    """Weights (n_in, n_out) and biases of a network with these layer sizes."""
    rng = np.random.default_rng(seed)
    weights = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype)
               for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [(0.1 * rng.standard_normal(b)).astype(dtype) for b in sizes[1:]]
    return weights, biases


def make_pair(factory, sizes, activations, loss, dtype, seed=0):
    """The factory's engine and the reference engine over two identical copies of the
    parameters: ``(engine, weights, biases, reference, ref_weights, ref_biases)``."""
    weights, biases = make_params(sizes, dtype, seed)
    codes = [ACTIVATIONS[a] for a in activations]
    ref_w, ref_b = [w.copy() for w in weights], [b.copy() for b in biases]
    return (factory(weights, biases, codes, LOSSES[loss]), weights, biases,
            RefEngine(ref_w, ref_b, codes, LOSSES[loss]), ref_w, ref_b)


def make_data(n, n_in, n_out, targets, dtype, seed=1, weighted=False):
    """X, Y, sample weights (None unless ``weighted``); targets: labels, probs, binary, dense."""
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


def make_net(factory, sizes, acts, loss, dtype=np.float64, seed=0):
    """Parameters drawn as the reference engine's tests draw them, and the factory's engine."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(scale=1.0 / math.sqrt(n_in), size=(n_in, n_out)).astype(dtype)
               for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(scale=0.2, size=n_out).astype(dtype) for n_out in sizes[1:]]
    return weights, biases, factory(weights, biases, [ACTIVATIONS[a] for a in acts],
                                    LOSSES[loss])


def make_samples(n, n_in, n_out, target, dtype=np.float64, seed=1):
    """X, Y and sample weights; target: real, binary, index or (else) probability rows."""
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


def gradient_buffers(weights, biases):
    return [np.full_like(w, np.nan) for w in weights], [np.full_like(b, np.nan) for b in biases]


def zeros_like_params(weights, biases):
    return [np.zeros_like(W) for W in weights], [np.zeros_like(b) for b in biases]


# ------------------------------------------------------------------------------- optimizers

HYPER_DEFAULTS = dict(lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, beta1=0.9,
                      beta2=0.999, eps=1e-8, alpha=0.99, eta_minus=0.5, eta_plus=1.2,
                      step_size_min=1e-6, step_size_max=50.0)


def make_hyper(**values):
    """The engines' float64 hyper-parameter vector, by name (codes.HYPER), defaults above."""
    values = {**HYPER_DEFAULTS, **values}
    return np.array([float(values[name]) for name in HYPER], dtype=np.float64)


# name -> (code, hyper)
OPTIMIZER_CASES = {
    "sgd": (OPTIMIZERS["sgd"], list(make_hyper(lr=0.1))),
    "sgd_momentum": (OPTIMIZERS["sgd"], list(make_hyper(lr=0.05, momentum=0.9))),
    "sgd_nesterov": (OPTIMIZERS["sgd"], list(make_hyper(lr=0.05, momentum=0.9, nesterov=1))),
    "sgd_wd": (OPTIMIZERS["sgd"], list(make_hyper(lr=0.05, momentum=0.5, weight_decay=1e-2))),
    "adam": (OPTIMIZERS["adam"], list(make_hyper(lr=0.01, weight_decay=1e-3))),
    "adamw": (OPTIMIZERS["adamw"], list(make_hyper(lr=0.01, weight_decay=1e-2, beta1=0.8,
                                                   beta2=0.99))),
    "rmsprop": (OPTIMIZERS["rmsprop"], list(make_hyper(lr=0.01))),
    "rmsprop_momentum": (OPTIMIZERS["rmsprop"], list(make_hyper(lr=0.005, momentum=0.9,
                                                                weight_decay=1e-3, alpha=0.9))),
    "rprop": (OPTIMIZERS["rprop"], list(make_hyper(lr=0.01, eta_minus=0.4, eta_plus=1.3,
                                                   step_size_min=1e-4, step_size_max=0.05))),
}


def make_state(weights, biases, code, hyper):
    """Zeroed optimizer state: ``n_slots`` arrays per parameter, in parameter order
    (W0, b0, W1, b1, ...), each parameter's slots together."""
    params = [p for w, b in zip(weights, biases) for p in (w, b)]
    n_slots = OptimizerConfig.from_hyper(code, np.asarray(hyper)).n_slots()
    return [np.zeros_like(p) for p in params for _ in range(n_slots)]


def reference_step(code, params, grads, state, hyper, step):
    """One step of the reference rule on every parameter, as phase 4 of the reference
    ``train_epoch`` takes it: ``optimizer_update`` on each parameter in order with its
    ``n_slots`` state arrays, then ``step[0] = t``."""
    config = OptimizerConfig.from_hyper(code, np.asarray(hyper))
    n_slots = config.n_slots()
    t = int(step[0]) + 1
    for i, (p, g) in enumerate(zip(params, grads)):
        optimizer_update(config, t, p, g, state[i * n_slots:(i + 1) * n_slots])
    step[0] = t


def run_epochs(engine, weights, biases, X, Y, w, orders, batch_size, opt):
    """Train ``engine`` one epoch per order; returns the epoch losses, the state and step."""
    code, hyper = OPTIMIZER_CASES[opt]
    hyper = np.array(hyper, dtype=np.float64)
    state = make_state(weights, biases, code, hyper)
    step = np.zeros(1, dtype=np.int64)
    losses = [engine.train_epoch(X, Y, w, order, batch_size, code, hyper, state, step)
              for order in orders]
    return losses, state, step


# ------------------------------------------------------------------------------- markers
import pytest  # noqa: E402

#: The test is about the compiled core (its kernels, its messages, its threads) or compares it
#: against the reference engine, which it builds explicitly: run with the cpp engine only.
core_only = pytest.mark.parametrize("engine_factory", ["cpp"], indirect=True)
#: The test pins the reference engine's exact arithmetic or messages: the numpy engine only.
reference_only = pytest.mark.parametrize("engine_factory", ["numpy"], indirect=True)


def assert_same_params(a, b):
    """Two networks (or layers) hold bit-identical parameters."""
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)


# --- fit_many against fit (test_fit_many.py, test_train_lanes.py) ---------------------------

def assert_same_fit(net_a, opt_a, hist_a, net_b, opt_b, hist_b):
    for p, q in zip(net_a.parameters(), net_b.parameters()):
        assert np.array_equal(p, q)
    assert_same_history(hist_a, hist_b)
    if not isinstance(opt_a, gd.Optimizer):  # a name or None: fit made its own
        return
    assert len(opt_a.state) == len(opt_b.state)
    for s, t in zip(opt_a.state, opt_b.state):
        assert np.array_equal(s, t)
    assert opt_a.steps_done == opt_b.steps_done and opt_a.epochs_done == opt_b.epochs_done


def assert_same_history(hist_a, hist_b):
    for field in ("loss", "val_loss", "lr", "metrics", "epochs", "best_epoch", "monitor",
                  "converged", "diverged", "stop_reason", "backoffs", "events", "lr_found",
                  "backend"):
        a, b = getattr(hist_a, field), getattr(hist_b, field)
        assert a == b or (field == "events" and repr(a) == repr(b)), field
    assert (math.isnan(hist_a.start_loss) and math.isnan(hist_b.start_loss)) \
        or hist_a.start_loss == hist_b.start_loss


def compare_fit_many(make_nets, make_opts, X, y, **kwargs):
    """fit_many against one fit per network, from equal starting copies, bit for bit
    (parameters, optimizer state, history); returns the histories of fit_many."""
    alone_nets, alone_opts = make_nets(), make_opts()
    alone = [net.fit(X, y, optimizer=opt, **kwargs) for net, opt in zip(alone_nets, alone_opts)]
    nets, opts = make_nets(), make_opts()
    histories = gd.fit_many(nets, X, y, optimizers=opts, **kwargs)
    assert len(histories) == len(nets)
    for i in range(len(nets)):
        assert_same_fit(nets[i], opts[i], histories[i], alone_nets[i], alone_opts[i], alone[i])
    return histories
