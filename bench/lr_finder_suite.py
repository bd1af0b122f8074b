#!/usr/bin/env python
"""Evidence for ``gd.find_lr``'s suggestion: does training at it work as well as a grid search?

    python bench/lr_finder_suite.py [--backend cpp,numpy] [--optimizers sgd,adam]
        [--problems xor,spirals,...] [--quick] [--candidates] [--finder-seeds 0,1,2,3,4]
        [--no-readme]

For each problem (the four ``gd.datasets`` and five of scikit-learn's bundled sets) and each
optimizer (SGD with momentum 0.9, Adam): train from the same initial weights, for the same
epochs, with batch size 32 and a fixed seed, at every rate of a log grid ``1e-4 .. 1``; ``best``
is the grid rate with the lowest final training loss. The suggestion passes when training at it
ends with a training loss no higher than training at ``best / 10`` does, or with a training score
(accuracy, or R^2 for regression) at least the grid's best score. ``--candidates`` also scores
the other suggestion rules that were considered (see ``CANDIDATES``) on the same range tests,
``--finder-seeds`` repeats each case with other batch orders of the range test. Last, the
README's spirals example: train 200 epochs at the suggestion, expect >= 95% training accuracy.
The exit status is 0 when every case passes.
``tests/test_lr_finder.py`` runs the whole suite on the compiled engine and the ``--quick`` one
(without the two costliest problems) on the NumPy engine.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import os
import sys
import time
from typing import Optional

import numpy as np

import gdcore as gd
from gdcore.lr_finder import ema, valley

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import cpp_available  # noqa: E402

GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
#: The cheaper run (``--quick``, and the CI test on the NumPy engine): the two costliest
#: problems (spirals, whose README example is tested on its own, and digits) are left out.
QUICK_SKIP = ("spirals", "digits")
BATCH_SIZE = 32
SEED = 0


# ------------------------------------------------------------------------------ problems

@dataclasses.dataclass
class Problem:
    name: str
    X: np.ndarray
    y: np.ndarray
    sizes: list
    activation: str
    output_activation: str
    loss: str
    epochs: int
    task: str  # "classification" or "regression"

    def network(self) -> gd.Network:
        return gd.Network.from_sizes(self.sizes, activation=self.activation,
                                     output_activation=self.output_activation, loss=self.loss,
                                     seed=SEED)

    def score(self, net: gd.Network) -> float:
        """Training accuracy (classification) or R^2 (regression)."""
        out = np.asarray(net.predict(self.X), dtype=np.float64)
        if self.task == "regression":
            y = self.y.reshape(out.shape)
            return float(1 - ((out - y) ** 2).sum() / ((y - y.mean(axis=0)) ** 2).sum())
        pred = (out[:, 0] > 0.5).astype(int) if out.shape[1] == 1 else out.argmax(axis=1)
        return float((pred == self.y).mean())


def _standardize(a: np.ndarray) -> np.ndarray:
    std = a.std(axis=0)
    return (a - a.mean(axis=0)) / np.where(std > 0, std, 1.0)  # digits has constant pixels


def _gd_problems() -> dict:
    D = gd.datasets
    X, y = D.xor(n_samples=200, noise=0.2, seed=SEED)
    xor = Problem("xor", X, y, [2, 16, 1], "tanh", "sigmoid", "bce", 60, "classification")
    X, y = D.two_moons(n_samples=200, noise=0.1, seed=SEED)
    moons = Problem("two_moons", X, y, [2, 32, 2], "relu", "softmax", "cross_entropy", 60,
                    "classification")
    X, y = D.spirals(n_samples=300, n_classes=3, seed=SEED)
    spirals = Problem("spirals", X, y, [2, 64, 64, 3], "relu", "softmax", "cross_entropy", 100,
                      "classification")
    X, y = D.sine(n_samples=200, seed=SEED)
    sine = Problem("sine", X, y, [1, 32, 1], "tanh", "identity", "mse", 100, "regression")
    return {p.name: p for p in (xor, moons, spirals, sine)}


def _sklearn_problems() -> dict:
    try:
        from sklearn import datasets as sk
    except ImportError:
        return {}
    out = {}
    for name, loader, hidden, epochs in [("digits", sk.load_digits, 64, 20),
                                         ("iris", sk.load_iris, 16, 60),
                                         ("wine", sk.load_wine, 32, 60),
                                         ("breast_cancer", sk.load_breast_cancer, 32, 30)]:
        X, y = loader(return_X_y=True)
        X = _standardize(X.astype(np.float64))
        k = int(y.max()) + 1
        out[name] = Problem(name, X, y.astype(np.int64), [X.shape[1], hidden, k], "relu",
                            "softmax", "cross_entropy", epochs, "classification")
    X, y = sk.load_diabetes(return_X_y=True)
    out["diabetes"] = Problem("diabetes", _standardize(X), _standardize(y), [10, 32, 1], "relu",
                              "identity", "mse", 60, "regression")
    return out


def problems() -> dict:
    """Every problem of the suite by name (scikit-learn's only when it is installed)."""
    return {**_gd_problems(), **_sklearn_problems()}


OPTIMIZERS: dict = {
    "sgd": lambda lr=0.01: gd.SGD(lr=lr, momentum=0.9),
    "adam": lambda lr=0.001: gd.Adam(lr=lr),
}


# ------------------------------------------------------------------------------ training

def train(problem: Problem, optimizer: str, lr: float, epochs: int) -> tuple:
    """``(final training loss, training score)`` after ``epochs`` at rate ``lr``.

    A run that diverges counts as an infinite loss and a score of -inf.
    """
    net = problem.network()
    history = net.fit(problem.X, problem.y, optimizer=OPTIMIZERS[optimizer](lr), epochs=epochs,
                      batch_size=BATCH_SIZE, seed=SEED, on_divergence="stop")
    loss = net.loss(problem.X, problem.y)
    if history.diverged or not math.isfinite(loss):
        return math.inf, -math.inf
    return float(loss), problem.score(net)


@dataclasses.dataclass
class Row:
    problem: str
    optimizer: str
    backend: str
    suggestion: float
    best: float
    loss_suggestion: float
    loss_best10: float
    score_suggestion: float
    score_best: float

    @property
    def passed(self) -> bool:
        return (self.loss_suggestion <= self.loss_best10
                or self.score_suggestion >= self.score_best)


def run_case(problem: Problem, optimizer: str, backend: str, rules: Optional[dict] = None,
             finder_seed: Optional[int] = None) -> dict:
    """Rows (one per suggestion rule; ``"find_lr"`` is the library's) for one problem."""
    previous = gd.backend()
    gd.set_backend(backend)
    try:
        epochs, grid = problem.epochs, GRID
        cache: dict = {}

        def at(lr: float) -> tuple:
            key = float(f"{lr:.12g}")  # best / 10 is a grid rate up to rounding: train once
            if key not in cache:
                cache[key] = train(problem, optimizer, key, epochs)
            return cache[key]

        results = {lr: at(lr) for lr in grid}
        best = min(grid, key=lambda lr: results[lr][0])
        best_score = max(s for _, s in results.values())
        found = gd.find_lr(problem.network(), problem.X, problem.y,
                           optimizer=OPTIMIZERS[optimizer](), batch_size=BATCH_SIZE,
                           seed=finder_seed)
        suggestions = {"find_lr": found.suggestion}
        for name, rule in (rules or {}).items():
            suggestions[name] = rule(found.lrs, found.raw_losses)
        rows = {}
        for name, lr in suggestions.items():
            loss, score = at(lr)
            rows[name] = Row(problem.name, optimizer, backend, lr, best, loss, at(best / 10)[0],
                             score, best_score)
        return rows
    finally:
        gd.set_backend(previous)


# ------------------------------------------------------------------- candidate rules
# Rules considered for ``find_lr``'s suggestion, each ``(lrs, raw_losses) -> lr``; the library's
# (``"find_lr"`` in the table, ``gd.find_lr(...).suggestion``) is the geometric mean of
# fastai's valley and minimum / 10 on the trimmed curve. ``--candidates --finder-seeds
# 0,1,2,3,4`` gives the pass counts quoted in the docstring of find_lr's suggestion rule.

def _smoothed(raw):
    return ema(raw, 0.98)


def _trimmed(lrs, raw):
    """fastai's lr_find: the smoothed curve without its first tenth and last five points."""
    m = len(lrs)
    lo, hi = m // 10, max(m - 5, m // 10 + 1)
    return lrs[lo:hi], _smoothed(raw)[lo:hi]


def old_rule(lrs, raw):
    """The previous rule: steepest slope of the whole smoothed curve before its minimum."""
    smooth = _smoothed(raw)
    stop = int(np.argmin(smooth)) + 1
    if stop < 3:
        return float(lrs[stop - 1])
    return float(lrs[int(np.argmin(np.gradient(smooth[:stop], np.log(lrs[:stop]))))])


def fastai_valley(lrs, raw):
    """fastai's default ``valley``: halfway down the longest decreasing run."""
    lrs, smooth = _trimmed(lrs, raw)
    return float(lrs[valley(smooth)])


def fastai_minimum(lrs, raw):
    """fastai's ``minimum``: the rate of the lowest smoothed loss, divided by 10."""
    lrs, smooth = _trimmed(lrs, raw)
    return float(lrs[int(np.argmin(smooth))] / 10)


def lightning_steep(lrs, raw):
    """PyTorch Lightning's (and torch-lr-finder's) suggestion: skip the first 10 points and
    the last one, then the steepest ``np.gradient`` of the smoothed loss."""
    smooth = _smoothed(raw)[10:-1]
    if len(smooth) < 2:
        return float(lrs[0])
    return float(lrs[10 + int(np.argmin(np.gradient(smooth)))])


def median3(lrs, raw):
    """Median of fastai's valley, fastai's minimum and the steepest point."""
    return float(np.median([fastai_valley(lrs, raw), fastai_minimum(lrs, raw),
                            lightning_steep(lrs, raw)]))


CANDIDATES: dict = {
    "old": old_rule,
    "fastai_valley": fastai_valley,
    "fastai_minimum": fastai_minimum,
    "lightning_steep": lightning_steep,
    "median3": median3,
}


# ------------------------------------------------------------------------------ reporting

def run(backends=("cpp", "numpy"), optimizers=("sgd", "adam"), names=None, quick=False,
        rules=None, out=sys.stdout, finder_seeds=(None,)) -> list:
    """Run the suite; print one line per case; return every row."""
    every = problems()
    chosen = [every[n] for n in (names or every) if not (quick and n in QUICK_SKIP)]
    rows = []
    header = (f"{'backend':7} {'problem':13} {'opt':4} {'rule':15} {'suggest':>9} {'best':>7} "
              f"{'loss@sug':>9} {'loss@b/10':>9} {'score@sug':>9} {'best scr':>8}  result")
    if out is not None:
        print(header, file=out)
    for backend in backends:
        for problem in chosen:
            for opt, seed in itertools.product(optimizers, finder_seeds):
                case = run_case(problem, opt, backend, rules, seed)
                for rule, r in case.items():
                    rows.append((rule, r))
                    if out is not None:
                        print(f"{backend:7} {r.problem:13} {opt:4} {rule:15} {r.suggestion:9.3g} "
                              f"{r.best:7.3g} {r.loss_suggestion:9.4g} {r.loss_best10:9.4g} "
                              f"{r.score_suggestion:9.3f} {r.score_best:8.3f}  "
                              f"{'pass' if r.passed else 'FAIL'}", file=out, flush=True)
    if out is not None:
        for backend in dict.fromkeys(r.backend for _, r in rows):
            for rule in dict.fromkeys(name for name, _ in rows):
                mine = [r for name, r in rows if name == rule and r.backend == backend]
                print(f"{backend} {rule}: {sum(r.passed for r in mine)}/{len(mine)} pass",
                      file=out)
    return rows


def readme_spirals(backend: str, optimizer: str, epochs: int = 200) -> tuple:
    """The README's spirals example: ``(suggestion, training accuracy)`` after ``epochs``."""
    previous = gd.backend()
    gd.set_backend(backend)
    try:
        net = gd.Network.from_sizes([2, 64, 64, 3], activation="relu",
                                    output_activation="softmax", loss="cross_entropy", seed=0)
        X, y = gd.datasets.spirals(n_samples=300, n_classes=3, seed=0)
        make = OPTIMIZERS[optimizer]
        s = gd.find_lr(net, X, y, optimizer=make()).suggestion
        try:
            net.fit(X, y, optimizer=make(s), epochs=epochs, batch_size=32)
        except gd.DivergenceError:
            return s, math.nan
        return s, float((net.predict(X).argmax(axis=1) == y).mean())
    finally:
        gd.set_backend(previous)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="cpp,numpy")
    parser.add_argument("--optimizers", default="sgd,adam")
    parser.add_argument("--problems", default=None)
    parser.add_argument("--quick", action="store_true",
                        help=f"leave out the costliest problems ({', '.join(QUICK_SKIP)})")
    parser.add_argument("--finder-seeds", default=None,
                        help="seeds of find_lr's batch order, e.g. 0,1,2 (default: the "
                             "network's, 0)")
    parser.add_argument("--no-readme", action="store_true",
                        help="skip the README spirals example")
    parser.add_argument("--candidates", action="store_true",
                        help="also score the other suggestion rules considered")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    backends = [b for b in args.backend.split(",")
                if b != "cpp" or cpp_available()]
    seeds = [int(x) for x in args.finder_seeds.split(",")] if args.finder_seeds else [None]
    rows = run(backends, args.optimizers.split(","),
               args.problems.split(",") if args.problems else None, args.quick,
               CANDIDATES if args.candidates else None, finder_seeds=seeds)
    ok = all(r.passed for name, r in rows if name == "find_lr")
    for backend in ([] if args.no_readme else backends):
        for opt in args.optimizers.split(","):
            s, acc = readme_spirals(backend, opt)
            ok = ok and acc >= 0.95
            print(f"README spirals, {backend}, {opt}: suggestion {s:.3g}, "
                  f"training accuracy after 200 epochs {acc:.3f}")
    print(f"{time.perf_counter() - start:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
