"""Draw the README's pictures into docs/*.png with gdcore.plot (matplotlib's Agg backend).

    pip install ".[plot]" && python docs/make_figures.py

Every picture is computed here, from seeded data, on the default backend; nothing is drawn by
hand. The files are written without a timestamp or version in their metadata, so re-running
the script changes them only when the pictures change.
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import gdcore as gd  # noqa: E402
from gdcore.plot import (plot_decision_boundary, plot_descent, plot_history,  # noqa: E402
                         plot_lr_finder)

OUT = Path(__file__).resolve().parent
DPI = 90


def save(fig, name: str) -> None:
    path = OUT / name
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    print(f"wrote {path.relative_to(OUT.parent)} ({path.stat().st_size // 1024} KB)")


def descent() -> None:
    """The seed's figure: the same quadratic bowl, three rates."""
    theta = np.deg2rad(30)
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    A = R @ np.diag([1.0, 8.0]) @ R.T  # curvatures 1 and 8: plain descent diverges above 2/8

    def f(v):
        return 0.5 * v @ A @ v

    rates = {"lr = 0.01: too small, crawls": 0.01, "lr = 0.11: converges": 0.11,
             "lr = 0.255: overshoots, diverges": 0.255}
    x0 = -3.5 * R[:, 0] + 0.5 * R[:, 1]  # far along the shallow valley, a little up its side
    results = [gd.minimize(f, x0=x0, grad=lambda v: A @ v, lr=lr, max_iter=40)
               for lr in rates.values()]
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    plot_descent(f, results, ax=ax, labels=list(rates), bounds=(-4.5, 4.5, -3, 3), levels=12)
    ax.set_title("gd.minimize on a quadratic bowl, 40 steps at three rates", fontsize="medium")
    save(fig, "descent.png")


def lr_finder_and_boundaries() -> None:
    """The README's spirals: the range test, then the network trained at its suggestion; and
    a two-moons classifier."""
    X, y = gd.datasets.spirals(n_samples=300, n_classes=3, seed=0)
    net = gd.Network.from_sizes([2, 64, 64, 3], activation="relu", output_activation="softmax",
                                loss="cross_entropy", seed=0)
    result = gd.find_lr(net, X, y, optimizer=gd.Adam(), seed=0)
    fig, ax = plt.subplots(figsize=(6.4, 4), layout="constrained")
    plot_lr_finder(result, ax=ax)
    ax.set_title("gd.find_lr on the spirals (Adam)", fontsize="medium")
    save(fig, "lr_finder.png")

    net.fit(X, y, optimizer=gd.Adam(lr=result.suggestion), epochs=200, batch_size=32, seed=0)
    accuracy = (net.predict(X).argmax(axis=1) == y).mean()
    Xm, ym = gd.datasets.two_moons(n_samples=200, noise=0.15, seed=0)
    moons = gd.Network.from_sizes([2, 16, 16, 1], activation="tanh",
                                  output_activation="sigmoid", loss="bce", seed=0)
    moons.fit(Xm, ym, optimizer=gd.Adam(lr=0.01), epochs=200, batch_size=32, seed=0)
    moons_accuracy = ((moons.predict(Xm)[:, 0] >= 0.5) == ym).mean()
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 4), layout="constrained")
    plot_decision_boundary(moons, Xm, ym, ax=left, resolution=150)
    left.set_title(f"two moons, 2-16-16-1 sigmoid ({moons_accuracy:.0%})", fontsize="medium")
    plot_decision_boundary(net, X, y, ax=right, resolution=150)
    right.set_title(f"spirals, 2-64-64-3 softmax ({accuracy:.0%})", fontsize="medium")
    save(fig, "decision_boundary.png")


def history() -> None:
    """A rate far too large, recovered by on_divergence="backoff" (the README's sine case)."""
    X, y = gd.datasets.sine(seed=0)
    net = gd.Network.from_sizes([1, 32, 1], activation="tanh", seed=0)
    hist = net.fit(X, y, optimizer=gd.SGD(lr=50.0), epochs=300, validation_split=0.2,
                   on_divergence="backoff")
    fig, ax = plt.subplots(figsize=(6.4, 4), layout="constrained")
    plot_history(hist, ax=ax)
    ax.set_title(f"fit with SGD(lr=50), on_divergence='backoff': {hist.backoffs} rate cuts",
                 fontsize="medium")
    save(fig, "history.png")


def main() -> int:
    descent()
    lr_finder_and_boundaries()
    history()
    return 0


if __name__ == "__main__":
    sys.exit(main())
