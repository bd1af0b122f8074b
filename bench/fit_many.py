#!/usr/bin/env python
"""A learning-rate sweep: ``gd.fit_many`` against one ``fit`` per rate.

    python bench/fit_many.py [--workload tiny] [--networks 16] [--epochs 20] [--repeats 7]
                             [--backend cpp|numpy]

16 copies of the workload's network (bench/workloads.py, "tiny" by default) with 16 SGD
learning rates ``np.geomspace(1e-3, 1, 16)``, trained for ``--epochs`` epochs (mini-batches of
the workload's batch size, shuffled from seed 0): 16 sequential ``fit`` calls against one
``fit_many`` call with 1 thread and with ``gd.get_num_threads()`` threads (2 by default on a
2-core machine). The three are run in turn, ``--repeats`` times, so that they share the
machine's conditions; the medians are reported, wall time and CPU time (process time, summed
over threads) per call, and the ratios. The results are checked equal (weights and losses)
before timing. ``gd.build_info()`` is printed first.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gdcore as gd  # noqa: E402
from workloads import WORKLOADS, cpp_available  # noqa: E402


def sweep(workload, rates, X, y, epochs: int, many: bool, threads: int) -> tuple:
    """Train one network per rate; ``(networks, histories)``."""
    nets = [workload.network() for _ in rates]
    opts = [gd.SGD(lr=float(r), momentum=workload.momentum) for r in rates]
    kwargs = dict(epochs=epochs, batch_size=workload.batch_size, seed=0,
                  on_divergence="backoff")
    if many:
        previous = gd.get_num_threads()
        gd.set_num_threads(threads)
        try:
            return nets, gd.fit_many(nets, X, y, optimizers=opts, **kwargs)
        finally:
            gd.set_num_threads(previous)
    return nets, [net.fit(X, y, optimizer=opt, **kwargs) for net, opt in zip(nets, opts)]


def timed(fn) -> tuple:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=WORKLOADS, default="tiny")
    parser.add_argument("--networks", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--backend", choices=("cpp", "numpy"),
                        default="cpp" if cpp_available() else "numpy")
    args = parser.parse_args()
    gd.set_backend(args.backend)
    print(json.dumps(gd.build_info()))
    w = WORKLOADS[args.workload]
    X, y = w.data()
    rates = np.geomspace(1e-3, 1.0, args.networks)
    threads = gd.get_num_threads()

    # The same results, bit for bit, before any timing.
    nets_a, hist_a = sweep(w, rates, X, y, args.epochs, False, threads)
    for n_threads in sorted({1, threads}):
        nets_b, hist_b = sweep(w, rates, X, y, args.epochs, True, n_threads)
        assert all(a.loss == b.loss for a, b in zip(hist_a, hist_b))
        assert all(np.array_equal(p, q) for a, b in zip(nets_a, nets_b)
                   for p, q in zip(a.parameters(), b.parameters()))

    cases = {"fit x %d" % args.networks: (False, 1), "fit_many, 1 thread": (True, 1)}
    if threads > 1:
        cases[f"fit_many, {threads} threads"] = (True, threads)
    times: dict = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, (many, n_threads) in cases.items():
            times[name].append(timed(lambda: sweep(w, rates, X, y, args.epochs, many,
                                                   n_threads)))
    print(f"{args.networks} x {args.workload} {list(w.sizes)}, SGD rates geomspace(1e-3, 1), "
          f"{args.epochs} epochs of batch {w.batch_size} over {w.n_samples} samples, "
          f"{args.backend} engine, medians of {args.repeats}")
    base = None
    for name, runs in times.items():
        wall = statistics.median(t[0] for t in runs)
        cpu = statistics.median(t[1] for t in runs)
        base = base or (wall, cpu)
        print(f"  {name:24s} wall {wall * 1e3:8.1f} ms ({base[0] / wall:4.2f}x)   "
              f"cpu {cpu * 1e3:8.1f} ms ({base[1] / cpu:4.2f}x)")
    print(f"  load average during the run: {os.getloadavg()[0]:.2f} on "
          f"{gd._backend.available_cores()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
