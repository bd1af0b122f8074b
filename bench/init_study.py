#!/usr/bin/env python
"""Which initialisation should gdcore use by default?

    python bench/init_study.py [--seeds 10] [--only iris,wine,...] [--inits he,xavier,...]

For each problem and each seed ``s`` the data are split by
``train_test_split(test_size=0.3, stratify=y (classification), random_state=s)``, the features
standardised on the training part (except "iris-raw"; for regression the target too), then
trained with the protocol of scikit-learn's ``MLPClassifier`` / ``MLPRegressor`` defaults:
Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8), ``batch_size = min(200, n_train)``, shuffled each
epoch, ``epochs = max_iter`` (200 unless the problem says otherwise):

- ``gd:<init>``: ``gd.Network.from_sizes(..., init=<init>, seed=s)`` then
  ``net.fit(X, y, optimizer=gd.Adam(lr=1e-3), epochs=..., batch_size=..., seed=s)``;
  ``gd:before`` is the former default rule (He for relu-family layers, Xavier for the others,
  zero biases); the header says which scheme ``init=None`` now picks.
- ``sklearn``: ``MLPClassifier`` / ``MLPRegressor(hidden_layer_sizes=..., activation=...,
  max_iter=epochs, random_state=s)``, everything else at its default.
- ``torch``: ``nn.Sequential`` of ``nn.Linear`` (PyTorch's default init, ``torch.manual_seed(s)``)
  trained the same way as gdcore.

Differences from scikit-learn, kept on purpose: gdcore and torch use no L2 penalty (sklearn's
``alpha=1e-4`` adds ``alpha * W / batch_size``, about 1e-6 * W, to the gradient: negligible
here) and run all the epochs (sklearn stops when its training loss has not improved by 1e-4 for
10 epochs; on sine-tanh this ends some of its runs after ~25 epochs, hence its low mean).
Classification uses softmax + cross-entropy (also for two classes), regression an
identity output and MSE. The score is the test accuracy (classification) or the test R^2
(regression); the table gives the mean +- standard deviation over the seeds.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

import gdcore as gd
from gdcore.network import INITS

RELU_FAMILY = ("relu", "leaky_relu", "elu", "gelu")  # He's init in the former default


@dataclass
class Problem:
    name: str
    load: Callable[[], tuple]  # () -> (X, y)
    classification: bool
    hidden: tuple
    activation: str = "relu"
    epochs: int = 200
    note: str = ""
    standardize: bool = True


def _sklearn_data(name: str) -> Callable[[], tuple]:
    def load():
        from sklearn import datasets
        return getattr(datasets, f"load_{name}")(return_X_y=True)
    return load


PROBLEMS = [
    Problem("iris", _sklearn_data("iris"), True, (100,)),
    Problem("iris-raw", _sklearn_data("iris"), True, (100,), note="features in cm",
            standardize=False),
    Problem("wine", _sklearn_data("wine"), True, (100,)),
    Problem("breast_cancer", _sklearn_data("breast_cancer"), True, (100,)),
    Problem("digits", _sklearn_data("digits"), True, (100,)),
    Problem("diabetes", _sklearn_data("diabetes"), False, (100,), note="R^2"),
    Problem("digits-deep", _sklearn_data("digits"), True, (64,) * 5, note="5x64 relu"),
    Problem("spirals-deep", lambda: gd.datasets.spirals(600, 3, noise=0.2, seed=0), True,
            (64,) * 5, epochs=1000, note="5x64 relu, 1000 ep"),
    Problem("sine-tanh", lambda: gd.datasets.sine(300, noise=0.1, seed=0), False, (32, 32),
            activation="tanh", epochs=1000, note="2x32 tanh, 1000 ep, R^2"),
]


def split(problem: Problem, X: np.ndarray, y: np.ndarray, seed: int) -> tuple:
    from sklearn.model_selection import train_test_split
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed,
                                          stratify=y if problem.classification else None)
    if problem.standardize:
        mean, std = Xtr.mean(0), Xtr.std(0)
        std[std == 0] = 1.0
        Xtr, Xte = (Xtr - mean) / std, (Xte - mean) / std
    if not problem.classification:
        ym, ys = ytr.mean(), ytr.std()
        ytr, yte = (ytr - ym) / ys, (yte - ym) / ys
    return Xtr, Xte, ytr, yte


def score(problem: Problem, pred: np.ndarray, yte: np.ndarray) -> float:
    if problem.classification:
        return float((pred == yte).mean())
    return float(1.0 - ((pred - yte) ** 2).sum() / ((yte - yte.mean()) ** 2).sum())


def run_gdcore(problem, data, seed, init: str) -> float:
    Xtr, Xte, ytr, yte = data
    n_out = int(ytr.max()) + 1 if problem.classification else 1
    sizes = [Xtr.shape[1], *problem.hidden, n_out]
    out_act, loss = ("softmax", "cross_entropy") if problem.classification else ("identity", "mse")
    if init == "before":
        rng = np.random.default_rng(seed)
        acts = [problem.activation] * len(problem.hidden) + [out_act]
        net = gd.Network([gd.Layer(a, b, act, "he" if act in RELU_FAMILY else "xavier", seed=rng)
                          for a, b, act in zip(sizes[:-1], sizes[1:], acts)], loss=loss,
                         seed=seed)
    else:
        net = gd.Network.from_sizes(sizes, problem.activation, out_act, loss, dtype="float32",
                                    seed=seed, init=None if init == "default" else init)
    net.fit(Xtr, ytr, optimizer=gd.Adam(lr=1e-3), epochs=problem.epochs,
            batch_size=min(200, len(Xtr)), seed=seed)
    out = net.predict(Xte)
    return score(problem, out.argmax(1) if problem.classification else out[:, 0], yte)


def run_sklearn(problem, data, seed) -> float:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    Xtr, Xte, ytr, yte = data
    cls = MLPClassifier if problem.classification else MLPRegressor
    model = cls(hidden_layer_sizes=problem.hidden, activation=problem.activation,
                max_iter=problem.epochs, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(Xtr, ytr)
    return score(problem, model.predict(Xte), yte)


def run_torch(problem, data, seed) -> float:
    import torch
    from torch import nn
    Xtr, Xte, ytr, yte = data
    torch.manual_seed(seed)
    n_out = int(ytr.max()) + 1 if problem.classification else 1
    sizes = [Xtr.shape[1], *problem.hidden, n_out]
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[problem.activation]
    mods: list = []
    for i in range(len(sizes) - 1):
        mods.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            mods.append(act())
    model = nn.Sequential(*mods)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss() if problem.classification else nn.MSELoss()
    X = torch.tensor(Xtr, dtype=torch.float32)
    Y = (torch.tensor(ytr, dtype=torch.long) if problem.classification
         else torch.tensor(ytr, dtype=torch.float32).reshape(-1, 1))
    bs = min(200, len(X))
    gen = torch.Generator().manual_seed(seed)
    for _ in range(problem.epochs):
        order = torch.randperm(len(X), generator=gen)
        for start in range(0, len(X), bs):
            idx = order[start:start + bs]
            opt.zero_grad()
            loss_fn(model(X[idx]), Y[idx]).backward()
            opt.step()
    with torch.no_grad():
        out = model(torch.tensor(Xte, dtype=torch.float32)).numpy()
    return score(problem, out.argmax(1) if problem.classification else out[:, 0], yte)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--only", default="", help="comma-separated problem names")
    parser.add_argument("--inits", default="before," + ",".join(i for i in INITS if i != "zeros"),
                        help="gdcore inits to compare ('default' is init=None, 'before' the "
                             "former default rule)")
    parser.add_argument("--peers", default="sklearn,torch")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    gd.set_num_threads(args.threads)
    methods = [f"gd:{i}" for i in args.inits.split(",") if i]
    for peer in [p for p in args.peers.split(",") if p]:
        try:
            __import__(peer)
            if peer == "torch":
                import torch
                torch.set_num_threads(args.threads)
            methods.append(peer)
        except ImportError:
            print(f"({peer} is not installed: skipped)", file=sys.stderr)
    only = set(filter(None, args.only.split(",")))
    problems = [p for p in PROBLEMS if not only or p.name in only]

    default = [i for i in INITS
               if all(np.array_equal(getattr(gd.Layer(5, 4, "relu", seed=0), p),
                                     getattr(gd.Layer(5, 4, "relu", i, seed=0), p))
                      for p in ("weights", "bias"))]
    print(f"gdcore {gd.__version__}, backend {gd.backend()}, {args.seeds} seeds, default init "
          f"{'/'.join(default)}; test accuracy (classification) or R^2 (regression), "
          f"mean +- std")
    head = f"{'problem':<14}" + "".join(f"{m:>16}" for m in methods)
    print(head)
    print("-" * len(head))
    for problem in problems:
        X, y = problem.load()
        scores = {m: [] for m in methods}
        start = time.perf_counter()
        for seed in range(args.seeds):
            data = split(problem, np.asarray(X, float), np.asarray(y), seed)
            for m in methods:
                if m.startswith("gd:"):
                    scores[m].append(run_gdcore(problem, data, seed, m[3:]))
                elif m == "sklearn":
                    scores[m].append(run_sklearn(problem, data, seed))
                else:
                    scores[m].append(run_torch(problem, data, seed))
        cells = "".join(f"{np.mean(s):>10.3f}±{np.std(s):.3f}" for s in scores.values())
        print(f"{problem.name:<14}{cells}   {problem.note} ({time.perf_counter() - start:.0f} s)",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
