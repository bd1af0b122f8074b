#!/usr/bin/env python
"""Where the Python layer spends its time, for the tiny and predict-1 targets.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/overhead.py \\
        [--backend cpp|numpy] [--threads 2] [--workload tiny] [--calls 3000]

calls: the Python around one engine call. ``fit``, ``train_epoch`` and ``predict`` on one
batch of the workload (X[:batch_size]: one step per epoch) against the raw engine calls they
make (``engine.train_epoch`` of that step with ready arrays, ``engine.forward``): the median of
single calls each, so the difference is what the Python layer adds per call; ``fit(epochs=11)``
against ``fit(epochs=1)`` gives what it adds per extra epoch.

fit: ``fit(epochs=1)`` and ``fit(epochs=21)`` on a workload (tiny by default) against
``net.train_epoch`` (the engine call fit makes per epoch, with its argument checks, without
fit's history and divergence check) give fit's own cost per call and per epoch, and a profile
shows where fit's time goes. forward: ``net.forward`` on one 1-D row of the small network
against a ready ``(1, n)`` float32 row (no conversion), and its profile. Times are per call,
the best of 5 runs of many calls each (steady state, warm caches); run it on an idle machine,
the differences are small.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
import timeit

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gdcore as gd  # noqa: E402
from workloads import PREDICT_WORKLOAD, WORKLOADS, cpp_available  # noqa: E402


def per_call(fn, min_seconds: float = 0.2) -> float:
    """Seconds per call of ``fn()``: best of 5 runs of enough calls to last ``min_seconds``."""
    timer = timeit.Timer(fn)
    number = 1
    while timer.timeit(number) < min_seconds / 5:
        number *= 2
    return min(timer.repeat(repeat=5, number=number)) / number


def median_call(fn, calls: int, warmup: int = 200) -> float:
    """Seconds of one call of ``fn()``: the median of ``calls`` single calls after a warm-up
    (a median ignores the calls a busy machine or the garbage collector interrupted)."""
    for _ in range(warmup):
        fn()
    clock, times = time.perf_counter_ns, []
    for _ in range(calls):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times) * 1e-9


def show(label: str, seconds: float, note: str = "") -> None:
    print(f"  {label:58s} {seconds * 1e6:9.2f} us  {note}")


def fit_call(net, X, y, opt, w, epochs: int):
    """``net.fit`` of ``epochs`` epochs over (X, y) in the workload's batches, as a call."""
    return lambda: net.fit(X, y, optimizer=opt, epochs=epochs, batch_size=w.batch_size,
                           shuffle=False)


def call_overhead(w, calls: int) -> None:
    """fit, train_epoch and predict on one batch of ``w`` against the raw engine calls."""
    net, (X, y), opt = w.network(), w.data(), w.optimizer()
    X, y = X[:w.batch_size], y[:w.batch_size]
    net.train_epoch(X, y, opt, batch_size=w.batch_size)  # binds the optimizer (its state)
    engine = net._engine
    X_ready, Y_ready, _ = net._data(X, y)  # the engines' layout, as fit makes it
    order = np.arange(X_ready.shape[0], dtype=np.int64)
    hyper = opt.hyper(opt.lr)

    def raw_step():
        engine.train_epoch(X_ready, Y_ready, None, order, w.batch_size, opt.code, hyper,
                           opt.state, opt.step)

    raw = median_call(raw_step, calls)
    one = median_call(fit_call(net, X, y, opt, w, 1), calls)
    eleven = median_call(fit_call(net, X, y, opt, w, 11), calls // 4)
    epoch = median_call(lambda: net.train_epoch(X, y, opt, batch_size=w.batch_size), calls)
    forward = median_call(lambda: engine.forward(X_ready), calls)
    predict = median_call(lambda: net.predict(X), calls)
    print(f"calls on one batch of {w.name} ({w.batch_size} samples: one step per epoch), "
          f"{net.backend} engine, medians of {calls} calls ({calls // 4} for epochs=11)")
    show("raw engine.train_epoch (the step, ready arrays)", raw)
    show("net.fit(epochs=1)", one, f"overhead {(one - raw) * 1e6:.1f} us")
    show("net.fit(epochs=11)", eleven,
         f"per extra epoch {((eleven - one) / 10 - raw) * 1e6:.1f} us over the raw step")
    show("net.train_epoch", epoch, f"overhead {(epoch - raw) * 1e6:.1f} us")
    show("raw engine.forward (ready array)", forward)
    show("net.predict", predict, f"overhead {(predict - forward) * 1e6:.1f} us")
    print()


def fit_overhead(w) -> None:
    net, (X, y), opt = w.network(), w.data(), w.optimizer()

    def engine_epoch():
        net.train_epoch(X, y, opt, batch_size=w.batch_size)

    one = per_call(fit_call(net, X, y, opt, w, 1))
    twenty_one = per_call(fit_call(net, X, y, opt, w, 21))
    engine = per_call(engine_epoch)
    per_epoch = (twenty_one - one) / 20 - engine
    per_fit = one - engine - per_epoch
    steps = -(-w.n_samples // w.batch_size)
    print(f"fit on {w.name} ({w.n_samples} samples, {steps} steps per epoch), {net.backend} "
          f"engine")
    show("fit(epochs=1)", one)
    show("fit(epochs=21)", twenty_one, f"= {twenty_one / 21 * 1e6:.1f} us per epoch")
    show("net.train_epoch (fit's engine call)", engine,
         f"= {engine / steps * 1e6:.2f} us per step")
    show("overhead per fit call", per_fit, f"({per_fit / one:.0%} of fit(epochs=1))")
    show("overhead per epoch", per_epoch, f"({per_epoch / engine:.0%} of the engine's epoch)")

    print(" where fit's time goes (cProfile, own time per fit(epochs=1) call, inflated by the "
          "profiler):")
    profile_top(fit_call(net, X, y, opt, w, 1))


def profile_top(fn, calls: int = 500, top: int = 10) -> None:
    """The ``top`` functions by own time over ``calls`` calls of ``fn``, per call."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (cc, nc, tottime, cumtime, ..)
    # Leave out this script's lambdas and the profiler's own calls.
    kept = [(key, value) for key, value in stats.items()
            if key[0] != os.path.abspath(__file__) and "_lsprof" not in key[2]]
    ranked = sorted(kept, key=lambda item: item[1][2], reverse=True)[:top]
    for (path, line, name), (_, n_calls, own, _, _) in ranked:
        where = f"{os.path.basename(path)}:{line} {name}" if line else name
        show(f"  {where[:56]}", own / calls, f"({n_calls / calls:g} calls)")


def forward_overhead() -> None:
    w = WORKLOADS[PREDICT_WORKLOAD]
    net = w.network()
    x_row = w.data()[0][0]
    x_ready = np.ascontiguousarray(x_row.reshape(1, -1), dtype=net.dtype)
    total, ready = per_call(lambda: net.forward(x_row)), per_call(lambda: net.forward(x_ready))
    print(f"\nforward of one row of {w.name} {list(w.sizes)}, {net.backend} engine")
    show("net.forward(x_row)", total)
    show("net.forward on a ready (1, n) float32 row", ready)
    show("making the 1-D row ready", total - ready, f"({(total - ready) / total:.0%})")
    print(" where forward's time goes (cProfile, own time per call, inflated by the profiler):")
    profile_top(lambda: net.forward(x_row), calls=20000, top=6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("cpp", "numpy"),
                        default="cpp" if cpp_available() else "numpy")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workload", choices=WORKLOADS, default="tiny",
                        help="the workload whose fit is dissected (default tiny)")
    parser.add_argument("--calls", type=int, default=3000,
                        help="single calls per median in the per-call section (default 3000)")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits
    threadpool_limits(args.threads)
    gd.set_num_threads(args.threads)
    gd.set_backend(args.backend)
    print("build_info:", json.dumps(gd.build_info()))
    call_overhead(WORKLOADS[args.workload], args.calls)
    fit_overhead(WORKLOADS[args.workload])
    forward_overhead()
    return 0


if __name__ == "__main__":
    sys.exit(main())
