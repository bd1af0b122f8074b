#!/usr/bin/env python
"""Where the Python layer spends its time, for the tiny and predict-1 targets.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/overhead.py \\
        [--backend cpp|numpy] [--threads 2] [--workload tiny]

fit: ``fit(epochs=1)`` and ``fit(epochs=21)`` on a workload (tiny by default) against the bare
engine call give the overhead per call and per epoch; then the steps fit runs around the
engine, each timed alone, and what is left over. forward: ``net.forward`` on one row of the
small network against the engine's ``forward`` on the validated row, and the validation steps
alone. Times are per call, the best of 5 runs of many calls each (steady state, warm caches);
run it on an idle machine, the differences are small.
"""
from __future__ import annotations

import argparse
import os
import sys
import timeit

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gdcore as gd  # noqa: E402
from gdcore import _validation as v  # noqa: E402
from gdcore.training import REFERENCE_SAMPLES  # noqa: E402
from workloads import PREDICT_WORKLOAD, WORKLOADS, cpp_available  # noqa: E402


def per_call(fn, min_seconds: float = 0.2) -> float:
    """Seconds per call of ``fn()``: best of 5 runs of enough calls to last ``min_seconds``."""
    timer = timeit.Timer(fn)
    number = 1
    while timer.timeit(number) < min_seconds / 5:
        number *= 2
    return min(timer.repeat(repeat=5, number=number)) / number


def show(label: str, seconds: float, note: str = "") -> None:
    print(f"  {label:58s} {seconds * 1e6:9.2f} us  {note}")


def fit_overhead(w) -> None:
    net, (X, y), opt = w.network(), w.data(), w.optimizer()

    def fit(epochs):
        return lambda: net.fit(X, y, optimizer=opt, epochs=epochs, batch_size=w.batch_size,
                               shuffle=False)

    X_valid, Y_valid, _ = net._data(X, y)
    order = np.arange(w.n_samples, dtype=np.int64)
    opt.bind(net, net.parameters())
    hyper = opt.hyper(opt.lr)

    def engine_epoch():
        net._engine.train_epoch(X_valid, Y_valid, None, order, w.batch_size, opt.kind, hyper,
                                opt.state, opt.step)

    one, twenty_one, engine = per_call(fit(1)), per_call(fit(21)), per_call(engine_epoch)
    per_epoch = (twenty_one - one) / 20 - engine
    per_fit = one - engine - per_epoch
    steps = -(-w.n_samples // w.batch_size)
    print(f"fit on {w.name} ({w.n_samples} samples, {steps} steps per epoch), {net.backend} "
          f"engine")
    show("fit(epochs=1)", one)
    show("fit(epochs=21)", twenty_one, f"= {twenty_one / 21 * 1e6:.1f} us per epoch")
    show("engine.train_epoch (bare)", engine, f"= {engine / steps * 1e6:.2f} us per step")
    show("overhead per fit call", per_fit, f"({per_fit / one:.0%} of fit(epochs=1))")
    show("overhead per epoch", per_epoch, f"({per_epoch / engine:.0%} of the engine's epoch)")

    params = net.parameters()
    live = [*params, *opt.state, opt.step]
    copies = [a.copy() for a in live]
    m = min(w.n_samples, REFERENCE_SAMPLES)
    parts("steps fit runs once per call:", per_fit, [
        ("network._data(X, y): validation of X and y", lambda: net._data(X, y)),
        (f"reference loss: engine.loss on the first {m} samples",
         lambda: net._engine.loss(X_valid[:m], Y_valid[:m], None)),
        ("np.arange(n): the order", lambda: np.arange(w.n_samples, dtype=np.int64)),
        ("two snapshots [a.copy() for a in live]",
         lambda: ([a.copy() for a in live], [a.copy() for a in live])),
    ])
    show("  (inside _data: np.isfinite(X).all())", per_call(lambda: np.isfinite(X).all()))
    parts("steps fit runs once per epoch:", per_epoch, [
        ("np.copyto of the snapshot", lambda: [np.copyto(s, a) for s, a in zip(copies, live)]),
        ("_sane: np.isfinite(p).all() per parameter",
         lambda: all(np.isfinite(p).all() for p in params)),
        ("optimizer.lr (the schedule's value)", lambda: opt.lr),
        ("optimizer.hyper(lr)", lambda: opt.hyper(0.01)),
    ])


def parts(title: str, total: float, steps: list) -> None:
    """Time each step alone; what ``total`` leaves over is the rest of the Python code."""
    print(f" {title}")
    accounted = 0.0
    for label, fn in steps:
        seconds = per_call(fn)
        accounted += seconds
        show(label, seconds)
    show("the rest of fit's Python code (by difference)", total - accounted)


def forward_overhead() -> None:
    w = WORKLOADS[PREDICT_WORKLOAD]
    net = w.network()
    x_row = w.data()[0][0]
    x_valid = v.features(x_row, w.n_inputs, net.dtype)
    total, engine = per_call(lambda: net.forward(x_row)), per_call(
        lambda: net._engine.forward(x_valid))
    print(f"\nforward of one row of {w.name} {list(w.sizes)}, {net.backend} engine")
    show("net.forward(x_row)", total)
    show("engine.forward (bare, validated (1, n) row)", engine)
    show("Python layer", total - engine, f"({(total - engine) / total:.0%})")
    show("  v.features(x_row): validation", per_call(
        lambda: v.features(x_row, w.n_inputs, net.dtype)))
    show("    of which np.isfinite(x).all()", per_call(lambda: np.isfinite(x_valid).all()))

    def locked():
        with net._lock:
            pass

    show("  with network._lock", per_call(locked))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("cpp", "numpy"),
                        default="cpp" if cpp_available() else "numpy")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workload", choices=WORKLOADS, default="tiny",
                        help="the workload whose fit is dissected (default tiny)")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits
    threadpool_limits(args.threads)
    gd.set_num_threads(args.threads)
    gd.set_backend(args.backend)
    fit_overhead(WORKLOADS[args.workload])
    forward_overhead()
    return 0


if __name__ == "__main__":
    sys.exit(main())
