"""ONNX export: every activation and output layer, both dtypes, both backends, against predict.

onnxruntime runs the exported graph; its outputs must equal ``predict``'s to 1e-5 (float32) and
1e-10 (float64), relative to the largest output or to 1 if that is smaller (:func:`same`). The
same model runs on batches of 1 and of many rows (the batch dimension is dynamic).
"""
import subprocess
import sys
import types
import zlib

import numpy as np
import pytest

import gdcore as gd
from gdcore.reference.codes import LOSS_OUTPUT_ACTIVATION, LOSSES

from helpers import HIDDEN

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from gdcore import onnx_export  # noqa: E402  (after the skips: it needs onnx)

RTOL = {"float32": 1e-5, "float64": 1e-10}
#: every output activation with a loss it may be trained with
OUTPUTS = [(out, loss) for loss in LOSSES for out in
           ([LOSS_OUTPUT_ACTIVATION[loss]] if loss in LOSS_OUTPUT_ACTIVATION else HIDDEN)]


def same(actual, expected, rtol, what=""):
    """``actual`` equals ``expected`` to ``rtol`` relative to the largest entry, or to 1 when all
    are smaller: the hidden values are of order 1, and an output such as gelu's 0.5 z (1 + t)
    far in its negative tail (t near -1) carries their rounding, in gdcore as in onnxruntime
    (one ulp of tanh apart), however small the output itself is."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(float(np.max(np.abs(expected))), 1.0) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def seed_of(*names):
    """A seed fixed by the test's parameters (str hashes change from run to run)."""
    return zlib.crc32(" ".join(names).encode())


def run(model, X):
    """All outputs of ``model`` on ``X`` by onnxruntime, as a dict name -> array."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"X": X})))


def data(rng, n_samples, n_inputs, dtype, scale=3.0):
    """Inputs spread widely enough to reach every branch (softplus's threshold 20 included)."""
    return (scale * rng.standard_normal((n_samples, n_inputs))).astype(dtype)


def random_net(rng, hidden, output, loss, dtype, n_outputs=None):
    n_inputs = int(rng.integers(1, 6))
    widths = [int(rng.integers(1, 9)) for _ in range(int(rng.integers(1, 3)))]
    if n_outputs is None:
        n_outputs = int(rng.integers(2, 5)) if output == "softmax" else int(rng.integers(1, 4))
    net = gd.Network.from_sizes([n_inputs, *widths, n_outputs], activation=hidden,
                                output_activation=output, loss=loss, dtype=dtype,
                                seed=int(rng.integers(2**31)))
    for layer in net.layers:  # weights large enough that activations leave their linear part
        layer.weights = layer.weights * 4
        layer.bias = rng.standard_normal(layer.n_outputs) * 2
    return net


def check_network(net, rng):
    model = net.to_onnx()
    onnx.checker.check_model(model, full_check=True)
    rtol = RTOL[net.dtype.name]
    for n_samples in (1, int(rng.integers(20, 200))):  # one model, two batch sizes
        X = data(rng, n_samples, net.n_inputs, net.dtype)
        Y = run(model, X)["Y"]
        assert Y.dtype == net.dtype and Y.shape == (n_samples, net.n_outputs)
        same(Y, net.predict(X), rtol, f"batch of {n_samples}")


@pytest.mark.parametrize("hidden", HIDDEN)
def test_every_hidden_activation(backend, dtype, hidden):
    rng = np.random.default_rng(seed_of(hidden, dtype))
    for _ in range(3):
        check_network(random_net(rng, hidden, "identity", "mse", dtype), rng)


@pytest.mark.parametrize("output,loss", OUTPUTS)
def test_every_output_layer_and_loss(backend, dtype, output, loss):
    rng = np.random.default_rng(seed_of(output, loss, dtype))
    hidden = HIDDEN[int(rng.integers(len(HIDDEN)))]
    check_network(random_net(rng, hidden, output, loss, dtype), rng)


@pytest.mark.parametrize("activation", HIDDEN)
def test_activation_branches_and_extremes(backend, dtype, activation):
    """One identity layer feeding the activation: the graph's spelled-out formulas agree with
    gdcore's at the branch points (0, softplus's 20), tiny and huge arguments, entry by entry."""
    z = np.array([-80.0, -30.0, -20.5, -5.0, -1.0, -1e-3, -1e-7, -1e-30, 0.0, 1e-30, 1e-7,
                  1e-3, 0.5, 1.0, 5.0, 19.99, 20.0, 20.01, 25.0, 80.0], dtype=dtype)
    net = gd.Network([gd.Layer(1, 1, activation)], dtype=dtype)
    net.layers[0].weights = np.ones((1, 1))
    net.layers[0].bias = np.zeros(1)
    X = z.reshape(-1, 1)
    Y = run(net.to_onnx(), X)["Y"]
    expected = net.predict(X)
    # entry by entry, relative to each value (not just to the largest one), plus a few ulp of
    # |z|: gelu's 1 + tanh(u) cancels for u << 0, where one ulp of tanh (onnxruntime's and the
    # C library's may differ by one) is 0.5 |z| ulp(1) in the output
    eps = np.finfo(dtype).eps
    np.testing.assert_array_less(np.abs(Y - expected),
                                 10 * RTOL[dtype] * np.abs(expected) + 4 * eps * np.abs(X)
                                 + np.finfo(dtype).tiny)
    assert np.all((Y == 0) == (expected == 0)) or activation in ("gelu", "elu")


def test_softmax_rows_large_logits(backend, dtype):
    net = gd.Network([gd.Layer(3, 4, "softmax")], loss="cross_entropy", dtype=dtype)
    rng = np.random.default_rng(5)
    net.layers[0].weights = rng.standard_normal((3, 4)) * 300  # logits in the hundreds
    X = data(rng, 50, 3, dtype)
    Y = run(net.to_onnx(), X)["Y"]
    same(Y, net.predict(X), RTOL[dtype])
    np.testing.assert_allclose(Y.sum(axis=1), 1, rtol=RTOL[dtype] * 10)


def test_model_structure(dtype):
    net = gd.Network.from_sizes([3, 5, 2], activation="gelu", dtype=dtype, seed=0)
    model = net.to_onnx()
    assert isinstance(model, onnx.ModelProto)
    assert model.opset_import[0].version == onnx_export.OPSET
    assert model.producer_name == "gdcore"
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "X" and out.name == "Y"
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    for value in (inp, out):
        assert value.type.tensor_type.elem_type == elem
        assert value.type.tensor_type.shape.dim[0].dim_param == "N"  # dynamic batch
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]] == [3]
    assert [d.dim_value for d in out.type.tensor_type.shape.dim[1:]] == [2]
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("MatMul") == 2 and "Tanh" in ops
    # the weights are copies: training after the export leaves the model as it was
    W = onnx.numpy_helper.to_array(model.graph.initializer[0]).copy()
    net.layers[0].weights = net.layers[0].weights + 1
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(model.graph.initializer[0]), W)


def test_perceptron(backend, dtype):
    rng = np.random.default_rng(3)
    for activation in HIDDEN:
        p = gd.Perceptron(4, activation=activation, dtype=dtype, seed=1)
        p.weights = rng.standard_normal(4)
        p.bias = 0.3
        model = p.to_onnx()
        for n_samples in (1, 33):
            X = data(rng, n_samples, 4, dtype)
            Y = run(model, X)["Y"]
            assert Y.shape == (n_samples,)
            same(Y, p.predict(X), RTOL[dtype], activation)


def test_save_round_trip(tmp_path, dtype):
    net = gd.Network.from_sizes([2, 6, 3], activation="elu", output_activation="softmax",
                                loss="cross_entropy", dtype=dtype, seed=2)
    rng = np.random.default_rng(0)
    X = data(rng, 10, 2, dtype)
    for path in (tmp_path / "net.onnx", str(tmp_path / "net2.onnx")):  # PathLike and str
        model = net.to_onnx(path)
        loaded = onnx.load(str(path))
        onnx.checker.check_model(loaded)
        assert loaded.SerializeToString() == model.SerializeToString()
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        same(session.run(["Y"], {"X": X})[0], net.predict(X), RTOL[dtype])
    p = gd.Perceptron(2, dtype=dtype, seed=0)
    p.to_onnx(tmp_path / "p.onnx")
    assert onnx.load(str(tmp_path / "p.onnx")).graph.output[0].name == "Y"


@pytest.mark.parametrize("path", [3, 1.5, b"net.onnx", ["net.onnx"], object()])
def test_bad_path_type(path):
    net = gd.Network.from_sizes([2, 1], seed=0)
    with pytest.raises(TypeError, match="path must be"):
        net.to_onnx(path)
    with pytest.raises(TypeError, match="path must be"):
        gd.Perceptron(2).to_onnx(path)


def test_unwritable_path(tmp_path):
    net = gd.Network.from_sizes([2, 1], seed=0)
    with pytest.raises(OSError):
        net.to_onnx(tmp_path / "no such dir" / "net.onnx")


def test_import_gdcore_does_not_import_onnx():
    code = ("import sys, gdcore as gd; gd.Network.from_sizes([2, 1], seed=0).predict([[1, 2]]);"
            "assert 'onnx' not in sys.modules and 'onnxruntime' not in sys.modules, "
            "sorted(m for m in sys.modules if 'onnx' in m)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_onnx_names_the_extra():
    # onnx made unimportable in a fresh interpreter: the error says how to install it
    code = ("import sys; sys.modules['onnx'] = None\n"
            "import gdcore as gd\n"
            "try:\n"
            "    gd.Network.from_sizes([2, 1], seed=0).to_onnx()\n"
            "except ImportError as e:\n"
            "    assert 'pip install gdcore[onnx]' in str(e), e\n"
            "else:\n"
            "    raise SystemExit('no ImportError')\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- estimators
# The scikit-learn estimators expose network_, classes_ and out_activation_; a stand-in with
# those attributes is enough to test the graph builder.

def classifier(net, classes, out):
    return types.SimpleNamespace(network_=net, classes_=np.asarray(classes), out_activation_=out)


CLASSES = {
    "int": lambda k: np.arange(k) * 3 - 2,
    "float": lambda k: np.linspace(-1.5, 2.5, k),
    "str": lambda k: np.array([f"class {chr(97 + i)}" for i in range(k)]),
    "object str": lambda k: np.array([f"c{i}" for i in range(k)], dtype=object),
}


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("n_classes", [2, 4])
def test_classifier_graph(backend, dtype, kind, n_classes):
    rng = np.random.default_rng(n_classes)
    classes = CLASSES[kind](n_classes)
    if n_classes == 2:  # binary: one sigmoid output p, probabilities [1 - p, p]
        net = random_net(rng, "tanh", "sigmoid", "bce", dtype, n_outputs=1)
        est = classifier(net, classes, "logistic")
    else:
        net = random_net(rng, "relu", "softmax", "cross_entropy", dtype, n_outputs=n_classes)
        est = classifier(net, classes, "softmax")
    model = onnx_export.estimator_to_onnx(est)
    onnx.checker.check_model(model, full_check=True)
    assert [o.name for o in model.graph.output] == ["label", "probabilities"]
    for n_samples in (1, 80):
        X = data(rng, n_samples, net.n_inputs, dtype)
        out = run(model, X)
        P = net.predict(X)
        if n_classes == 2:
            P = np.hstack([1 - P, P])
        assert out["probabilities"].shape == (n_samples, n_classes)
        same(out["probabilities"], P, RTOL[dtype])
        expected = classes[np.argmax(out["probabilities"], axis=1)]
        assert out["label"].shape == (n_samples,)
        np.testing.assert_array_equal(out["label"], expected)
        if kind in ("int", "float"):
            assert out["label"].dtype == classes.dtype
        # the labels are predict's wherever the top probability is clearly the top one
        top2 = np.sort(P, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 1e-3
        np.testing.assert_array_equal(out["label"][clear], classes[np.argmax(P, axis=1)][clear])


def test_classifier_bool_classes(dtype):
    net = gd.Network.from_sizes([2, 4, 1], activation="elu", output_activation="sigmoid",
                                loss="bce", dtype=dtype, seed=4)
    model = onnx_export.estimator_to_onnx(classifier(net, [False, True], "logistic"))
    X = data(np.random.default_rng(1), 40, 2, dtype)
    label = run(model, X)["label"]
    assert label.dtype == np.bool_
    p = net.predict(X)[:, 0]
    clear = np.abs(p - 0.5) > 1e-3
    np.testing.assert_array_equal(label[clear], (p > 0.5)[clear])


def test_classifier_without_label(dtype):
    """classes_ that ONNX cannot hold (mixed objects): probabilities only."""
    net = gd.Network.from_sizes([3, 3], output_activation="softmax", loss="cross_entropy",
                                dtype=dtype, seed=0)
    est = classifier(net, np.array([1, "a", None], dtype=object), "softmax")
    model = onnx_export.estimator_to_onnx(est)
    assert [o.name for o in model.graph.output] == ["probabilities"]
    X = data(np.random.default_rng(0), 5, 3, dtype)
    same(run(model, X)["probabilities"], net.predict(X), RTOL[dtype])


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_regressor_graph(backend, dtype, n_outputs, tmp_path):
    rng = np.random.default_rng(n_outputs)
    net = random_net(rng, "softplus", "identity", "mse", dtype, n_outputs=n_outputs)
    est = types.SimpleNamespace(network_=net, out_activation_="identity")
    model = onnx_export.estimator_to_onnx(est, tmp_path / "reg.onnx")
    assert onnx.load(str(tmp_path / "reg.onnx")).SerializeToString() == model.SerializeToString()
    assert [o.name for o in model.graph.output] == ["prediction"]
    for n_samples in (1, 50):
        X = data(rng, n_samples, net.n_inputs, dtype)
        Y = run(model, X)["prediction"]
        expected = net.predict(X)
        if n_outputs == 1:
            expected = expected[:, 0]  # as scikit-learn's predict: (n,) for one output
        assert Y.shape == expected.shape
        same(Y, expected, RTOL[dtype])


def test_estimator_errors():
    net = gd.Network.from_sizes([2, 3], output_activation="softmax", loss="cross_entropy",
                                seed=0)
    with pytest.raises(ValueError, match="not fitted"):
        onnx_export.estimator_to_onnx(types.SimpleNamespace(out_activation_="softmax"))
    with pytest.raises(ValueError, match="out_activation_ must be"):
        onnx_export.estimator_to_onnx(classifier(net, [0, 1, 2], "relu"))
    with pytest.raises(ValueError, match="last layer"):
        onnx_export.estimator_to_onnx(classifier(net, [0, 1, 2], "logistic"))
    with pytest.raises(ValueError, match="softmax output per class"):
        onnx_export.estimator_to_onnx(classifier(net, [0, 1], "softmax"))
    with pytest.raises(TypeError, match="path must be"):
        onnx_export.estimator_to_onnx(classifier(net, [0, 1, 2], "softmax"), path=7)
