"""The engines' argument checks: bad arguments raise and change nothing, on both engines.

Both engines check only what keeps their memory accesses right (``csrc/bindings/checks.hpp``
and its twin ``gdcore/reference/checks.py``), with the same messages and the same stable
``code`` on each error (docs/design.md): a wrong type, dtype or layout is a ``TypeError``; a
wrong shape, an index or code out of range, a read-only output or a network whose structure
does not hold is a ``ValueError``. Values (finite, non-negative, hyper-parameter ranges) are
the public layer's to check (``gdcore._validation``).
"""
import contextlib

import numpy as np
import pytest

from gdcore import _backend
from gdcore.reference.codes import ACTIVATIONS, LOSSES, OPTIMIZERS
from helpers import OPTIMIZER_CASES, core_only, gradient_buffers, make_params, make_state


def small_engine(factory, dtype=np.float64, loss="cross_entropy", out="softmax"):
    weights, biases = make_params([3, 4, 2], dtype)
    eng = factory(weights, biases, [ACTIVATIONS["relu"], ACTIVATIONS[out]], LOSSES[loss])
    return eng, weights, biases


@contextlib.contextmanager
def raises(error, code, match):
    """pytest.raises, and the error's stable ``code``."""
    with pytest.raises(error, match=match) as info:
        yield info
    assert info.value.code == code, (info.value.code, code)


def test_construction_errors(engine_factory):
    W, b = make_params([3, 4, 2], np.float64)

    def construct(weights, biases, acts=(3, 0), loss=0):
        return engine_factory.engine_class(np.float64)(weights, biases, list(acts), loss)

    with raises(ValueError, "shape", "same length"):
        construct(W, b[:1])
    with raises(ValueError, "shape", "at least one"):
        construct([], [], ())
    with raises(TypeError, "type", "weights must be a list"):
        construct(W[0], b)
    with raises(TypeError, "dtype", r"weights\[0\] must be a float64"):
        construct([W[0].astype(np.float32), W[1]], b)
    with raises(TypeError, "type", r"weights\[1\] must be a numpy.ndarray"):
        construct([W[0], W[1].tolist()], b)
    with raises(TypeError, "layout", r"weights\[0\] must be C-contiguous"):
        construct([np.asfortranarray(W[0]), W[1]], b)
    with raises(ValueError, "shape", r"weights\[1\] must have 4 rows"):
        construct([W[0], np.zeros((3, 2))], b)
    with raises(ValueError, "shape", r"biases\[0\] must have shape \(4,\)"):
        construct(W, [np.zeros(3), b[1]])
    with raises(ValueError, "shape", r"weights\[0\] must be a float64 array of shape"):
        construct([np.zeros(12), W[1]], b)
    read_only = W[0].copy()
    read_only.flags.writeable = False
    with raises(ValueError, "readonly", r"weights\[0\] must be writeable"):
        construct([read_only, W[1]], b)
    with raises(ValueError, "index", r"activations\[1\] must be an activation code"):
        construct(W, b, acts=(3, 9))
    with raises(TypeError, "type", r"activations\[0\] must be an int"):
        construct(W, b, acts=("relu", 0))
    with raises(ValueError, "structure", "softmax is only allowed on the output layer"):
        construct(W, b, acts=(8, 8), loss=LOSSES["cross_entropy"])
    with raises(ValueError, "index", "loss must be a loss code"):
        construct(W, b, loss=len(LOSSES))  # one past the last code
    with raises(ValueError, "structure", "'bce' needs a 'sigmoid' output"):
        construct(W, b, acts=(3, 0), loss=LOSSES["bce"])
    with raises(ValueError, "structure", "'cross_entropy' needs a 'softmax' output"):
        construct(W, b, acts=(3, 1), loss=LOSSES["cross_entropy"])
    with raises(TypeError, "dtype", "float32"):  # the float32 engine over float64 arrays
        engine_factory.engine_class(np.float32)(W, b, [3, 0], 0)


def test_data_errors(engine_factory):
    eng, weights, biases = small_engine(engine_factory)
    X = np.zeros((5, 3))
    Y = np.array([0, 1, 1, 0, 1], dtype=np.int64)
    with raises(TypeError, "dtype", "X must be a float64 array"):
        eng.forward(X.astype(np.float32))
    with raises(TypeError, "type", "X must be a numpy.ndarray"):
        eng.forward(X.tolist())
    with raises(ValueError, "shape", r"X must have shape \(n_samples, 3\), got \(5, 4\)"):
        eng.forward(np.zeros((5, 4)))
    with raises(ValueError, "shape", "X must be a float64 array of shape"):
        eng.forward(np.zeros(3))
    with raises(TypeError, "layout", "X must be C-contiguous"):
        eng.forward(np.zeros((5, 6))[:, ::2])
    with raises(TypeError, "layout", "X must be C-contiguous"):
        eng.forward(np.zeros((3, 5)).T)
    with raises(ValueError, "shape", "X must have at least one row"):
        eng.loss(np.zeros((0, 3)), Y[:0], None)
    with raises(ValueError, "index", r"class indices in \[0, 2\), got 2 at row 3"):
        eng.loss(X, np.array([0, 1, 1, 2, 0]), None)
    with raises(ValueError, "index", "class indices"):
        eng.loss(X, np.array([0, -1, 1, 1, 0]), None)
    with raises(TypeError, "dtype", "int64 class indices"):
        eng.loss(X, Y.astype(np.int32), None)
    with raises(ValueError, "shape", r"Y must have shape \(5,\)"):
        eng.loss(X, Y[:4], None)
    with raises(ValueError, "shape", r"Y must have shape \(5, 2\)"):
        eng.loss(X, np.zeros((5, 3)), None)
    with raises(ValueError, "shape", r"sample_weight must have shape \(5,\)"):
        eng.loss(X, Y, np.ones(4))
    with raises(TypeError, "dtype", "sample_weight must be a float64"):
        eng.loss(X, Y, np.ones(5, dtype=np.float32))
    mse, *_ = small_engine(engine_factory, loss="mse", out="identity")
    with raises(TypeError, "dtype", "Y must be a float64 array"):
        mse.loss(X, Y, None)  # class indices are for cross_entropy only

    dW, db = gradient_buffers(weights, biases)
    with raises(ValueError, "shape", "dW must hold 2 arrays"):
        eng.gradients(X, Y, None, dW[:1], db)
    with raises(ValueError, "shape", r"db\[1\] must have shape \(2,\)"):
        eng.gradients(X, Y, None, dW, [db[0], np.zeros(3)])
    frozen = dW[0].copy()
    frozen.flags.writeable = False
    with raises(ValueError, "readonly", r"dW\[0\] must be writeable"):
        eng.gradients(X, Y, None, [frozen, dW[1]], db)
    with raises(TypeError, "layout", r"dW\[1\] must be C-contiguous"):
        eng.gradients(X, Y, None, [dW[0], np.asfortranarray(np.zeros((4, 2)))], db)


def test_train_epoch_errors_leave_everything_untouched(engine_factory):
    eng, weights, biases = small_engine(engine_factory)
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

    with raises(ValueError, "index", r"order must hold row indices of X in \[0, 6\)"):
        call(order=np.array([0, 1, 2, 3, 4, 6]))  # the bad index comes last
    with raises(ValueError, "index", "order must hold row indices"):
        call(order=np.array([-1, 0]))
    with raises(TypeError, "dtype", "order must be a int64"):
        call(order=order.astype(np.int32))
    with raises(ValueError, "index", "batch_size must be at least 1"):
        call(batch_size=0)
    with raises(TypeError, "type", "batch_size must be an int"):
        call(batch_size=2.0)
    with raises(TypeError, "type", "batch_size must be an int"):
        call(batch_size=True)
    with raises(ValueError, "index", "optimizer must be an optimizer code"):
        call(optimizer=len(OPTIMIZERS))
    with raises(ValueError, "shape", r"hyper must have shape \(12,\)"):
        call(hyper=hyper[:7].copy())
    with raises(TypeError, "dtype", "hyper must be a float64"):
        call(hyper=hyper.astype(np.float32))
    with raises(ValueError, "shape", "state must hold 4 arrays"):
        call(state=state[:3])
    with raises(ValueError, "shape", r"state\[1\] must have shape \(4,\)"):
        call(state=[state[0], np.zeros(5), state[2], state[3]])
    with raises(ValueError, "shape", r"state must hold 8 arrays \(2 per parameter for adam"):
        call(optimizer=OPTIMIZERS["adam"])
    with raises(TypeError, "dtype", "step must be a int64"):
        call(step=np.zeros(1, dtype=np.int32))
    with raises(ValueError, "shape", r"step must have shape \(1,\)"):
        call(step=np.zeros(2, dtype=np.int64))
    frozen = step.copy()
    frozen.flags.writeable = False
    with raises(ValueError, "readonly", "step must be writeable"):
        call(step=frozen)

    for p, old in zip(weights + biases, before):
        np.testing.assert_array_equal(p, old)
    assert step[0] == 0 and all(not s.any() for s in state)
    call()  # and the engine still works
    assert step[0] == 3


@core_only
def test_num_threads_and_build_info(engine_factory):
    core = _backend._core
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


@core_only
def test_core_engine_reports_its_activation_codes(engine_factory):
    """The compiled engine's ``activations`` property: the codes it was built with."""
    from gdcore import _backend
    for cls, dtype in ((_backend._core.EngineF32, np.float32),
                       (_backend._core.EngineF64, np.float64)):
        engine = cls([np.ones((2, 3), dtype), np.ones((3, 1), dtype)],
                     [np.zeros(3, dtype), np.zeros(1, dtype)], [3, 0], 0)
        assert engine.activations == [3, 0]
