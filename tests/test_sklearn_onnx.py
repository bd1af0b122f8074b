"""The scikit-learn estimators exported to ONNX: onnxruntime gives predict and predict_proba."""
import numpy as np
import pytest

pytest.importorskip("sklearn")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import gdcore as gd  # noqa: E402
from gdcore.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


def _run(model, X):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"X": X})))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("labels", [np.array(["no", "yes"]), np.array(["a", "b", "c"]),
                                    np.array([3, 7, 11])])
def test_classifier_graph_gives_labels_and_probabilities(labels, dtype):
    X, y = gd.datasets.spirals(n_samples=150, n_classes=len(labels), seed=0) \
        if len(labels) > 2 else gd.datasets.two_moons(n_samples=150, noise=0.2, seed=0)
    clf = MLPClassifier(hidden_layer_sizes=(12,), max_iter=40, random_state=0, dtype=dtype,
                        tol=0.0, n_iter_no_change=1000)
    with pytest.warns(Warning):  # ConvergenceWarning: few epochs on purpose
        clf.fit(X, labels[y])
    model = clf.to_onnx()
    onnx.checker.check_model(model)
    Xq = X.astype(dtype)
    out = _run(model, Xq)
    tol = 1e-5 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(out["probabilities"], clf.predict_proba(Xq), rtol=tol, atol=tol)
    np.testing.assert_array_equal(out["label"].astype(labels.dtype), clf.predict(Xq))


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_regressor_graph_gives_predict(tmp_path, n_outputs):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 3))
    y = np.tanh(X @ rng.standard_normal((3, n_outputs)))
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=30, random_state=0, dtype="float64",
                       tol=0.0, n_iter_no_change=1000)
    with pytest.warns(Warning):
        reg.fit(X, y if n_outputs > 1 else y[:, 0])
    path = tmp_path / "reg.onnx"
    model = reg.to_onnx(path)
    assert onnx.load(str(path)) == model
    np.testing.assert_allclose(_run(model, X)["prediction"], reg.predict(X), rtol=1e-10,
                               atol=1e-12)


def test_unfitted_estimator_refuses():
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        MLPClassifier().to_onnx()
