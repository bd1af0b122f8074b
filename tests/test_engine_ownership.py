"""Buffer ownership, on both engines: an engine keeps views of the caller's parameter arrays
(never copies, never rebinds), updates them in place, and fills the gradient buffers it is
given; its outputs are new memory."""
import numpy as np
from numpy.testing import assert_allclose

from gdcore.reference.codes import ACTIVATIONS, LOSSES, OPTIMIZERS
from helpers import (OPTIMIZER_CASES, core_only, gradient_buffers, make_data, make_hyper,
                     make_net, make_pair, make_params, make_samples, make_state,
                     zeros_like_params)


@core_only
def test_parameters_are_views_updated_in_place(engine_factory):
    dtype = np.float32
    weights, biases = make_params([4, 5, 2], dtype)
    before = [(p.__array_interface__["data"][0], p.copy()) for p in weights + biases]
    eng = engine_factory(weights, biases, [ACTIVATIONS["relu"], ACTIVATIONS["identity"]],
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


def test_gradients_fill_the_callers_buffers(engine_factory):
    eng, weights, biases, *_ = make_pair(engine_factory, [3, 4, 2], ["tanh", "identity"], "mse",
                                         np.float64)
    X, Y, _ = make_data(6, 3, 2, "dense", np.float64)
    dW, db = gradient_buffers(weights, biases)
    addresses = [a.__array_interface__["data"][0] for a in dW + db]
    eng.gradients(X, Y, None, dW, db)
    assert [a.__array_interface__["data"][0] for a in dW + db] == addresses
    assert all(np.all(np.isfinite(a)) for a in dW + db)


def test_the_engine_never_copies_or_rebinds_the_callers_arrays(engine_factory):
    weights, biases, engine = make_net(engine_factory, [3, 4, 2], ["tanh", "identity"], "mse")
    X, Y, _ = make_samples(8, 3, 2, "real")
    kind, hyper = OPTIMIZERS["adam"], make_hyper(lr=0.1)
    state, step = make_state(weights, biases, kind, hyper), np.zeros(1, dtype=np.int64)
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
