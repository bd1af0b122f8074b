"""Layer, Network and Perceptron: construction, shapes, forward, loss, gradients."""
import pickle

import numpy as np
import pytest

import gdcore as gd
from helpers import tolerance


def _np_forward(net, X):
    """The forward pass written out in NumPy, independent of both engines."""
    A = np.asarray(X, dtype=np.float64)
    for layer in net.layers:
        Z = A @ layer.weights.astype(np.float64) + layer.bias.astype(np.float64)
        A = {"identity": lambda z: z, "relu": lambda z: np.maximum(z, 0),
             "tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
             "softmax": lambda z: np.exp(z - z.max(1, keepdims=True))
             / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)}[layer.activation](Z)
    return A


@pytest.mark.parametrize("shape", [(1, 3, [4], 2), (5, 1, [3], 1), (4, 20, [7, 5], 3),
                                   (50, 2, [], 4)], ids=["one-sample", "one-feature", "wide",
                                                         "tall-linear"])
@pytest.mark.parametrize("hidden", ["relu", "tanh", "sigmoid"])
def test_forward_matches_numpy_formula(backend, dtype, rng, shape, hidden):
    n, n_in, hidden_sizes, n_out = shape
    net = gd.Network.from_sizes([n_in, *hidden_sizes, n_out], activation=hidden,
                                output_activation="softmax" if n_out > 1 else "sigmoid",
                                dtype=dtype, seed=1)
    X = rng.normal(size=(n, n_in))
    out = net.forward(X)
    assert out.shape == (n, n_out) and out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out, _np_forward(net, X), rtol=tolerance(dtype) * 10, atol=1e-6)
    np.testing.assert_array_equal(net(X), out)
    np.testing.assert_array_equal(net.predict(X), out)


def test_single_sample_1d_gives_one_row(backend):
    net = gd.Network.from_sizes([3, 4, 2], seed=0)
    out = net.forward(np.array([0.1, 0.2, 0.3]))
    assert out.shape == (1, 2)


def test_from_sizes_is_seeded_and_he_init():
    a = gd.Network.from_sizes([100, 400, 1], seed=7, init="he")
    b = gd.Network.from_sizes([100, 400, 1], seed=7, init="he")
    c = gd.Network.from_sizes([100, 400, 1], seed=8, init="he")
    np.testing.assert_array_equal(a.layers[0].weights, b.layers[0].weights)
    assert not np.array_equal(a.layers[0].weights, c.layers[0].weights)
    # He: std sqrt(2 / n_inputs) = sqrt(2/100) ~ 0.141
    assert a.layers[0].weights.std() == pytest.approx(np.sqrt(2 / 100), rel=0.05)
    assert (a.layers[0].bias == 0).all() and (a.layers[1].bias == 0).all()


def test_layer_weights_assign_is_shape_checked_and_keeps_buffer(backend):
    net = gd.Network.from_sizes([2, 3, 1], seed=0)
    layer = net.layers[0]
    buffer = layer.weights
    layer.weights = np.ones((2, 3))
    assert layer.weights is buffer and (buffer == 1).all()
    np.testing.assert_allclose(net.forward(np.zeros((1, 2))), _np_forward(net, np.zeros((1, 2))),
                               rtol=1e-6)
    with pytest.raises(ValueError, match=r"weights must have shape \(2, 3\)"):
        layer.weights = np.ones((3, 2))
    with pytest.raises(ValueError, match="bias must have shape"):
        layer.bias = np.ones(4)
    with pytest.raises(ValueError, match="weights contains NaN"):
        layer.weights = np.full((2, 3), np.nan)


def test_layer_forward_standalone(backend, rng):
    layer = gd.Layer(3, 2, "tanh", seed=0)
    X = rng.normal(size=(4, 3))
    np.testing.assert_allclose(layer.forward(X), np.tanh(X @ layer.weights + layer.bias),
                               rtol=1e-5)
    assert layer.weights.dtype == np.float32
    assert repr(layer) == "Layer(3, 2, activation='tanh')"


def test_network_converts_layers_to_its_dtype():
    layers = [gd.Layer(2, 3, "relu", seed=0), gd.Layer(3, 1)]
    net = gd.Network(layers, dtype="float64")
    assert all(layer.weights.dtype == np.float64 for layer in net.layers)
    assert net.dtype == np.float64


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(layers=[]), ValueError, "at least one Layer"),
    (dict(layers="abc"), TypeError, "list of Layer"),
    (dict(layers=[gd.Layer(2, 3), gd.Layer(4, 1)]), ValueError, r"layers\[1\] takes 4 inputs"),
    (dict(layers=[gd.Layer(2, 3, "softmax"), gd.Layer(3, 1)]), ValueError, "output layer only"),
    (dict(layers=[gd.Layer(2, 1)], loss="nope"), ValueError, "loss must be one of"),
    (dict(layers=[gd.Layer(2, 1, "relu")], loss="bce"), ValueError, "needs a 'sigmoid' output"),
    (dict(layers=[gd.Layer(2, 3)], loss="cross_entropy"), ValueError, "needs a 'softmax'"),
    (dict(layers=[gd.Layer(2, 1)], dtype="int32"), ValueError, "dtype must be"),
])
def test_network_construction_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        gd.Network(**kwargs)


@pytest.mark.parametrize("args, error, match", [
    ((0, 3), ValueError, "n_inputs must be >= 1"),
    ((2, 2.5), TypeError, "n_outputs must be an integer"),
    ((2, 3, "swish"), ValueError, "activation must be one of"),
    ((2, 3, "relu", "orthogonal"), ValueError, "init must be one of"),
])
def test_layer_construction_errors(args, error, match):
    with pytest.raises(error, match=match):
        gd.Layer(*args)


@pytest.mark.parametrize("X, error, match", [
    (np.zeros((3, 4)), ValueError, "X has 4 features but the network expects 2"),
    (np.zeros((0, 2)), ValueError, "X is empty"),
    (np.zeros((2, 2, 2)), ValueError, "must be 2-D"),
    (np.zeros(3), ValueError, "1-D with 3 values"),
    (np.array([[1.0, np.nan]]), ValueError, "X contains NaN"),
    (np.array([[1.0, np.inf]]), ValueError, "X contains infinity"),
    (np.array([["a", "b"]]), TypeError, "X must hold real numbers"),
    (np.array([[1 + 2j, 0]]), TypeError, "X must hold real numbers"),
    (np.array([[1e300, 0.0]]), ValueError, "X contains infinity"),  # overflows float32
])
def test_forward_rejects_bad_X(backend, X, error, match):
    net = gd.Network.from_sizes([2, 3, 1], seed=0)
    with pytest.raises(error, match=match):
        net.forward(X)


def test_forward_accepts_layouts_and_integer_arrays(backend, rng):
    net = gd.Network.from_sizes([3, 5, 2], dtype="float64", seed=0)
    X = rng.normal(size=(6, 3))
    expected = net.forward(X)
    np.testing.assert_array_equal(net.forward(np.asfortranarray(X)), expected)
    np.testing.assert_array_equal(net.forward(np.repeat(X, 2, axis=0)[::2]), expected)
    ro = X.copy()
    ro.setflags(write=False)
    np.testing.assert_array_equal(net.forward(ro), expected)
    Xi = rng.integers(-3, 3, size=(4, 3))
    np.testing.assert_allclose(net.forward(Xi), net.forward(Xi.astype(np.float64)))
    np.testing.assert_allclose(net.forward(X.tolist()), expected)


@pytest.mark.parametrize("loss, out_act, make_y", [
    ("mse", "identity", lambda r, n, k: r.normal(size=(n, k))),
    ("mae", "tanh", lambda r, n, k: r.normal(size=(n, k))),
    ("huber", "identity", lambda r, n, k: 3 * r.normal(size=(n, k))),
    ("bce", "sigmoid", lambda r, n, k: r.integers(0, 2, size=(n, k)).astype(float)),
    ("cross_entropy", "softmax", lambda r, n, k: r.integers(0, k, size=n)),
])
def test_gradients_match_finite_differences(backend, rng, loss, out_act, make_y):
    net = gd.Network.from_sizes([3, 5, 4], activation="tanh", output_activation=out_act,
                                loss=loss, dtype="float64", seed=3)
    X = rng.normal(size=(7, 3))
    y = make_y(rng, 7, 4)
    grads = net.gradients(X, y)
    assert len(grads) == 2 and grads[0][0].shape == (3, 5) and grads[1][1].shape == (4,)
    assert max(np.abs(g).max() for pair in grads for g in pair) > 1e-6  # not all zero
    assert gd.check_gradients(net, X, y) < 1e-6


def test_loss_closed_form_mse(backend):
    # One identity layer with W = [[1], [2]], b = [0.5]: outputs 0.5 + x1 + 2 x2.
    net = gd.Network([gd.Layer(2, 1)], loss="mse", dtype="float64")
    net.layers[0].weights = [[1.0], [2.0]]
    net.layers[0].bias = [0.5]
    X = [[1.0, 1.0], [0.0, -1.0]]  # outputs 3.5 and -1.5
    y = [3.0, 0.5]                # errors 0.5 and -2.0 -> mean of (0.25, 4.0) = 2.125
    assert net.loss(X, y) == pytest.approx(2.125, rel=1e-12)
    # sample_weight (1, 3): (0.25 + 3 * 4) / 4 = 3.0625
    assert net.loss(X, y, sample_weight=[1.0, 3.0]) == pytest.approx(3.0625, rel=1e-12)


@pytest.mark.parametrize("y, match", [
    (np.array([0, 3]), r"labels must be in \[0, 2\]"),
    (np.array([0, -1]), r"labels must be in \[0, 2\]"),
    (np.array([0.5, 1.0]), "integer class labels"),
    (np.array([[1.0, 0.0, 0.0], [0.5, 0.0, 0.0]]), "must sum to 1"),
    (np.array([[1.0, 0.0], [0.0, 1.0]]), "probabilities of shape"),
    (np.array([0, 1, 2]), "y has 3 samples but X has 2"),
])
def test_cross_entropy_target_errors(backend, y, match):
    net = gd.Network.from_sizes([2, 3], output_activation="softmax", loss="cross_entropy")
    with pytest.raises(ValueError, match=match):
        net.loss(np.zeros((2, 2)), y)


def test_target_shape_and_sample_weight_errors(backend):
    net = gd.Network.from_sizes([2, 2], loss="mse")
    with pytest.raises(ValueError, match=r"y is 1-D but the network has 2 outputs"):
        net.loss(np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match=r"y must have shape \(2, 2\)"):
        net.loss(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="y contains NaN"):
        net.loss(np.zeros((2, 2)), np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        net.loss(np.zeros((2, 2)), np.zeros((2, 2)), sample_weight=[1.0, -1.0])
    with pytest.raises(ValueError, match="sample_weight must have a positive sum"):
        net.loss(np.zeros((2, 2)), np.zeros((2, 2)), sample_weight=[0.0, 0.0])
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(2,\)"):
        net.loss(np.zeros((2, 2)), np.zeros((2, 2)), sample_weight=[1.0])
    bce = gd.Network.from_sizes([2, 1], output_activation="sigmoid", loss="bce")
    with pytest.raises(ValueError, match=r"targets in \[0, 1\]"):
        bce.loss(np.zeros((2, 2)), [0.0, 2.0])


def test_perceptron(backend, rng):
    p = gd.Perceptron(3, seed=0)
    assert p.weights.shape == (3,) and isinstance(p.bias, float)
    assert p.network.loss_name == "bce" and p.network.dtype == np.float64
    p.weights = [1.0, -1.0, 0.5]
    p.bias = 0.25
    X = rng.normal(size=(5, 3))
    expected = 1 / (1 + np.exp(-(X @ np.array([1.0, -1.0, 0.5]) + 0.25)))
    np.testing.assert_allclose(p.forward(X), expected, rtol=1e-12)
    assert p.predict(X).shape == (5,)
    assert gd.Perceptron(2, activation="identity").network.loss_name == "mse"
    with pytest.raises(ValueError, match=r"weights must have shape \(3,\)"):
        p.weights = [1.0, 2.0]


def test_perceptron_learns_and(backend):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 0, 0, 1], dtype=float)
    p = gd.Perceptron(2, seed=0)
    p.fit(X, y, optimizer=gd.SGD(lr=1.0), epochs=2000)
    assert ((p.predict(X) > 0.5) == y).all()


def test_copy_and_pickle_give_identical_predictions(backend, rng):
    net = gd.Network.from_sizes([3, 4, 2], activation="gelu", output_activation="softmax",
                                loss="cross_entropy", seed=0)
    X = rng.normal(size=(5, 3))
    clone = net.copy()
    np.testing.assert_array_equal(clone.forward(X), net.forward(X))
    clone.layers[0].weights = np.zeros((3, 4))
    assert not np.array_equal(clone.forward(X), net.forward(X))  # independent buffers
    back = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(back.forward(X), net.forward(X))
    assert back.loss_name == "cross_entropy" and back.dtype == net.dtype


def test_repr_names_architecture():
    net = gd.Network.from_sizes([2, 3, 1], seed=0)
    assert "Layer(2, 3, activation='relu')" in repr(net) and "loss='mse'" in repr(net)


# --- initialisation schemes -----------------------------------------------------------------------

def _check_init(layer, init):
    """The layer's weights and bias follow the formulas of ``initial_weights`` for ``init``."""
    W, b = layer.weights.astype(np.float64), layer.bias.astype(np.float64)
    fan_in, fan_out = W.shape
    if init == "zeros":
        assert not W.any() and not b.any()
        return
    if init == "he":
        assert W.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.05)
        assert abs(W.mean()) < 0.05 * W.std()
        assert not b.any()
        return
    bound = {"xavier": np.sqrt(6 / (fan_in + fan_out)),
             "torch": 1 / np.sqrt(fan_in),
             "sklearn": np.sqrt((2 if layer.activation == "sigmoid" else 6)
                                / (fan_in + fan_out))}[init]
    # uniform on [-bound, bound]: std bound / sqrt(3), extremes close to +-bound
    assert np.abs(W).max() <= bound * (1 + 1e-6)
    assert np.abs(W).max() >= 0.95 * bound
    assert W.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)
    if init == "xavier":
        assert not b.any()
    else:  # scikit-learn and PyTorch draw the bias from the same uniform
        assert np.abs(b).max() <= bound * (1 + 1e-6) and np.unique(b).size == b.size


@pytest.mark.parametrize("init", gd.network.INITS)
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_from_sizes_passes_init_to_every_layer(init, activation):
    net = gd.Network.from_sizes([60, 300, 200, 40], activation=activation,
                                output_activation="softmax", loss="cross_entropy",
                                dtype="float64", seed=3, init=init)
    for layer in net.layers:
        _check_init(layer, init)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "identity"])
def test_default_init_is_sklearn_for_every_activation(activation):
    default = gd.Layer(80, 120, activation, seed=5)
    sk = gd.Layer(80, 120, activation, init="sklearn", seed=5)
    np.testing.assert_array_equal(default.weights, sk.weights)
    np.testing.assert_array_equal(default.bias, sk.bias)
    _check_init(default, "sklearn")
    net = gd.Network.from_sizes([80, 120, 3], activation, "softmax", "cross_entropy", seed=5)
    net_sk = gd.Network.from_sizes([80, 120, 3], activation, "softmax", "cross_entropy",
                                   seed=5, init="sklearn")
    for a, b in zip(net.parameters(), net_sk.parameters()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("init", ["orthogonal", "He", "", 3, ["he"]])
def test_from_sizes_rejects_bad_init(init):
    with pytest.raises(ValueError, match=r"init must be one of \('sklearn', 'xavier', 'he', "
                                         r"'torch', 'zeros'\) or None"):
        gd.Network.from_sizes([2, 3, 1], init=init)


@pytest.mark.parametrize("init", [None, *gd.network.INITS])
def test_same_seed_gives_same_initial_parameters(init):
    def params(seed):
        net = gd.Network.from_sizes([7, 9, 4], output_activation="softmax",
                                    loss="cross_entropy", seed=seed, init=init)
        return net.parameters()

    for a, b in zip(params(11), params(11)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(params(np.random.default_rng(11)), params(np.random.default_rng(11))):
        np.testing.assert_array_equal(a, b)
    if init != "zeros":
        assert not np.array_equal(params(11)[0], params(12)[0])


def test_default_init_learns_iris_like_scikit_learn(backend):
    """MLPClassifier's defaults (1x100 relu, Adam 1e-3, batch min(200, n), 200 epochs) reach
    about 0.97 test accuracy on iris; gdcore's default init must too (He's lost points)."""
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    X, y = datasets.load_iris(return_X_y=True)
    scores = []
    for seed in range(4):
        Xtr, Xte, ytr, yte = model_selection.train_test_split(
            X, y, test_size=0.3, stratify=y, random_state=seed)
        net = gd.Network.from_sizes([4, 100, 3], "relu", "softmax", "cross_entropy", seed=seed)
        net.fit(Xtr, ytr, optimizer=gd.Adam(lr=1e-3), epochs=200, batch_size=len(Xtr),
                seed=seed)
        scores.append(float((net.predict(Xte).argmax(1) == yte).mean()))
    assert np.mean(scores) >= 0.95, scores


# --- standalone layers: copies and threads --------------------------------------------------------

def test_a_layer_that_ran_forward_pickles_and_deep_copies(backend):
    import copy
    import pickle
    layer = gd.Layer(2, 3, "tanh", seed=0)
    out = layer.forward(np.ones((1, 2)))
    for twin in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        np.testing.assert_array_equal(twin.forward(np.ones((1, 2))), out)
        assert twin.weights is not layer.weights


def test_one_layer_forward_from_four_threads(backend):
    import threading
    layer = gd.Layer(2, 3, "tanh", seed=0)
    expected = layer.forward(np.ones((5, 2)))
    errors = []

    def work():
        try:
            for _ in range(200):
                np.testing.assert_array_equal(layer.forward(np.ones((5, 2))), expected)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
