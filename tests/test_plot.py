"""gdcore.plot: the artists hold the data (curves, paths, markers, regions), each function draws
on a given Axes and returns it, bad input is a clear exception, and matplotlib stays optional
(``import gdcore`` does not import it; without it gdcore.plot names the extra to install)."""
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib", minversion="3.8")  # ContourSet is an artist
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402

import gdcore as gd  # noqa: E402
from gdcore import plot as gp  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _line(ax, label):
    """The one line of ``ax`` with that legend label."""
    found = [line for line in ax.get_lines() if line.get_label() == label]
    assert len(found) == 1, [line.get_label() for line in ax.get_lines()]
    return found[0]


def _twin(ax):
    found = [a for a in ax.figure.axes if a is not ax and a.get_label() == "learning rate"]
    assert len(found) == 1
    return found[0]


def _contour_sets(ax):
    return [c for c in ax.collections if isinstance(c, ContourSet)]


def _vertices(contour_set):
    paths = [p for p in contour_set.get_paths() if len(p.vertices)]
    return np.concatenate([p.vertices for p in paths]) if paths else np.zeros((0, 2))


# --- matplotlib stays optional ------------------------------------------------------------------

def _run(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)


def test_import_gdcore_does_not_import_matplotlib():
    out = _run("""
        import sys
        import gdcore as gd
        X, y = gd.datasets.xor(n_samples=8, seed=0)
        net = gd.Network.from_sizes([2, 3, 1], seed=0)
        history = net.fit(X, y, epochs=2)
        gd.minimize(lambda v: v @ v, x0=[1.0, 2.0], max_iter=3)
        print(sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib"))
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_without_matplotlib_the_error_names_the_extra():
    out = _run("""
        import sys
        sys.modules["matplotlib"] = None          # as if it were not installed
        sys.modules["matplotlib.pyplot"] = None
        import gdcore as gd
        X, y = gd.datasets.xor(n_samples=8, seed=0)
        history = gd.Network.from_sizes([2, 3, 1], seed=0).fit(X, y, epochs=2)
        for attempt in (lambda: __import__("gdcore.plot"), history.plot):
            try:
                attempt()
            except ImportError as err:
                print(type(err).__name__, err)
            else:
                print("no error")
    """)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("ImportError") and "pip install gdcore[plot]" in line


# --- plot_history -------------------------------------------------------------------------------

def _fitted_history(validation=True, epochs=30):
    X, y = gd.datasets.two_moons(n_samples=120, noise=0.1, seed=0)
    net = gd.Network.from_sizes([2, 8, 2], output_activation="softmax", loss="cross_entropy",
                                seed=0)
    kwargs = {"validation_split": 0.25} if validation else {}
    return net.fit(X, y, optimizer=gd.Adam(lr=0.02), epochs=epochs, batch_size=30, seed=0,
                   **kwargs)


def test_history_lines_hold_the_losses_rates_and_best_epoch(backend):
    history = _fitted_history()
    ax = gp.plot_history(history)
    epochs = np.arange(history.epochs)
    train, val = _line(ax, "training loss"), _line(ax, "validation loss")
    np.testing.assert_array_equal(train.get_xdata(), epochs)
    np.testing.assert_array_equal(train.get_ydata(), history.loss)
    np.testing.assert_array_equal(val.get_ydata(), history.val_loss)
    best = _line(ax, f"best: epoch {history.best_epoch}")
    assert list(best.get_xdata()) == [history.best_epoch]
    assert list(best.get_ydata()) == [history.val_loss[history.best_epoch]]  # the monitored one
    rate = _line(_twin(ax), "learning rate")
    np.testing.assert_array_equal(rate.get_xdata(), epochs)
    np.testing.assert_array_equal(rate.get_ydata(), history.lr)
    assert _twin(ax).get_yscale() == "linear"  # a constant rate
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["training loss", "validation loss", f"best: epoch {history.best_epoch}",
                      "learning rate"]


def test_history_shortcut_and_ax_passthrough():
    history = _fitted_history(validation=False, epochs=5)
    fig, (left, right) = plt.subplots(1, 2)
    assert history.plot(ax=right) is right
    assert left.get_lines() == []
    np.testing.assert_array_equal(_line(right, "training loss").get_ydata(), history.loss)
    assert all(line.get_label() != "validation loss" for line in right.get_lines())
    assert isinstance(history.plot(lr=False), matplotlib.axes.Axes)
    assert len(plt.gcf().axes) == 1  # no twin axis without the rate


@pytest.mark.parametrize("loss, logy, expected", [
    ([1.0, 0.5, 0.2, 0.12], None, "linear"),      # under a decade
    ([1.0, 0.3, 0.05, 0.01], None, "log"),        # two decades
    ([2.0, 0.0, 0.0], None, "linear"),            # a zero: no log axis
    ([1.0, 0.3, 0.05, 0.01], False, "linear"),    # forced either way
    ([1.0, 0.5], True, "log"),
])
def test_history_log_scale_when_the_loss_spans_decades(loss, logy, expected):
    history = gd.History(loss=loss, lr=[0.1] * len(loss), epochs=len(loss), best_epoch=0)
    assert gp.plot_history(history, logy=logy).get_yscale() == expected


def test_history_marks_undone_epochs_and_rate_cuts(backend):
    # Plain SGD far too fast on the sine: epochs diverge, are rolled back, the rate is halved.
    X, y = gd.datasets.sine(n_samples=64, seed=0)
    net = gd.Network.from_sizes([1, 16, 1], activation="tanh", dtype="float64", seed=0)
    history = net.fit(X, y, optimizer=gd.SGD(lr=50.0), epochs=40, on_divergence="backoff")
    assert history.backoffs >= 4  # the case this test is about: the rates span a decade
    ax = history.plot()
    undone = _line(ax, "undone: diverged")
    np.testing.assert_array_equal(undone.get_xdata(), [e["epoch"] for e in history.events])
    cuts = _line(_twin(ax), "rate cut")
    np.testing.assert_array_equal(cuts.get_ydata(), [e["new_lr"] for e in history.events])
    assert _twin(ax).get_yscale() == "log"
    rate = _line(_twin(ax), "learning rate")
    np.testing.assert_array_equal(rate.get_ydata(), history.lr)


def test_history_made_by_hand_with_both_kinds_of_undone_epochs():
    history = gd.History(loss=[1.0, 0.8, 0.7], lr=[0.1, 0.05, 0.05], epochs=3, best_epoch=2,
                         events=[{"epoch": 1, "reason": "diverged", "loss": math.inf,
                                  "lr": 0.1, "new_lr": 0.05},
                                 {"epoch": 3, "reason": "loss rose", "loss": 0.9,
                                  "lr": 0.05, "new_lr": None}])
    ax = gp.plot_history(history)
    assert list(_line(ax, "undone: diverged").get_xdata()) == [1]
    assert list(_line(ax, "undone: loss rose").get_xdata()) == [3]
    assert list(_line(_twin(ax), "rate cut").get_xdata()) == [1]  # the stop cut nothing


def test_history_monitoring_train_loss_draws_it():
    history = gd.History(loss=[1.0, 0.8], lr=[0.1, 0.1], epochs=2, best_epoch=1,
                         monitor="train_loss", metrics={"train_loss": [0.9, 0.7]})
    ax = gp.plot_history(history)
    np.testing.assert_array_equal(_line(ax, "training loss (end of epoch)").get_ydata(),
                                  [0.9, 0.7])
    assert list(_line(ax, "best: epoch 1").get_ydata()) == [0.7]


@pytest.mark.parametrize("history, kwargs, error, match", [
    (gd.History(), {}, ValueError, "history holds no epoch"),
    ({"loss": [1.0]}, {}, TypeError, "history must be a gdcore History"),
    (gd.History(loss=[1.0], lr=[0.1], epochs=1), {"logy": "yes"}, TypeError, "logy must be"),
    (gd.History(loss=[1.0], lr=[0.1], epochs=1), {"lr": 1}, TypeError, "lr must be"),
    (gd.History(loss=[1.0], lr=[0.1], epochs=1), {"ax": "left"}, TypeError, "ax must be"),
])
def test_history_bad_input(history, kwargs, error, match):
    with pytest.raises(error, match=match):
        gp.plot_history(history, **kwargs)


# --- plot_lr_finder -----------------------------------------------------------------------------

def _range_test():
    X, y = gd.datasets.spirals(n_samples=150, n_classes=3, seed=0)
    net = gd.Network.from_sizes([2, 16, 3], output_activation="softmax", loss="cross_entropy",
                                seed=0)
    return gd.find_lr(net, X, y, optimizer=gd.Adam(), steps=60, seed=0)


def test_lr_finder_curve_and_suggestion(backend):
    result = _range_test()
    ax = gp.plot_lr_finder(result)
    assert ax.get_xscale() == "log"
    smooth = _line(ax, "loss (smoothed)")
    np.testing.assert_array_equal(smooth.get_xdata(), result.lrs)
    np.testing.assert_array_equal(smooth.get_ydata(), result.losses)
    np.testing.assert_array_equal(_line(ax, "loss per step").get_ydata(), result.raw_losses)
    mark = _line(ax, f"suggestion {result.suggestion:.3g}")
    assert list(mark.get_xdata()) == [result.suggestion]
    # on the smoothed curve, between the losses of the two tried rates around the suggestion
    i = int(np.searchsorted(result.lrs, result.suggestion))
    lo, hi = sorted(result.losses[max(i - 1, 0):i + 1][[0, -1]])
    assert lo <= mark.get_ydata()[0] <= hi
    # the y range shows the fall to the minimum; the blow-up leaves through the top
    bottom, top = ax.get_ylim()
    lowest = int(np.argmin(result.losses))
    assert bottom < result.losses.min() and top > result.losses[:lowest + 1].max()
    assert top < result.losses.max()


def test_lr_finder_shortcut_ax_passthrough_and_bad_input():
    result = _range_test()
    fig, ax = plt.subplots()
    assert result.plot(ax=ax, raw=False) is ax
    assert [line.get_label() for line in ax.get_lines() if line.get_label() == "loss per step"] \
        == []
    empty = gd.FindLRResult(np.zeros(0), np.zeros(0), 1e-7)
    with pytest.raises(ValueError, match="measured no step"):
        gp.plot_lr_finder(empty)
    with pytest.raises(ValueError, match="must be positive rates"):
        gp.plot_lr_finder(gd.FindLRResult(np.array([0.0, 1.0]), np.ones(2), 0.5))
    with pytest.raises(ValueError, match="of the same length"):
        gp.plot_lr_finder(gd.FindLRResult(np.array([0.1, 1.0]), np.ones(3), 0.5))
    with pytest.raises(TypeError, match="must be a gdcore FindLRResult"):
        gp.plot_lr_finder((result.lrs, result.losses))


# --- plot_descent -------------------------------------------------------------------------------

A = np.array([[3.0, 0.5], [0.5, 1.0]])  # largest curvature ~3.1: diverges above lr ~0.64


def quadratic(v):
    return 0.5 * v @ A @ v  # not elementwise: plot_descent calls it point by point


def test_descent_paths_equal_the_results_paths():
    results = [gd.minimize(quadratic, x0=[2.0, 1.5], grad=lambda v: A @ v, lr=lr, max_iter=30)
               for lr in (0.02, 0.3, 0.66)]
    assert results[1].converged or results[1].fun < 1e-6
    assert results[2].fun > quadratic(np.array([2.0, 1.5]))  # overshoots and grows
    labels = ["too small", "good", "too large"]
    ax = gp.plot_descent(quadratic, results, labels=labels)
    for r, label in zip(results, labels):
        line = _line(ax, label)
        np.testing.assert_array_equal(line.get_xdata(), r.path[:, 0])
        np.testing.assert_array_equal(line.get_ydata(), r.path[:, 1])
    starts = _line(ax, "start")
    np.testing.assert_array_equal(starts.get_xdata(), [2.0, 2.0, 2.0])
    # the window holds every iterate, and the contours are drawn over it
    points = np.concatenate([r.path for r in results])
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x0 < points[:, 0].min() and x1 > points[:, 0].max()
    assert y0 < points[:, 1].min() and y1 > points[:, 1].max()
    (contours,) = _contour_sets(ax)
    assert len(contours.levels) >= 10


def test_descent_shortcut_default_labels_and_bounds():
    rosenbrock = lambda v: (1 - v[0]) ** 2 + 100 * (v[1] - v[0] ** 2) ** 2  # noqa: E731
    result = gd.minimize(rosenbrock, x0=[-1.0, 1.0], lr=1e-3, momentum=0.9, max_iter=300)
    fig, ax = plt.subplots()
    assert result.plot(rosenbrock, ax=ax, bounds=(-2, 2, -1, 3)) is ax
    line = _line(ax, f"{result.nit} steps, not converged" if not result.converged
                 else f"converged in {result.nit} steps")
    np.testing.assert_array_equal(line.get_ydata(), result.path[:, 1])
    assert ax.get_xlim() == (-2.0, 2.0) and ax.get_ylim() == (-1.0, 3.0)


def test_grid_values_match_point_by_point_calls():
    xs, ys = np.linspace(-1, 2, 7), np.linspace(0, 1, 5)
    funs = [lambda v: v[0] ** 2 + np.sin(3 * v[1]),     # elementwise: one call on the grid
            quadratic,                                   # a matrix product: point by point
            lambda v: max(v[0], v[1])]                   # a Python branch: point by point
    for fun in funs:
        expected = np.array([[fun(np.array([x, y])) for x in xs] for y in ys])
        np.testing.assert_allclose(gp._grid_values(fun, xs, ys), expected, rtol=1e-12)


@pytest.mark.parametrize("fun, results, kwargs, error, match", [
    ("f", None, {}, TypeError, "fun must be callable"),
    (quadratic, [], {}, ValueError, "results is empty"),
    (quadratic, 3, {}, TypeError, "results must be a MinimizeResult"),
    (quadratic, [None], {}, TypeError, r"results\[0\] must be a MinimizeResult"),
    (lambda v: v @ v, "3d", {}, ValueError, "result 0 is a descent in 3 dimension"),
    (quadratic, "2d", {"labels": ["a", "b"]}, ValueError, "labels must be a sequence of 1"),
    (quadratic, "2d", {"bounds": (1, 0, 0, 1)}, ValueError, "xmin < xmax"),
    (quadratic, "2d", {"bounds": "wide"}, TypeError, "bounds must be"),
    (quadratic, "2d", {"levels": 1}, ValueError, "levels must be an integer >= 2"),
    (quadratic, "2d", {"resolution": 2.5}, ValueError, "resolution must be"),
    (lambda v: math.nan, "2d", {}, ValueError, "not finite anywhere"),
])
def test_descent_bad_input(fun, results, kwargs, error, match):
    made = {"2d": gd.minimize(quadratic, x0=[1.0, 1.0], max_iter=3),
            "3d": gd.minimize(lambda v: v @ v, x0=[1.0, 1.0, 1.0], max_iter=3)}
    results = made.get(results, results) if isinstance(results, str) else results
    with pytest.raises(error, match=match):
        gp.plot_descent(fun, results, **kwargs)


# --- plot_decision_boundary ---------------------------------------------------------------------

def _boundary(ax):
    """The vertices of the line(s) where the predicted class changes."""
    lines = [c for c in _contour_sets(ax) if not c.filled]
    assert len(lines) == 1
    return _vertices(lines[0])


def _regions(ax):
    (regions,) = [c for c in _contour_sets(ax) if c.filled]
    return regions


def _assert_covers(ax, X):
    """The filled regions and the window cover the data's range."""
    corners = _vertices(_regions(ax))
    assert (corners.min(axis=0) < X.min(axis=0)).all()
    assert (corners.max(axis=0) > X.max(axis=0)).all()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x0 < X[:, 0].min() and x1 > X[:, 0].max() and y0 < X[:, 1].min() < X[:, 1].max() < y1


def test_boundary_of_a_perceptron_is_its_line(backend):
    # w = (1, -2), b = 0.5: class 1 where x0 - 2 x1 + 0.5 >= 0; the boundary is that line.
    X, y = gd.datasets.two_moons(n_samples=80, noise=0.1, seed=0)
    p = gd.Perceptron(2, activation="sigmoid", seed=0)
    p.weights, p.bias = [1.0, -2.0], 0.5
    ax = gp.plot_decision_boundary(p, X, y, resolution=150)
    _assert_covers(ax, X)
    v = _boundary(ax)
    assert len(v) > 10
    step = (X.max(axis=0) - X.min(axis=0)).max() * 1.2 / 149
    np.testing.assert_allclose(v[:, 0] - 2 * v[:, 1] + 0.5, 0.0, atol=3 * step)
    # band k of the filled regions is class k: class 1 below the line, class 0 above it
    bands = _regions(ax).get_paths()
    assert bands[1].contains_point((2.0, -0.5)) and not bands[0].contains_point((2.0, -0.5))
    assert bands[0].contains_point((-0.5, 1.0)) and not bands[1].contains_point((-0.5, 1.0))
    # the points are coloured by their label
    (points,) = ax.collections[-1:]
    colors = points.get_facecolors()
    assert len(colors) == len(X)
    assert (colors[y == 0] == colors[y == 0][0]).all() and (colors[y == 1] != colors[0]).any()


def test_boundary_of_a_softmax_network_and_one_hot_labels(backend):
    # Two softmax outputs with logits (x0, x1): class 1 where x1 > x0.
    net = gd.Network([gd.Layer(2, 2, "softmax")], loss="cross_entropy", dtype="float64")
    net.layers[0].weights, net.layers[0].bias = np.eye(2), np.zeros(2)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2))
    y = (X[:, 1] > X[:, 0]).astype(int)
    ax = gp.plot_decision_boundary(net, X, np.eye(2)[y])
    _assert_covers(ax, X)
    v = _boundary(ax)
    np.testing.assert_allclose(v[:, 0], v[:, 1], atol=0.1)
    assert list(_regions(ax).levels) == [-0.5, 0.5, 1.5]


def test_boundary_of_a_trained_network_on_three_classes(backend):
    X, y = gd.datasets.spirals(n_samples=90, n_classes=3, seed=0)
    net = gd.Network.from_sizes([2, 16, 3], output_activation="softmax", loss="cross_entropy",
                                seed=0)
    net.fit(X, y, optimizer=gd.Adam(lr=0.02), epochs=20, batch_size=30, seed=0)
    fig, (left, right) = plt.subplots(1, 2)
    assert gp.plot_decision_boundary(net, X, y, ax=right, resolution=60) is right
    assert len(left.collections) == 0
    _assert_covers(right, X)
    assert len(_regions(right).levels) == 4  # three bands


def test_regression_output_is_a_filled_contour(backend):
    # identity unit 2 x0 - x1 + 1: the filled levels span its values over the window
    p = gd.Perceptron(2, activation="identity", seed=0)
    p.weights, p.bias = [2.0, -1.0], 1.0
    X = np.random.default_rng(1).uniform(-1, 1, size=(40, 2))
    y = p.predict(X)
    ax = gp.plot_decision_boundary(p, X, y)
    _assert_covers(ax, X)
    levels = _regions(ax).levels
    assert levels.min() <= y.min() and levels.max() >= y.max()
    assert not [c for c in _contour_sets(ax) if not c.filled]  # no class boundary


def test_boundary_of_scikit_learn_classifiers():
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    X, y = gd.datasets.two_moons(n_samples=100, noise=0.1, seed=0)
    mlp = MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=1000,
                        random_state=0).fit(X, y)
    ax = gp.plot_decision_boundary(mlp, X, y, resolution=80)
    _assert_covers(ax, X)
    assert len(_boundary(ax)) > 0
    # string labels, through classes_; a linear model's boundary is its line
    names = np.array(["blue", "red"])[y]
    logistic = LogisticRegression().fit(X, names)
    ax = gp.plot_decision_boundary(logistic, X, names, resolution=150)
    v = _boundary(ax)
    w, b = logistic.coef_[0], logistic.intercept_[0]
    step = (X.max(axis=0) - X.min(axis=0)).max() * 1.2 / 149
    assert np.abs(v @ w + b).max() / np.linalg.norm(w) < 2 * step
    # classes_ in any order: regions and points follow it
    class Reversed:
        classes_ = np.array(["red", "blue"])

        def predict_proba(self, G):
            return logistic.predict_proba(G)[:, ::-1]

    ax = gp.plot_decision_boundary(Reversed(), X, names, resolution=150)
    def rows(a):
        return a[np.lexsort(a.T[::-1])]
    np.testing.assert_allclose(rows(_boundary(ax)), rows(v))  # the same line
    colors = ax.collections[-1].get_facecolors()
    assert (colors[names == "red"] == matplotlib.colors.to_rgba("C0")).all()
    with pytest.raises(ValueError, match="labels the model does not know"):
        gp.plot_decision_boundary(logistic, X, np.array(["green"] * len(X)))


def test_boundary_from_predict_only():
    class Halfplane:  # no predict_proba, no classes_: labels from predict
        def predict(self, X):
            return np.where(np.asarray(X)[:, 0] > 0.25, "right", "left")

    X = np.random.default_rng(0).uniform(-1, 1, size=(30, 2))
    ax = gp.plot_decision_boundary(Halfplane(), X, Halfplane().predict(X))
    np.testing.assert_allclose(_boundary(ax)[:, 0], 0.25, atol=0.02)
    ax = gp.plot_decision_boundary(Halfplane(), X)  # no labels: the points in black
    assert len(_regions(ax).levels) == 3


@pytest.mark.parametrize("X, y, error, match", [
    (np.zeros((5, 3)), np.zeros(5), ValueError, r"shape \(n_samples, 2\), got \(5, 3\)"),
    (np.zeros(5), np.zeros(5), ValueError, r"shape \(n_samples, 2\), got \(5,\)"),
    (np.zeros((0, 2)), np.zeros(0), ValueError, "X has no sample"),
    (np.array([[0.0, np.nan]]), np.zeros(1), ValueError, "not finite"),
    (np.zeros((5, 2)), np.zeros(4), ValueError, r"one label per sample \(5,\)"),
    (np.zeros((5, 2)), np.full(5, 3), ValueError, r"class indices 0\.\.1"),
    ([["a", "b"]], [0], TypeError, "X must be an array of numbers"),
])
def test_boundary_bad_input(X, y, error, match):
    net = gd.Network.from_sizes([2, 2], output_activation="softmax", loss="cross_entropy",
                                seed=0)
    with pytest.raises(error, match=match):
        gp.plot_decision_boundary(net, X, y)


def test_boundary_bad_models():
    X = np.zeros((4, 2))
    with pytest.raises(TypeError, match="must be a gdcore Network or Perceptron, or an"):
        gp.plot_decision_boundary(object(), X, np.zeros(4))
    with pytest.raises(ValueError, match="this network has 3"):
        gp.plot_decision_boundary(gd.Network.from_sizes([3, 1], seed=0), X, np.zeros(4))
    with pytest.raises(ValueError, match="2 identity outputs"):
        gp.plot_decision_boundary(gd.Network.from_sizes([2, 2], seed=0), X, np.zeros(4))


def test_boundary_of_gdcore_classifier_with_string_labels():
    pytest.importorskip("sklearn")
    from gdcore.sklearn import MLPClassifier

    X, y = gd.datasets.two_moons(n_samples=120, noise=0.1, seed=0)
    names = np.array(["left", "right"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=200,
                        random_state=0).fit(X, names)
    ax = gp.plot_decision_boundary(clf, X, names, resolution=60)
    _assert_covers(ax, X)
    assert len(_boundary(ax)) > 0
