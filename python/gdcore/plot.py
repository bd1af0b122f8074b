"""Pictures of training and of gradient descent, drawn with matplotlib (the extra ``gdcore[plot]``).

Every function draws on ``ax`` when one is given (a new figure otherwise) and returns the
matplotlib ``Axes`` it drew on, so pictures compose with ``plt.subplots``:

- :func:`plot_history`: the loss per epoch, the learning rate, undone epochs and the best one;
- :func:`plot_lr_finder`: the range test's loss against the rate, the suggestion marked;
- :func:`plot_descent`: contours of a function of two variables and the paths descents walked;
- :func:`plot_decision_boundary`: a classifier's regions (or a regressor's output) over 2-D data.

``History.plot()``, ``FindLRResult.plot()`` and ``MinimizeResult.plot(fun)`` are shortcuts.
Only this module imports matplotlib; ``import gdcore`` does not.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence

import numpy as np

try:
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap, Normalize
except ImportError as err:  # the optional extra is not installed
    raise ImportError(
        f"gdcore.plot needs matplotlib, the optional extra of gdcore: pip install gdcore[plot] "
        f"(or pip install matplotlib); importing it failed with: {err}") from err

from .lr_finder import FindLRResult
from ._compiled import python_function
from .minimize import MinimizeResult, _scalar_value
from .network import Network, Perceptron
from .training import History

__all__ = ["plot_history", "plot_lr_finder", "plot_descent", "plot_decision_boundary"]

#: A curve is drawn on a log axis when its largest positive value is at least this many times
#: its smallest (it spans a decade or more) and it has no value <= 0.
LOG_SPAN = 10.0
#: The grid of plot_descent and plot_decision_boundary extends the data's box by this
#: fraction of its width on each side.
MARGIN = 0.1

# What each colour stands for, the same in every picture: matplotlib's cycle "C0".."C9" for
# the curves and markers, greys for the learning rate on its twin axis, black for the starts.
_COLORS = {
    "loss": "C0",             # the training loss; the range test's loss
    "validation loss": "C1",
    "best": "C2",             # the best epoch
    "diverged": "C3",         # an epoch undone because it diverged
    "loss rose": "C5",        # an epoch undone because the loss rose
    "suggestion": "C3",       # the range test's suggested rate
    "learning rate": "0.45",
    "rate cut": "0.3",        # a back-off's new rate
    "start": "k",             # where the descents started
}


def _axes(ax: Any) -> Any:
    """``ax``, or the Axes of a new figure when it is None."""
    if ax is None:
        _, ax = plt.subplots()
        return ax
    if not hasattr(ax, "plot") or not hasattr(ax, "figure"):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return ax


def _spans_decades(values: Any) -> bool:
    """Whether ``values`` are all positive and the largest is >= LOG_SPAN x the smallest."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return arr.size > 1 and bool(arr.min() > 0) and arr.max() >= LOG_SPAN * arr.min()


def _legend(ax: Any, twin: Any = None, **kwargs: Any) -> None:
    """The legend of ``ax`` in small type, with the entries of ``twin`` (its twin axis, or
    None) after its own; ``ax`` then goes in front of ``twin``, its background cleared, so
    its curves and the legend are not hidden under the twin's."""
    handles, labels = ax.get_legend_handles_labels()
    if twin is not None:
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
        ax.set_zorder(twin.get_zorder() + 1)
        ax.patch.set_visible(False)
    ax.legend(handles, labels, fontsize="small", **kwargs)


def _flag(value: Any, name: str) -> Optional[bool]:
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    raise TypeError(f"{name} must be True, False or None (decide from the data), "
                    f"got {value!r}")


# --- training -------------------------------------------------------------------------------

def plot_history(history: History, ax: Any = None, *, logy: Optional[bool] = None,
                 lr: bool = True) -> Any:
    """The loss per epoch of a ``fit``, with its learning rate and what the loop undid.

    Draws the training loss (``label="training loss"``) and, when there is one, the
    validation loss (``"validation loss"``) against the epoch index; the loss the run
    monitored when that is neither (``restore_best_weights`` without validation data watches
    the end-of-epoch training loss, ``"training loss (end of epoch)"``); a star on the
    monitored loss at ``history.best_epoch`` (``"best: epoch k"``); a cross at the top of the
    axes for each undone epoch (``"undone: diverged"``, ``"undone: loss rose"``: rolled
    back, then retried or stopped); and on a twin axis (``.get_label() == "learning rate"``)
    the rate of each epoch (``"learning rate"``) with a triangle where a back-off cut it
    (``"rate cut"``).

    Parameters
    ----------
    history : History
        What ``fit`` returned; it must hold at least one epoch.
    ax : matplotlib Axes or None
        Where to draw (a new figure when None). The twin axis of the rate is added to it.
    logy : bool or None
        Log scale for the loss; None chooses it when the losses span a decade or more.
    lr : bool
        Draw the learning rate on the twin axis (on a log scale when it spans a decade).

    Returns
    -------
    matplotlib Axes
        ``ax`` (or the new one), holding the loss curves.

    Raises
    ------
    TypeError
        ``history`` is not a History, or ``ax`` is not an Axes.
    ValueError
        ``history`` holds no epoch.
    """
    if not isinstance(history, History):
        raise TypeError(f"history must be a gdcore History (what fit returns), got "
                        f"{type(history).__name__}")
    logy = _flag(logy, "logy")
    if not isinstance(lr, (bool, np.bool_)):
        raise TypeError(f"lr must be True or False, got {lr!r}")
    if not history.loss:
        raise ValueError("history holds no epoch: there is nothing to plot (did fit keep "
                         "an epoch?)")
    ax = _axes(ax)
    epochs = np.arange(len(history.loss))
    curves = [np.asarray(history.loss, dtype=np.float64)]
    ax.plot(epochs, curves[0], color=_COLORS["loss"], label="training loss")
    if history.val_loss:
        curves.append(np.asarray(history.val_loss, dtype=np.float64))
        ax.plot(np.arange(len(curves[-1])), curves[-1], color=_COLORS["validation loss"],
                label="validation loss")
    monitored = np.asarray(history._monitored(), dtype=np.float64)
    if history.monitor == "train_loss" and monitored.size:
        curves.append(monitored)
        ax.plot(np.arange(monitored.size), monitored, color=_COLORS["loss"], linestyle="--",
                label="training loss (end of epoch)")
    best = history.best_epoch
    if best is not None and 0 <= best < monitored.size:
        ax.plot([best], [monitored[best]], linestyle="none", marker="*", markersize=12,
                color=_COLORS["best"], label=f"best: epoch {best}")
    # Undone epochs: their losses are not kept (they may be huge or infinite), so they are
    # marked at the top of the axes (x in epochs, y in axes coordinates).
    for reason in ("diverged", "loss rose"):
        undone = [e["epoch"] for e in history.events if e["reason"] == reason]
        if undone:
            ax.plot(undone, np.full(len(undone), 0.97), transform=ax.get_xaxis_transform(),
                    linestyle="none", marker="x", color=_COLORS[reason],
                    label=f"undone: {reason}")
    if logy is None:
        logy = _spans_decades(np.concatenate(curves))
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    twin = None
    if lr and history.lr:
        twin = ax.twinx()
        twin.set_label("learning rate")
        rates = np.asarray(history.lr, dtype=np.float64)
        twin.plot(np.arange(rates.size), rates, color=_COLORS["learning rate"], linestyle=":",
                  drawstyle="steps-post", label="learning rate")
        cuts = [(e["epoch"], e["new_lr"]) for e in history.events if e["new_lr"] is not None]
        if cuts:
            x, y = zip(*cuts)
            twin.plot(x, y, linestyle="none", marker="v", color=_COLORS["rate cut"],
                      label="rate cut")
        if _spans_decades(np.concatenate([rates, [c[1] for c in cuts]])):
            twin.set_yscale("log")
        twin.set_ylabel("learning rate")
    _legend(ax, twin, loc="upper right")
    return ax


def plot_lr_finder(result: FindLRResult, ax: Any = None, *, raw: bool = True) -> Any:
    """The learning-rate range test: loss against rate on a log axis, the suggestion marked.

    Draws the smoothed loss (``label="loss (smoothed)"``), each step's own loss faintly
    (``"loss per step"``), and a dot on the smoothed curve at the suggested rate with a dotted
    vertical line through it (labelled ``"suggestion <rate>"``). The y range runs from the
    smoothed curve's minimum to half again its fall to there, so the blow-up at the end leaves
    through the top instead of flattening the part that matters.

    Parameters
    ----------
    result : FindLRResult
        What ``find_lr`` returned; it must hold at least one step.
    ax : matplotlib Axes or None
    raw : bool
        Also draw the raw loss of each step.

    Returns
    -------
    matplotlib Axes

    Raises
    ------
    TypeError
        ``result`` is not a FindLRResult, or ``ax`` is not an Axes.
    ValueError
        The range test measured no step (its first loss was not finite); rates that are not
        positive, or losses of another length than the rates.
    """
    if not isinstance(result, FindLRResult):
        raise TypeError(f"result must be a gdcore FindLRResult (what find_lr returns), got "
                        f"{type(result).__name__}")
    if not isinstance(raw, (bool, np.bool_)):
        raise TypeError(f"raw must be True or False, got {raw!r}")
    lrs = np.asarray(result.lrs, dtype=np.float64)
    losses = np.asarray(result.losses, dtype=np.float64)
    if lrs.size == 0:
        raise ValueError("the range test measured no step (its first loss was not finite): "
                         "there is nothing to plot; try a smaller lr_min")
    if lrs.ndim != 1 or losses.shape != lrs.shape:
        raise ValueError(f"result.lrs and result.losses must be 1-D of the same length, got "
                         f"shapes {lrs.shape} and {losses.shape}")
    if not (np.isfinite(lrs).all() and lrs.min() > 0 and result.suggestion > 0):
        raise ValueError("result.lrs and result.suggestion must be positive rates (a log axis)")
    ax = _axes(ax)
    raw_losses = np.asarray(result.raw_losses, dtype=np.float64)
    if raw and raw_losses.size == lrs.size:
        ax.plot(lrs, raw_losses, color=_COLORS["loss"], alpha=0.3, linewidth=0.8,
                label="loss per step")
    ax.plot(lrs, losses, color=_COLORS["loss"], label="loss (smoothed)")
    s = float(result.suggestion)
    # The dot sits on the smoothed curve, interpolated in log(rate) between the tried rates.
    at = float(np.interp(math.log(s), np.log(lrs), losses))
    label = f"suggestion {s:.3g}"
    ax.axvline(s, color=_COLORS["suggestion"], linestyle=":", linewidth=1, label="_nolegend_")
    ax.plot([s], [at], linestyle="none", marker="o", color=_COLORS["suggestion"], label=label)
    ax.set_xscale("log")
    finite = losses[np.isfinite(losses)]
    if finite.size:
        # From the minimum up to half again the fall to it: the blow-up leaves through the top
        # instead of flattening the part that matters.
        lowest = int(np.argmin(finite))
        lo, start = float(finite[lowest]), float(finite[:lowest + 1].max())
        hi = min(start + 0.5 * (start - lo), float(finite.max())) if start > lo \
            else float(finite.max())
        pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 1e-12)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(f"range test ({result.optimizer})", fontsize="medium")
    _legend(ax)
    return ax


# --- gradient descent on a function -------------------------------------------------------------

def _results(results: Any) -> list:
    if isinstance(results, MinimizeResult):
        return [results]
    try:
        items = list(results)
    except TypeError:
        raise TypeError(f"results must be a MinimizeResult or a sequence of them, got "
                        f"{type(results).__name__}") from None
    if not items:
        raise ValueError("results is empty: pass at least one gd.minimize result")
    for i, r in enumerate(items):
        if not isinstance(r, MinimizeResult):
            raise TypeError(f"results[{i}] must be a MinimizeResult (what gd.minimize "
                            f"returns), got {type(r).__name__}")
    return items


def _grid_values(fun: Any, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """``fun`` at every point of the grid ``xs x ys``: shape (len(ys), len(xs)).

    A function written elementwise (``v[0] ** 2 + 3 * v[1]``) is called once on the stacked
    grid, shape (2, len(ys), len(xs)), when that gives the same values as calling it point by
    point at a few probes; otherwise (``x @ A @ x``, Python branches) it is called per point.
    """
    XX, YY = np.meshgrid(xs, ys)
    probes = [(0, 0), (len(ys) - 1, len(xs) - 1), (len(ys) // 3, len(xs) // 2)]
    with np.errstate(all="ignore"):
        expected = [_scalar_value(fun(np.array([XX[p], YY[p]])), "on the plot's grid")
                    for p in probes]
        try:
            Z = np.asarray(fun(np.stack([XX, YY])), dtype=np.float64)
        except Exception:  # not elementwise: fall back to one call per point
            Z = None
        if Z is not None and Z.shape == XX.shape and np.allclose(
                [Z[p] for p in probes], expected, rtol=1e-9, atol=0.0, equal_nan=True):
            return Z
        return np.array([[_scalar_value(fun(np.array([x, y])), "on the plot's grid")
                          for x in xs] for y in ys])


def _box(points: np.ndarray) -> tuple:
    """(xmin, xmax, ymin, ymax) of ``points`` (n, 2) widened by MARGIN (1 when flat)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = hi - lo
    pad = np.where(span > 0, MARGIN * span, np.maximum(1.0, 0.1 * np.abs(lo)))
    return lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1]


def _bounds(bounds: Any) -> tuple:
    try:
        box = tuple(float(b) for b in bounds)
    except (TypeError, ValueError):
        raise TypeError(f"bounds must be (xmin, xmax, ymin, ymax), got {bounds!r}") from None
    if len(box) != 4 or not all(map(math.isfinite, box)) or not (
            box[0] < box[1] and box[2] < box[3]):
        raise ValueError(f"bounds must be four finite numbers (xmin, xmax, ymin, ymax) with "
                         f"xmin < xmax and ymin < ymax, got {bounds!r}")
    return box


def _resolution(value: Any) -> int:
    if (not isinstance(value, numbers.Integral) or isinstance(value, bool)) or value < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {value!r}")
    return int(value)


def _status(r: MinimizeResult) -> str:
    if r.converged:
        return f"converged in {r.nit} steps"
    if r.diverged:
        return f"diverged after {r.nit} steps"
    return f"{r.nit} steps, not converged"


def plot_descent(fun: Any, results: Any, ax: Any = None, *, labels: Optional[Sequence[str]]
                 = None, bounds: Any = None, levels: int = 25, resolution: int = 120,
                 data: Any = None) -> Any:
    """Contours of a function of two variables with the paths gradient descent walked on it.

    The picture of the learning rate: too small a rate crawls, a good one converges, too large
    a one overshoots from side to side and diverges. Each result's path is one line through
    its iterates (``get_xdata()``/``get_ydata()`` are ``path[:, 0]``/``path[:, 1]``), labelled
    by ``labels`` or by how the run ended; a black dot marks the start and a ring the end.

    Parameters
    ----------
    fun : callable or compiled function
        ``fun(v) -> float`` for ``v`` of shape (2,), the function the results minimised; or
        the compiled function given to ``gd.minimize`` (evaluated point by point).
    results : MinimizeResult or sequence of them
        What ``gd.minimize`` returned, on a function of two variables (``gd.minimize_many``'s
        list of results as it is).
    ax : matplotlib Axes or None
    labels : sequence of str or None
        One legend entry per result (e.g. ``["lr=0.01", "lr=0.1", "lr=0.21"]``).
    bounds : (xmin, xmax, ymin, ymax) or None
        The window of the contours; None: the box around every path, widened by a tenth.
        (A path that diverges far away makes that box large: give bounds to look closer.)
    levels : int
        Number of contour lines, at quantiles of the function's values on the grid (so
        steep functions such as Rosenbrock's get lines near their minimum too).
    resolution : int
        Grid points per side at which ``fun`` is evaluated.
    data : optional
        For a compiled ``fun``: its ``data``, as given to ``gd.minimize``.

    Returns
    -------
    matplotlib Axes

    Raises
    ------
    TypeError
        ``fun`` not callable; ``results`` not MinimizeResults; a bad ``labels``/``bounds``.
    ValueError
        A result of a function of other than two variables; no result; ``labels`` of the
        wrong length; ``fun`` not finite anywhere on the grid.
    """
    fun = python_function(fun, data)
    if not callable(fun):
        raise TypeError(f"fun must be callable (the function that was minimised), got "
                        f"{type(fun).__name__}")
    items = _results(results)
    for i, r in enumerate(items):
        if r.path.ndim != 2 or r.path.shape[1] != 2:
            raise ValueError(f"plot_descent draws functions of two variables, but result {i} "
                             f"is a descent in {r.path.shape[-1]} dimension(s)")
    if labels is None:
        labels = [_status(r) for r in items]
    elif isinstance(labels, str) or len(labels) != len(items):
        raise ValueError(f"labels must be a sequence of {len(items)} strings, one per result, "
                         f"got {labels!r}")
    if isinstance(levels, bool) or not isinstance(levels, numbers.Integral) or levels < 2:
        raise ValueError(f"levels must be an integer >= 2, got {levels!r}")
    resolution = _resolution(resolution)
    box = _box(np.concatenate([r.path for r in items])) if bounds is None else _bounds(bounds)
    ax = _axes(ax)
    xs = np.linspace(box[0], box[1], resolution)
    ys = np.linspace(box[2], box[3], resolution)
    Z = _grid_values(fun, xs, ys)
    finite = Z[np.isfinite(Z)]
    if finite.size == 0:
        raise ValueError("fun is not finite anywhere on the plot's grid")
    lines = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, int(levels) + 1)[:-1] ** 2))
    if lines.size >= 2:
        ax.contour(xs, ys, np.ma.masked_invalid(Z), levels=lines, cmap="viridis",
                   linewidths=0.7, alpha=0.8)
    for i, (r, label) in enumerate(zip(items, labels)):
        path = np.asarray(r.path, dtype=np.float64)
        marker = "o" if len(path) <= 200 else None
        (line,) = ax.plot(path[:, 0], path[:, 1], color=f"C{i % 10}", marker=marker,
                          markersize=2.5, linewidth=1.2, label=str(label))
        ax.plot(path[-1, 0], path[-1, 1], linestyle="none", marker="o", markersize=7,
                markerfacecolor="none", markeredgecolor=line.get_color(), label="_nolegend_")
    starts = np.array([r.path[0] for r in items])
    ax.plot(starts[:, 0], starts[:, 1], linestyle="none", marker="o", color=_COLORS["start"],
            markersize=5, label="start")
    ax.set_xlim(box[0], box[1])
    ax.set_ylim(box[2], box[3])
    ax.set_xlabel("$x_0$")
    ax.set_ylabel("$x_1$")
    _legend(ax)
    return ax


# --- models on 2-D inputs ---------------------------------------------------------------------

def _features(X: Any) -> np.ndarray:
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("X must be an array of numbers of shape (n_samples, 2)") from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary draws models of two inputs: X must have "
                         f"shape (n_samples, 2), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("X has no sample")
    if not np.isfinite(arr).all():
        raise ValueError("X holds values that are not finite")
    return arr


def _gdcore_predictor(net: Network) -> tuple:
    """(kind, number of classes or None, function grid -> class index or output)."""
    if net.n_inputs != 2:
        raise ValueError(f"plot_decision_boundary draws models of two inputs; this network "
                         f"has {net.n_inputs}")
    out_act = net.layers[-1].activation
    if out_act == "softmax":
        return "classes", net.n_outputs, lambda G: np.argmax(net.predict(G), axis=1)
    if net.n_outputs == 1 and out_act == "sigmoid":
        return "classes", 2, lambda G: (net.predict(G)[:, 0] >= 0.5).astype(np.int64)
    if net.n_outputs == 1:
        return "regression", None, lambda G: np.asarray(net.predict(G)[:, 0], np.float64)
    raise ValueError(f"this network has {net.n_outputs} {out_act} outputs: "
                     f"plot_decision_boundary draws classifiers (a softmax output, or one "
                     f"sigmoid unit) and regressors of one output")


def _labels_to_index(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The position of each label of ``y`` in ``classes`` (which need not be sorted)."""
    order = np.argsort(classes, kind="stable")
    idx = order[np.clip(np.searchsorted(classes[order], y), 0, len(classes) - 1)]
    unknown = classes[idx] != y
    if unknown.any():
        raise ValueError(f"y holds labels the model does not know ({y[unknown][0]!r}); "
                         f"its classes are {list(classes)}")
    return idx


def plot_decision_boundary(model: Any, X: Any, y: Any = None, ax: Any = None, *,
                           resolution: int = 200) -> Any:
    """A model's answer over the plane of two inputs, with the data on top.

    For a classifier, the plane is filled with the colour of the class it predicts (regions
    from ``contourf``) with black lines where the class changes, and the samples are drawn in
    the colour of their label, so misclassified points stand out. For a regressor of one
    output, the output is a filled contour and the samples are coloured by ``y`` on the same
    scale. The grid covers the data's box widened by a tenth on each side.

    Which kind it is:

    - a gdcore ``Network`` or ``Perceptron`` with a softmax output: the class of the largest
      output; with one sigmoid output: class 1 where the output is >= 0.5; any other single
      output: a regressor;
    - any other object with ``predict_proba`` (scikit-learn classifiers, gdcore's sklearn
      wrappers): the class of the largest probability, labelled by its ``classes_``;
    - any other object with ``predict``: a classifier when its predictions are integers,
      booleans or strings (its classes: those it predicts on the grid and those in ``y``),
      else a regressor.

    Parameters
    ----------
    model : Network, Perceptron or an estimator with predict_proba / predict
    X : array (n_samples, 2)
    y : array (n_samples,) or None
        Labels (classes, or one-hot rows for a softmax network) or targets; None draws the
        samples in black.
    ax : matplotlib Axes or None
    resolution : int
        Grid points per side.

    Returns
    -------
    matplotlib Axes

    Raises
    ------
    TypeError
        ``model`` can neither predict nor is a gdcore model; ``ax`` is not an Axes.
    ValueError
        ``X`` not of shape (n, 2) or not finite; ``y`` of another length or with labels the
        model does not know; a network with several outputs that are not a softmax.
    """
    X = _features(X)
    resolution = _resolution(resolution)
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim == 2 and y.shape[0] == X.shape[0]:  # one-hot rows or class probabilities
            y = np.argmax(y, axis=1)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have one label per sample ({X.shape[0]},), got shape "
                             f"{y.shape}")
    if isinstance(model, Perceptron):
        model = model.network
    if isinstance(model, Network):
        kind, n_classes, predict = _gdcore_predictor(model)
        y_index = None
        if y is not None and kind == "classes":
            if y.dtype.kind not in "biuf":
                raise ValueError(f"y must hold class indices 0..{n_classes - 1} for a gdcore "
                                 f"network, got dtype {y.dtype}")
            y_index = (np.asarray(y, np.float64) >= 0.5).astype(np.int64) if n_classes == 2 \
                and model.layers[-1].activation == "sigmoid" else np.asarray(y).astype(np.int64)
            if y_index.min() < 0 or y_index.max() >= n_classes:
                raise ValueError(f"y must hold class indices 0..{n_classes - 1}")
    elif hasattr(model, "predict_proba") or hasattr(model, "predict"):
        kind, n_classes, predict, y_index = _estimator_predictor(model, X, y)
    else:
        raise TypeError(f"model must be a gdcore Network or Perceptron, or an estimator with "
                        f"predict_proba or predict, got {type(model).__name__}")

    ax = _axes(ax)
    box = _box(X)
    xs = np.linspace(box[0], box[1], resolution)
    ys = np.linspace(box[2], box[3], resolution)
    XX, YY = np.meshgrid(xs, ys)
    Z = np.asarray(predict(np.column_stack([XX.ravel(), YY.ravel()]))).reshape(XX.shape)
    if kind == "labels":
        classes = np.unique(Z if y is None else np.concatenate([Z.ravel(), y]))
        Z = _labels_to_index(Z.ravel(), classes).reshape(XX.shape)
        y_index = None if y is None else _labels_to_index(y, classes)
        kind, n_classes = "classes", len(classes)
    if kind == "classes":
        colors = [plt.get_cmap("tab10")(i % 10) for i in range(n_classes)]
        bands = np.arange(n_classes + 1) - 0.5
        ax.contourf(xs, ys, Z, levels=bands, colors=colors, alpha=0.25)
        inside = bands[(bands > Z.min()) & (bands < Z.max())]  # only where the class changes
        if inside.size:
            ax.contour(xs, ys, Z, levels=inside, colors="k", linewidths=1.0)
        if y is not None:
            ax.scatter(X[:, 0], X[:, 1], c=ListedColormap(colors)(y_index), s=14,
                       edgecolors="k", linewidths=0.4)
        else:
            ax.scatter(X[:, 0], X[:, 1], c="k", s=10)
    else:
        Z = np.asarray(Z, dtype=np.float64)
        values = Z[np.isfinite(Z)]
        if y is not None:
            values = np.concatenate([values, np.asarray(y, np.float64)])
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
        norm = Normalize(lo, hi if hi > lo else lo + 1.0)
        ax.contourf(xs, ys, Z, levels=20, cmap="viridis", norm=norm, alpha=0.6)
        ax.scatter(X[:, 0], X[:, 1], c="k" if y is None else np.asarray(y, np.float64),
                   cmap=None if y is None else "viridis", norm=None if y is None else norm,
                   s=14, edgecolors="k", linewidths=0.4)
    ax.set_xlim(box[0], box[1])
    ax.set_ylim(box[2], box[3])
    ax.set_xlabel("$x_0$")
    ax.set_ylabel("$x_1$")
    return ax


def _estimator_predictor(model: Any, X: np.ndarray, y: Optional[np.ndarray]) -> tuple:
    """(kind, number of classes, grid -> class index or output, y as class indices) of a
    scikit-learn-like estimator. The number of classes and the indices of a classifier
    without ``classes_`` are settled on the grid (see :func:`plot_decision_boundary`)."""
    classes = getattr(model, "classes_", None)
    if hasattr(model, "predict_proba") and classes is not None:
        classes = np.asarray(classes)
        y_index = None if y is None else _labels_to_index(y, classes)
        return ("classes", len(classes),
                lambda G: np.argmax(np.asarray(model.predict_proba(G)), axis=1), y_index)
    if not hasattr(model, "predict"):
        raise TypeError(f"{type(model).__name__} has predict_proba but no classes_: fit it "
                        f"first, or give it predict")
    # Without classes_: labels (integers, booleans, strings) make a classifier, whose
    # classes are those it predicts on the grid and those in y.
    if np.asarray(model.predict(X[:1])).dtype.kind in "biuUSO":
        return "labels", None, lambda G: np.asarray(model.predict(G)).ravel(), None
    return "regression", None, lambda G: np.asarray(model.predict(G), np.float64), None
