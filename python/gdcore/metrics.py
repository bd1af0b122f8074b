"""Metrics that ``fit(..., metrics=(...))`` records per epoch, as Keras does.

Each metric takes the network's outputs ``(n, n_outputs)``, the targets in the layout the
engines take (``Y``: class indices ``(n,)`` or ``(n, k)`` probabilities for cross_entropy, else
``(n, n_outputs)``), the optional sample weights ``(n,)`` and the loss name, and returns a
float. Weights average the per-sample values, as the loss does.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

#: Losses whose outputs are class scores, so that "accuracy" means something.
CLASSIFICATION_LOSSES = ("cross_entropy", "bce")


def _mean(values: np.ndarray, weights: Optional[np.ndarray]) -> float:
    values = values.reshape(values.shape[0], -1).mean(axis=1)
    return float(np.average(values, weights=weights))


def accuracy(outputs: np.ndarray, Y: np.ndarray, weights: Optional[np.ndarray],
             loss: str) -> float:
    """Fraction of correct predictions: the arg-max class for cross_entropy (against the
    index, or the arg-max of probability targets); ``output > 0.5`` against ``y > 0.5`` for
    each output of bce (Keras' binary accuracy)."""
    if loss == "cross_entropy":
        labels = Y if Y.ndim == 1 else Y.argmax(axis=1)
        correct = outputs.argmax(axis=1) == labels
    else:
        correct = (outputs > 0.5) == (Y > 0.5)
    return _mean(correct.astype(np.float64), weights)


def mse(outputs: np.ndarray, Y: np.ndarray, weights: Optional[np.ndarray], loss: str) -> float:
    """Mean squared error of the outputs."""
    return _mean((outputs.astype(np.float64) - _dense(Y, outputs)) ** 2, weights)


def mae(outputs: np.ndarray, Y: np.ndarray, weights: Optional[np.ndarray], loss: str) -> float:
    """Mean absolute error of the outputs."""
    return _mean(np.abs(outputs.astype(np.float64) - _dense(Y, outputs)), weights)


def r2(outputs: np.ndarray, Y: np.ndarray, weights: Optional[np.ndarray], loss: str) -> float:
    """Coefficient of determination, averaged uniformly over the outputs (scikit-learn's
    ``r2_score``, ``multioutput="uniform_average"``). A constant target column scores 1 when
    predicted exactly, else 0, as in scikit-learn."""
    target = _dense(Y, outputs)
    w = np.ones(target.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w[:, None]
    mean = (w * target).sum(axis=0) / w.sum()
    residual = (w * (target - outputs) ** 2).sum(axis=0)
    total = (w * (target - mean) ** 2).sum(axis=0)
    scores = np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0),
                      np.where(residual == 0, 1.0, 0.0))
    return float(scores.mean())


def _dense(Y: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Targets as a float64 array of the outputs' shape (one-hot for class indices)."""
    if Y.ndim == 1 and outputs.shape[1] > 1:
        dense = np.zeros(outputs.shape)
        dense[np.arange(Y.shape[0]), Y] = 1.0
        return dense
    return Y.astype(np.float64).reshape(outputs.shape)


METRICS: dict = {"accuracy": accuracy, "mse": mse, "mae": mae, "r2": r2}

Metric = Callable[[np.ndarray, np.ndarray, Optional[np.ndarray], str], float]


def get_metrics(metrics: Sequence[str], loss: str) -> dict:
    """``{name: function}`` for the metric names in ``metrics`` (checked against the loss)."""
    if isinstance(metrics, str):
        metrics = (metrics,)
    try:
        names = list(metrics)
    except TypeError:
        raise TypeError(f"metrics must be a sequence of names from {sorted(METRICS)}, "
                        f"got {metrics!r}") from None
    chosen = {}
    for name in names:
        if not isinstance(name, str) or name not in METRICS:
            raise ValueError(f"metrics: unknown metric {name!r}; choose from {sorted(METRICS)}")
        if name == "accuracy" and loss not in CLASSIFICATION_LOSSES:
            raise ValueError(f"metrics: 'accuracy' needs a classification loss "
                             f"{CLASSIFICATION_LOSSES}, this network uses {loss!r}")
        chosen[name] = METRICS[name]
    return chosen
