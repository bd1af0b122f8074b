"""The engines' precondition checks: bad arguments raise and change nothing.

The compiled core: a wrong dtype, a non-array, or a non-C-contiguous/unaligned layout is a
``TypeError`` (the Python layer converts; the engine never does); a wrong shape, an index or label
out of range, a bad hyper-parameter or a read-only output buffer is a ``ValueError``. The
reference engine raises errors of its own wording. Each engine's messages are pinned on that
engine (``core_only`` / ``reference_only``).
"""
import numpy as np
import pytest

from gdcore import _backend
from gdcore.reference.codes import ACTIVATIONS, LOSSES, OPTIMIZERS
from helpers import (OPTIMIZER_CASES, core_only, gradient_buffers, make_hyper, make_net,
                     make_params, make_samples, make_state, reference_only)


def small_engine(factory, dtype=np.float64, loss="cross_entropy", out="softmax"):
    weights, biases = make_params([3, 4, 2], dtype)
    eng = factory(weights, biases, [ACTIVATIONS["relu"], ACTIVATIONS[out]], LOSSES[loss])
    return eng, weights, biases


def construct(weights, biases, acts=(3, 0), loss=0, cls=None):
    return (cls or _backend._core.EngineF64)(weights, biases, list(acts), loss)


@core_only
def test_core_construction_errors(engine_factory):
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
        construct(W, b, cls=engine_factory.engine_class(np.float32))


@core_only
def test_core_data_errors(engine_factory):
    eng, weights, biases = small_engine(engine_factory)
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
    mse, *_ = small_engine(engine_factory, loss="mse", out="identity")
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


@core_only
def test_core_train_epoch_errors_leave_everything_untouched(engine_factory):
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

    with pytest.raises(ValueError, match=r"order must hold row indices of X in \[0, 6\)"):
        call(order=np.array([0, 1, 2, 3, 4, 6]))  # the bad index comes last
    with pytest.raises(ValueError, match="order must hold row indices"):
        call(order=np.array([-1, 0]))
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


# ---------------------------------------------------------------------------- reference engine

@reference_only
def test_reference_construction_errors(engine_factory):
    W = [np.zeros((3, 4)), np.zeros((4, 2))]
    b = [np.zeros(4), np.zeros(2)]
    mse, tanh, ident = LOSSES["mse"], ACTIVATIONS["tanh"], ACTIVATIONS["identity"]
    with pytest.raises(ValueError, match="equal length"):
        engine_factory(W, b[:1], [tanh, ident], mse)
    with pytest.raises(TypeError, match="float32 or float64"):
        engine_factory([w.astype(np.int64) for w in W], b, [tanh, ident], mse)
    with pytest.raises(TypeError, match=r"biases\[1\]"):
        engine_factory(W, [b[0], b[1].astype(np.float32)], [tanh, ident], mse)
    with pytest.raises(ValueError, match=r"weights\[1\]"):
        engine_factory([W[0], np.zeros((5, 2))], b, [tanh, ident], mse)
    with pytest.raises(ValueError, match=r"biases\[0\]"):
        engine_factory(W, [np.zeros(3), b[1]], [tanh, ident], mse)
    with pytest.raises(ValueError, match="C-contiguous"):
        engine_factory([np.zeros((4, 3)).T, W[1]], b, [tanh, ident], mse)
    with pytest.raises(ValueError, match="activation code"):
        engine_factory(W, b, [tanh, 42], mse)
    with pytest.raises(ValueError, match="loss code"):
        engine_factory(W, b, [tanh, ident], 42)
    with pytest.raises(ValueError, match="sigmoid"):
        engine_factory(W, b, [tanh, ident], LOSSES["bce"])
    with pytest.raises(ValueError, match="softmax"):
        engine_factory(W, b, [tanh, ACTIVATIONS["sigmoid"]], LOSSES["cross_entropy"])


@reference_only
def test_reference_call_errors(engine_factory):
    weights, biases, engine = make_net(engine_factory, [3, 4, 2], ["tanh", "softmax"],
                                       "cross_entropy")
    X, Y, w = make_samples(5, 3, 2, "index")
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


@core_only
def test_core_engine_reports_its_activation_codes(engine_factory):
    """The compiled engine's ``activations`` property: the codes it was built with."""
    from gdcore import _backend
    for cls, dtype in ((_backend._core.EngineF32, np.float32),
                       (_backend._core.EngineF64, np.float64)):
        engine = cls([np.ones((2, 3), dtype), np.ones((3, 1), dtype)],
                     [np.zeros(3, dtype), np.zeros(1, dtype)], [3, 0], 0)
        assert engine.activations == [3, 0]
