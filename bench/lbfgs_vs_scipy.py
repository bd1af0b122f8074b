#!/usr/bin/env python
"""gd.LBFGS against scipy.optimize.minimize(method="L-BFGS-B") from the same start.

    python bench/lbfgs_vs_scipy.py [--backend cpp|numpy] [--dtype float64]

For each problem the network is built once; SciPy minimises its loss with the network's own
``loss`` and ``gradients`` as ``fun`` / ``jac`` (flattened W0, b0, W1, b1, ...), with the
options scikit-learn's MLP passes (``maxiter``, ``maxfun``, ``gtol``; ``maxcor`` 10, ``ftol``
SciPy's default 2.22e-9 = ``tolerance_change``). gdcore trains a copy with
``fit(optimizer=gd.LBFGS(max_iter=1, tolerance_grad=gtol, tolerance_change=ftol,
max_fun=maxfun), epochs=maxiter)``: one iteration per epoch, as scikit-learn's ``solver="lbfgs"``
would drive it. The table gives iterations, evaluations and final losses of both, and why each
stopped, and "same path": for how many iterations the loss after each one agrees to 1e-6
(relative) with SciPy's.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "tests"))  # the SciPy peer the L-BFGS tests use
import gdcore as gd  # noqa: E402
from scipy_lbfgsb import SCIPY_FTOL, scipy_lbfgsb  # noqa: E402

#: scikit-learn's options for SciPy (problems() overrides maxiter for some).
SCIPY_OPTIONS = {"maxiter": 200, "maxfun": 15000, "gtol": 1e-5, "ftol": SCIPY_FTOL,
                 "maxcor": 10}


def agreeing_iterations(ours, theirs, rtol=1e-6):
    """How many leading entries of two loss traces agree to ``rtol`` (relative)."""
    count = 0
    for a, b in zip(ours, theirs):
        if abs(a - b) > rtol * max(abs(a), abs(b)):
            break
        count += 1
    return count


def gd_lbfgs(net, X, y, sample_weight=None, *, maxiter=200, maxfun=15000, gtol=1e-5,
             ftol=SCIPY_FTOL, maxcor=10):
    """The same with gd.LBFGS, one iteration per epoch: (history, optimizer)."""
    opt = gd.LBFGS(history_size=maxcor, max_iter=1, tolerance_grad=gtol, tolerance_change=ftol,
                   max_fun=maxfun)
    history = net.fit(X, y, optimizer=opt, epochs=maxiter, sample_weight=sample_weight)
    return history, opt


def problems(dtype):
    """(name, network, X, y, options) of the suite."""
    X, y = gd.datasets.two_moons(200, noise=0.2, seed=0)
    yield ("two_moons 2-16-2 tanh CE", gd.Network.from_sizes(
        [2, 16, 2], activation="tanh", output_activation="softmax", loss="cross_entropy",
        dtype=dtype, seed=0), X, y, {})
    yield ("two_moons 2-8-1 relu bce", gd.Network.from_sizes(
        [2, 8, 1], activation="relu", output_activation="sigmoid", loss="bce", dtype=dtype,
        seed=1), X, y, {})
    X, y = gd.datasets.spirals(300, n_classes=3, seed=0)
    yield ("spirals 2-32-32-3 tanh CE", gd.Network.from_sizes(
        [2, 32, 32, 3], activation="tanh", output_activation="softmax", loss="cross_entropy",
        dtype=dtype, seed=0), X, y, {"maxiter": 300})
    X, y = gd.datasets.sine(200, seed=0)
    yield ("sine 1-32-1 tanh mse", gd.Network.from_sizes(
        [1, 32, 1], activation="tanh", loss="mse", dtype=dtype, seed=0), X, y, {})
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 5))
    y = np.c_[X[:, 0] * X[:, 1], np.sin(X[:, 2]) + 0.1 * rng.standard_normal(150)]
    yield ("random 5-20-2 softplus mse", gd.Network.from_sizes(
        [5, 20, 2], activation="softplus", loss="mse", dtype=dtype, seed=0), X, y, {})
    try:
        from sklearn.datasets import load_iris
    except ImportError:  # pragma: no cover
        return
    iris = load_iris()
    X = (iris.data - iris.data.mean(0)) / iris.data.std(0)
    yield ("iris 4-10-3 relu CE", gd.Network.from_sizes(
        [4, 10, 3], activation="relu", output_activation="softmax", loss="cross_entropy",
        dtype=dtype, seed=0), X, iris.target, {"maxiter": 500})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=gd.backend())
    parser.add_argument("--dtype", default="float64")
    args = parser.parse_args(argv)
    gd.set_backend(args.backend)
    print(f"backend {gd.backend()}, dtype {args.dtype}, gtol 1e-5, ftol {SCIPY_FTOL:.3g}, "
          f"maxcor 10")
    print("| problem | scipy iterations | gd iterations | scipy evaluations | gd evaluations "
          "| scipy final loss | gd final loss | scipy stopped | gd stopped | same path |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, net, X, y, options in problems(args.dtype):
        twin = net.copy()
        result = scipy_lbfgsb(net, X, y, **{**SCIPY_OPTIONS, **options})
        history, opt = gd_lbfgs(twin, X, y, **options)
        print(f"| {name} | {result.nit} | {opt.n_iter} | {result.nfev} | {opt.func_evals} | "
              f"{result.fun:.6g} | {twin.loss(X, y):.6g} | "
              f"{result.message.split(':')[-1].strip().lower()} | {history.stop_reason} | "
              f"{agreeing_iterations(history.loss + [twin.loss(X, y)], result.trace) - 1} |")


if __name__ == "__main__":
    main()
