"""gdcore.sklearn's MLPClassifier and MLPRegressor: scikit-learn's API and its MLPs' numbers.

The tests that compare with ``sklearn.neural_network`` use full batches (a batch of
``min(200, n)``), ``shuffle=False`` and float64: scikit-learn and gdcore then draw the same
initial weights from ``random_state`` and take the same steps, so the fitted attributes agree
to rounding. Every test runs on both backends (the ``backend`` fixture).
"""
import math
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import scipy.sparse as sp  # noqa: E402
from sklearn import neural_network as sknn  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.class_weight import compute_sample_weight  # noqa: E402

import gdcore as gd  # noqa: E402
from gdcore.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.usefixtures("backend")


def classification(n_samples=120, n_classes=3, seed=0):
    X, y = make_classification(n_samples=n_samples, n_features=6, n_informative=4,
                               n_redundant=0, n_classes=n_classes, random_state=seed)
    return StandardScaler().fit_transform(X), y


def regression(n_samples=120, n_targets=1, seed=0):
    X, y = make_regression(n_samples=n_samples, n_features=5, n_targets=n_targets, noise=0.1,
                           random_state=seed)
    return StandardScaler().fit_transform(X), y / np.std(y)


def quietly(estimator, *args, **kwargs):
    """estimator.fit without the ConvergenceWarning of a deliberately short run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(*args, **kwargs)


# --- the same numbers as scikit-learn's MLPs ------------------------------------------------

SAME = dict(hidden_layer_sizes=(7, 5), random_state=3, shuffle=False, max_iter=15, alpha=1e-3)


def _pair(cls, sk_cls, **params):
    params = {**SAME, **params}
    return cls(dtype="float64", **params), sk_cls(**params)


@pytest.mark.parametrize("target", ["binary", "multiclass", "multilabel", "regression",
                                    "multi-output"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_same_training_as_sklearn(target, solver):
    rng = np.random.default_rng(0)
    if target in ("regression", "multi-output"):
        X, y = regression(n_targets=1 if target == "regression" else 2)
        ours, theirs = _pair(MLPRegressor, sknn.MLPRegressor, solver=solver, momentum=0.5)
    else:
        X, y = classification(n_classes=2 if target == "binary" else 3)
        if target == "multilabel":
            y = np.column_stack([y == 0, y == 1, X[:, 0] > 0]).astype(int)
        ours, theirs = _pair(MLPClassifier, sknn.MLPClassifier, solver=solver, momentum=0.5)
    w = rng.uniform(0.5, 2.0, size=len(X))
    quietly(ours, X, y, sample_weight=w)
    quietly(theirs, X, y, sample_weight=w)
    if solver == "sgd":
        for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
            np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    # Adam: torch's epsilon placement (eps / sqrt(1 - beta_2 ** t) against sklearn's eps)
    # matters for weights whose only gradient is the small l2 term (a dead relu unit).
    rtol = 1e-9 if solver == "sgd" else 1e-3
    if target == "multi-output" and solver == "adam":
        pass  # the penalty differs (below) and Adam's path slightly: predictions compared below
    elif target == "multi-output":
        # sklearn reports the full penalty with the mean over the outputs; gdcore the
        # objective whose gradient (times n_outputs) sklearn follows: penalty / n_outputs.
        penalty = [0.5 * SAME["alpha"] * sum(np.sum(c ** 2) for c in coefs) / w.sum()
                   for coefs in [ours.coefs_]]
        assert theirs.loss_ - ours.loss_ == pytest.approx(penalty[0] / 2, rel=2e-2)
    else:
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
        assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=rtol)
    for name in ("n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_",
                 "n_features_in_"):
        assert getattr(ours, name) == getattr(theirs, name), name
    if target not in ("regression", "multi-output"):
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=rtol,
                                   atol=1e-7)
    else:
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=rtol,
                                   atol=1e-9 if solver == "sgd" else 1e-2)


@pytest.mark.skipif(not hasattr(gd, "LBFGS"), reason="gd.LBFGS comes with the lbfgs branch")
@pytest.mark.parametrize("target", ["multiclass", "multilabel", "regression"])
def test_lbfgs_as_sklearn(target):
    if target == "regression":
        X, y = regression()
        ours, theirs = _pair(MLPRegressor, sknn.MLPRegressor, solver="lbfgs", max_iter=10)
    else:
        X, y = classification()
        if target == "multilabel":
            y = np.column_stack([y == 0, X[:, 0] > 0]).astype(int)
        ours, theirs = _pair(MLPClassifier, sknn.MLPClassifier, solver="lbfgs", max_iter=10)
    # (multilabel with sample weights leaves scikit-learn's path at the third iteration: the
    # objective is scaled by 1 / n_outputs there, see gdcore.sklearn._loss_scale)
    w = None if target == "multilabel" else np.random.default_rng(1).uniform(0.5, 2, len(X))
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        ours.fit(X, y, sample_weight=w)
    quietly(theirs, X, y, sample_weight=w)
    assert ours.n_iter_ == theirs.n_iter_ == 10
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert not hasattr(ours, "loss_curve_") and not hasattr(theirs, "loss_curve_")
    converged = clone(ours).set_params(max_iter=2000).fit(X, y)  # no warning: a tolerance
    assert converged.history_.converged and converged.n_iter_ < 2000
    tight = clone(ours).set_params(max_iter=2000, max_fun=30)
    with pytest.warns(ConvergenceWarning):
        tight.fit(X, y)
    assert tight.history_.stop_reason == "max_fun"


@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
def test_sgd_learning_rate_schedules_as_sklearn(learning_rate):
    X, y = classification()
    # momentum 0: torch's momentum buffer and sklearn's velocity differ once the rate changes
    params = dict(solver="sgd", learning_rate=learning_rate, momentum=0.0,
                  learning_rate_init=0.3, power_t=0.25, n_iter_no_change=2, tol=1e-2)
    ours, theirs = _pair(MLPClassifier, sknn.MLPClassifier, **params)
    ours.set_params(max_iter=40)
    theirs.set_params(max_iter=40)
    quietly(ours, X, y)
    quietly(theirs, X, y)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    if learning_rate == "adaptive":
        assert min(ours.history_.lr) < max(ours.history_.lr)  # the rate was cut
        assert ours.history_.lr[-1] == pytest.approx(theirs._optimizer.learning_rate)


def test_early_stopping_as_sklearn():
    X, y = classification(n_samples=200)
    params = dict(solver="sgd", momentum=0.0, learning_rate_init=0.1, early_stopping=True,
                  validation_fraction=0.2, n_iter_no_change=3, max_iter=60)
    ours, theirs = _pair(MLPClassifier, sknn.MLPClassifier, **params)
    quietly(ours, X, y)
    quietly(theirs, X, y)
    assert ours.validation_scores_ == pytest.approx(theirs.validation_scores_)
    assert ours.best_validation_score_ == max(ours.validation_scores_)
    assert ours.best_loss_ is None
    assert len(ours.validation_scores_) == ours.n_iter_ < 60
    for a, b in zip(ours.coefs_, theirs.coefs_):  # the best weights, restored
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)
    assert ours.history_.metrics["validation_score"] == ours.validation_scores_


# --- labels, inputs, outputs ----------------------------------------------------------------

def test_string_labels():
    X, y = classification()
    labels = np.array(["cat", "dog", "emu"])[y]
    clf = quietly(MLPClassifier(hidden_layer_sizes=(16,), random_state=0, max_iter=100,
                                learning_rate_init=0.01), X, labels)
    np.testing.assert_array_equal(clf.classes_, ["cat", "dog", "emu"])
    assert set(clf.predict(X)) <= {"cat", "dog", "emu"}
    assert clf.score(X, labels) > 0.8


def test_pandas_dataframe_feature_names_and_categorical_labels():
    pd = pytest.importorskip("pandas")
    X, y = classification()
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    labels = pd.Series(pd.Categorical(np.array(["lo", "mid", "hi"])[y]))
    clf = quietly(MLPClassifier(hidden_layer_sizes=(16,), random_state=0, max_iter=50), df,
                  labels)
    np.testing.assert_array_equal(clf.feature_names_in_, df.columns)
    assert clf.n_features_in_ == X.shape[1]
    assert set(clf.classes_) == {"lo", "mid", "hi"}
    assert clf.predict(df).shape == (len(df),)
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df.rename(columns={"f0": "other"}))
    reg = quietly(MLPRegressor(hidden_layer_sizes=(8,), random_state=0, max_iter=20), df,
                  pd.Series(X[:, 0]))
    np.testing.assert_array_equal(reg.feature_names_in_, df.columns)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_X_as_dense(fmt):
    X, y = classification()
    X[np.abs(X) < 0.7] = 0.0
    dense = quietly(MLPClassifier(random_state=0, max_iter=10), X, y)
    sparse = quietly(MLPClassifier(random_state=0, max_iter=10), sp.csr_matrix(X).asformat(fmt),
                     y)
    np.testing.assert_array_equal(dense.loss_curve_, sparse.loss_curve_)
    np.testing.assert_array_equal(dense.predict_proba(X),
                                  sparse.predict_proba(sp.csr_matrix(X).asformat(fmt)))


def test_multilabel():
    X, _ = classification()
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 0] + X[:, 1] > 0]).astype(int)
    clf = quietly(MLPClassifier(hidden_layer_sizes=(32,), random_state=0, max_iter=200,
                                learning_rate_init=0.01), X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 3
    assert clf.predict(X).shape == Y.shape
    P = clf.predict_proba(X)
    assert P.shape == Y.shape and np.all((P >= 0) & (P <= 1))
    assert clf.score(X, Y) > 0.8  # subset accuracy


def test_binary_and_multiclass_probabilities():
    for n_classes, out in ((2, "logistic"), (4, "softmax")):
        X, y = classification(n_classes=n_classes)
        clf = quietly(MLPClassifier(hidden_layer_sizes=(16,), random_state=0, max_iter=30), X,
                      y)
        assert clf.out_activation_ == out
        P = clf.predict_proba(X)
        assert P.shape == (len(X), n_classes)
        np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-6)
        np.testing.assert_allclose(clf.predict_log_proba(X), np.log(P), rtol=1e-6)
        np.testing.assert_array_equal(clf.predict(X), clf.classes_[P.argmax(axis=1)])


def test_multi_output_regression():
    X, Y = regression(n_targets=3)
    reg = quietly(MLPRegressor(hidden_layer_sizes=(32,), random_state=0, max_iter=300,
                               learning_rate_init=0.01), X, Y)
    assert reg.n_outputs_ == 3 and reg.out_activation_ == "identity"
    assert reg.predict(X).shape == Y.shape
    assert reg.score(X, Y) > 0.9


# --- incremental, weights, warm start -------------------------------------------------------

def test_partial_fit_with_classes():
    X, y = classification()
    clf = MLPClassifier(hidden_layer_sizes=(16,), random_state=0, learning_rate_init=0.01)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y != 2], y[y != 2], classes=[0, 1, 2])
    assert list(clf.classes_) == [0, 1, 2] and clf.n_iter_ == 1 and clf.t_ == np.sum(y != 2)
    for _ in range(20):
        clf.partial_fit(X, y)
    assert clf.t_ == np.sum(y != 2) + 20 * len(X)
    assert len(clf.loss_curve_) == 21 and clf.history_.epochs == 21
    assert clf.score(X, y) > 0.6
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X, np.where(y == 2, 7, y))
    with pytest.raises(AttributeError, match="partial_fit"):
        MLPClassifier(solver="lbfgs").partial_fit(X, y, classes=[0, 1, 2])


def test_partial_fit_equals_one_epoch_of_fit():
    X, y = regression()
    a = MLPRegressor(hidden_layer_sizes=(8,), random_state=1, shuffle=False)
    a.partial_fit(X, y)
    b = quietly(MLPRegressor(hidden_layer_sizes=(8,), random_state=1, shuffle=False,
                             max_iter=1), X, y)
    for p, q in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-9), ("float32", 1e-5)])
def test_integer_sample_weight_equals_repeated_samples(dtype, rtol):
    X, y = classification(n_samples=60)
    w = np.random.default_rng(0).integers(0, 4, size=len(X))
    params = dict(hidden_layer_sizes=(8,), random_state=0, shuffle=False, max_iter=20,
                  dtype=dtype)
    weighted = quietly(MLPClassifier(**params), X, y, sample_weight=w)
    repeated = quietly(MLPClassifier(**params), np.repeat(X, w, axis=0), np.repeat(y, w))
    # the same full-batch steps, summed in another order: equal to the dtype's rounding
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=rtol)


@pytest.mark.parametrize("class_weight", ["balanced", {0: 1.0, 1: 3.0, 2: 0.5}])
def test_class_weight_is_sample_weight(class_weight):
    X, y = classification()
    y[:30] = 0  # unbalanced
    params = dict(hidden_layer_sizes=(8,), random_state=0, max_iter=10, dtype="float64")
    a = quietly(MLPClassifier(class_weight=class_weight, **params), X, y)
    b = quietly(MLPClassifier(**params), X, y,
                sample_weight=compute_sample_weight(class_weight, y))
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)
    w = np.linspace(0.5, 1.5, len(X))  # multiplied with sample_weight
    a = quietly(MLPClassifier(class_weight=class_weight, **params), X, y, sample_weight=w)
    b = quietly(MLPClassifier(**params), X, y,
                sample_weight=w * compute_sample_weight(class_weight, y))
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)
    if class_weight == "balanced":
        with pytest.raises(ValueError, match="partial_fit"):
            MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


def test_warm_start_continues():
    X, y = classification()
    params = dict(hidden_layer_sizes=(8,), random_state=0, max_iter=5)
    warm = quietly(MLPClassifier(warm_start=True, **params), X, y)
    first = [c.copy() for c in warm.coefs_]
    quietly(warm, X, y)
    assert len(warm.loss_curve_) == 10 and warm.n_iter_ == 5
    cold = quietly(MLPClassifier(**params), X, y)
    quietly(cold, X, y)  # starts again from the initial weights: the same fit
    assert len(cold.loss_curve_) == 5
    for c, f in zip(cold.coefs_, first):
        np.testing.assert_array_equal(c, f)
    assert not all(np.array_equal(w, f) for w, f in zip(warm.coefs_, first))
    with pytest.raises(ValueError, match="warm_start can only be used"):
        warm.fit(X, np.where(y == 2, 5, y))
    kept = [c.copy() for c in warm.coefs_]
    with pytest.raises(ValueError, match="layer sizes"):
        warm.set_params(hidden_layer_sizes=(4,)).fit(X, y)
    assert warm.n_outputs_ == 3 and all(np.array_equal(a, b) for a, b in zip(warm.coefs_, kept))


def test_convergence_warning_when_max_iter_ends_training():
    X, y = classification()
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(3\\)"):
        MLPClassifier(max_iter=3, random_state=0).fit(X, y)
    clf = MLPClassifier(max_iter=500, tol=1e-1, random_state=0).fit(X, y)  # converges: silent
    assert clf.n_iter_ < 500 and clf.history_.stop_reason == "converged"


# --- scikit-learn's machinery ----------------------------------------------------------------

def test_clone_get_params_set_params():
    clf = MLPClassifier(hidden_layer_sizes=(5, 3), alpha=0.01, dtype="float64",
                        class_weight="balanced", on_divergence="backoff")
    params = clf.get_params()
    for name in ("hidden_layer_sizes", "activation", "solver", "alpha", "batch_size",
                 "learning_rate", "learning_rate_init", "power_t", "max_iter", "shuffle",
                 "random_state", "tol", "verbose", "warm_start", "momentum",
                 "nesterovs_momentum", "early_stopping", "validation_fraction", "beta_1",
                 "beta_2", "epsilon", "n_iter_no_change", "max_fun", "dtype",
                 "on_divergence", "class_weight", "dropout", "label_smoothing"):
        assert name in params
    twin = clone(clf)
    assert twin.get_params() == params and twin is not clf
    assert clf.set_params(max_iter=7) is clf and clf.max_iter == 7
    assert set(MLPRegressor().get_params()) == set(params) - {"class_weight", "label_smoothing"}
    with pytest.raises(ValueError, match="solver"):
        MLPClassifier(solver="newton").fit(*classification())


def test_defaults_are_sklearns():
    ours, theirs = MLPClassifier().get_params(), sknn.MLPClassifier().get_params()
    for name, value in theirs.items():
        assert ours[name] == value, name
    ours, theirs = MLPRegressor().get_params(), sknn.MLPRegressor().get_params()
    for name, value in theirs.items():
        if name != "loss":
            assert ours[name] == value, name


def test_pipeline_cross_val_score_and_grid_search():
    X, y = classification(n_samples=90)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,),
                                                         random_state=0, max_iter=300,
                                                         learning_rate_init=0.01, tol=1e-3))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.6
    grid = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-1]}, cv=3, n_jobs=1)
    grid.fit(X, y)
    assert grid.best_params_["mlpclassifier__alpha"] in (1e-4, 1e-1)
    assert grid.predict(X).shape == y.shape


def test_pickle_round_trip():
    import pickle
    X, y = classification()
    clf = quietly(MLPClassifier(hidden_layer_sizes=(8,), random_state=0, max_iter=5), X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    again.partial_fit(X, y)  # the optimizer came along
    assert again.n_iter_ == 1 and len(again.loss_curve_) == 6


# --- gdcore's own parameters ----------------------------------------------------------------

def test_dtype_float32_default_float64_and_follow_X():
    X, y = regression()
    reg = quietly(MLPRegressor(hidden_layer_sizes=(4,), random_state=0, max_iter=2), X, y)
    assert reg.network_.dtype == np.float32 and reg.coefs_[0].dtype == np.float32
    assert reg.predict(X).dtype == np.float32
    reg = quietly(MLPRegressor(hidden_layer_sizes=(4,), random_state=0, max_iter=2,
                               dtype="float64"), X.astype(np.float32), y)
    assert reg.predict(X).dtype == np.float64
    for dtype in (np.float32, np.float64):
        reg = quietly(MLPRegressor(hidden_layer_sizes=(4,), random_state=0, max_iter=2,
                                   dtype=None), X.astype(dtype), y)
        assert reg.coefs_[0].dtype == dtype and reg.predict(X).dtype == dtype


def test_learning_rate_init_auto_runs_the_range_test():
    X, y = classification()
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init="auto", random_state=0,
                        max_iter=100, tol=1e-3)
    quietly(clf, X, y)
    found = clf.history_.lr_found
    assert found is not None and math.isfinite(found) and found > 0
    assert clf.history_.lr[0] == pytest.approx(found)
    assert clf.score(X, y) > 0.8
    same = quietly(clone(clf), X, y)  # seeded by random_state
    assert same.history_.lr_found == found


def test_network_and_history_attributes():
    X, y = classification()
    clf = quietly(MLPClassifier(hidden_layer_sizes=(9, 4), random_state=0, max_iter=6), X, y)
    assert isinstance(clf.network_, gd.Network) and clf.network_.sizes == [6, 9, 4, 3]
    assert isinstance(clf.history_, gd.History)
    assert clf.history_.loss == clf.loss_curve_ and clf.history_.epochs == clf.n_iter_
    assert clf.history_.backend == clf.network_.backend == gd.backend()
    assert [c.shape for c in clf.coefs_] == [(6, 9), (9, 4), (4, 3)]
    clf.coefs_[0][:] = 0.0  # the live arrays of the network
    assert np.all(clf.network_.layers[0].weights == 0.0)


def test_on_divergence():
    X, y = regression()
    params = dict(hidden_layer_sizes=(32,), solver="sgd", learning_rate_init=50.0,
                  random_state=0, max_iter=30, momentum=0.0)
    with pytest.raises(gd.DivergenceError):
        MLPRegressor(**params).fit(X, y * 100)
    reg = MLPRegressor(on_divergence="stop", **params).fit(X, y * 100)
    assert reg.history_.stop_reason == "diverged" and reg.history_.diverged
    assert np.all(np.isfinite(reg.predict(X)))
    # With mini-batches an epoch that blows up is seen in that epoch's loss and undone; with
    # full batches (one step, whose loss is that of the weights it started from) it is seen in
    # the next epoch, and the undo goes back to the start of the epoch before (all the epochs
    # are one fit call): the per-epoch attributes forget the undone epochs with it.
    for batch_size in (16, len(X)):
        reg = quietly(MLPRegressor(on_divergence="backoff", batch_size=batch_size, **params),
                      X, y * 100)
        assert reg.history_.backoffs > 0 and np.isfinite(reg.loss_)
        assert reg.history_.lr[-1] < params["learning_rate_init"]
        assert len(reg.loss_curve_) == reg.n_iter_ == reg.history_.epochs
        assert reg.loss_curve_ == reg.history_.loss and reg.loss_ == reg.loss_curve_[-1]
        assert reg.t_ == reg.n_iter_ * len(X)


def _initial_forward(X, sizes, random_state, out):
    """The network's output at scikit-learn's initial weights (relu hidden layers)."""
    rng = np.random.RandomState(random_state)
    A = X
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        W = rng.uniform(-bound, bound, (fan_in, fan_out))
        b = rng.uniform(-bound, bound, fan_out)
        A = A @ W + b
        if i < len(sizes) - 2:
            A = np.maximum(A, 0.0)
    if out == "softmax":
        E = np.exp(A - A.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-A))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_label_smoothing_is_the_first_epochs_loss(n_classes):
    X, y = classification(n_classes=n_classes)
    eps = 0.2
    clf = MLPClassifier(hidden_layer_sizes=(5,), label_smoothing=eps, alpha=0.0, max_iter=1,
                        random_state=4, shuffle=False, dtype="float64")
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)  # one full-batch epoch: its loss is that of the initial weights
    if n_classes == 2:
        p = _initial_forward(X, [6, 5, 1], 4, "sigmoid")[:, 0]
        t = y * (1 - eps) + eps / 2
        expected = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    else:
        P = _initial_forward(X, [6, 5, 3], 4, "softmax")
        T = np.eye(3)[y] * (1 - eps) + eps / 3
        expected = -np.mean(np.sum(T * np.log(P), axis=1))
    assert clf.loss_ == pytest.approx(expected, rel=1e-9)
    assert clf.loss_ != pytest.approx(quietly(clone(clf).set_params(label_smoothing=0.0), X,
                                              y).loss_, rel=1e-3)
    with pytest.raises(ValueError, match="label_smoothing"):
        MLPClassifier(label_smoothing=1.0).fit(X, y)


def test_dropout_on_hidden_layers_seeded_by_random_state():
    X, y = classification()
    params = dict(hidden_layer_sizes=(16, 8), random_state=0, max_iter=5, dtype="float64")
    a = quietly(MLPClassifier(dropout=0.3, **params), X, y)
    assert [layer.dropout for layer in a.network_.layers] == [0.3, 0.3, 0.0]
    b = quietly(MLPClassifier(dropout=0.3, **params), X, y)
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)  # the same masks
    c = quietly(MLPClassifier(**params), X, y)
    assert not np.allclose(a.loss_curve_, c.loss_curve_)
    P = a.predict_proba(X)  # no dropout when predicting
    np.testing.assert_array_equal(P, a.predict_proba(X))
    reg = quietly(MLPRegressor(dropout=0.5, **params), *regression())
    assert [layer.dropout for layer in reg.network_.layers] == [0.5, 0.5, 0.0]
    with pytest.raises(ValueError, match="dropout"):
        MLPClassifier(dropout=1.0).fit(X, y)


def test_alpha_is_sklearns_penalty():
    X, y = regression()
    alpha = 0.5
    reg = MLPRegressor(hidden_layer_sizes=(5,), alpha=alpha, max_iter=1, random_state=2,
                       shuffle=False, dtype="float64")
    with pytest.warns(ConvergenceWarning):
        reg.fit(X, y)
    rng = np.random.RandomState(2)  # scikit-learn's initial weights: sqrt(6 / (fan_in + fan_out))
    W0 = rng.uniform(-np.sqrt(0.6), np.sqrt(0.6), (5, 5))
    b0 = rng.uniform(-np.sqrt(0.6), np.sqrt(0.6), 5)
    W1 = rng.uniform(-np.sqrt(1.0), np.sqrt(1.0), (5, 1))
    b1 = rng.uniform(-np.sqrt(1.0), np.sqrt(1.0), 1)
    pred = (np.maximum(X @ W0 + b0, 0) @ W1 + b1)[:, 0]
    expected = 0.5 * np.mean((pred - y) ** 2) + 0.5 * alpha * (np.sum(W0 ** 2)
                                                               + np.sum(W1 ** 2)) / len(X)
    assert reg.loss_ == pytest.approx(expected, rel=1e-9)
