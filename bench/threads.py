"""Do threads ever hurt? Ratios measured in one run (issue 14, "Threads never hurt").

1. scikit-learn's digits (64-100-10, batch 200, Adam): ``fit`` with 2 threads against 1 thread,
   alternating, median of the pairs. Target: 2 threads no slower (ratio <= 1).
2. Two processes training 64-256-256-10 at batch 32 (20000 rows) at the same time, each with
   the default thread count, against one process alone. Target: each at most 2.5x the time
   alone (2x is the ideal on a 2-core machine: they share the cores).
3. Whether the weights after training are bit-identical with 1 and 2 threads.
4. The small workload (64-128-10, batch 32, compare.py's), whose two big products per step
   (262k multiply-adds) gdcore splits over the two cores: 2 threads against 1, alternating.
   Target (issue 14, "two cores for mid-sized steps"): faster with 2.
For the 2-thread runs of 1 and 4 it also prints how the split products went: how often a
helper joined, the caller ran alone because the other core counted as busy, a helper came late.

Run without OpenBLAS's kernel overrides:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/threads.py
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import gdcore as gd

HERE = os.path.dirname(os.path.abspath(__file__))


def digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = ((X - X.mean(0)) / (X.std(0) + 1e-9)).astype(np.float32)
    return X, y


def fit_digits(threads: int, epochs: int):
    """Seconds of one digits fit with `threads` threads, and the network."""
    X, y = digits()
    gd.set_num_threads(threads)
    net = gd.Network.from_sizes([64, 100, 10], output_activation="softmax",
                                loss="cross_entropy", seed=0)
    start = time.perf_counter()
    net.fit(X, y, optimizer=gd.Adam(lr=1e-3), epochs=epochs, batch_size=200, seed=0)
    return time.perf_counter() - start, net


def small_epoch_seconds(threads: int, epochs: int = 3) -> float:
    """Seconds per epoch of compare.py's small workload with `threads` threads."""
    sys.path.insert(0, HERE)
    from workloads import WORKLOADS
    w = WORKLOADS["small"]
    X, y = w.data()
    gd.set_num_threads(threads)
    net, opt = w.network(), w.optimizer()
    net.fit(X, y, optimizer=opt, epochs=1, batch_size=w.batch_size, shuffle=False)
    start = time.perf_counter()
    net.fit(X, y, optimizer=opt, epochs=epochs, batch_size=w.batch_size, shuffle=False)
    return (time.perf_counter() - start) / epochs


def wide_data(rows: int = 20000):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 64)).astype(np.float32)
    y = rng.integers(0, 10, size=rows)
    return X, y


def wide_epochs(epochs: int) -> list:
    """Seconds per epoch of 64-256-256-10 at batch 32 in this process (default threads)."""
    X, y = wide_data()
    net = gd.Network.from_sizes([64, 256, 256, 10], output_activation="softmax",
                                loss="cross_entropy", seed=0)
    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        net.fit(X, y, optimizer=gd.SGD(lr=0.01), epochs=1, batch_size=32, seed=epoch)
        times.append(time.perf_counter() - start)
    return times


def run_wide(processes: int, epochs: int) -> list:
    """Total seconds of each of `processes` processes started together, each training
    `epochs` epochs of the wide case."""
    cmd = [sys.executable, __file__, "--child-wide", str(epochs)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    totals = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"child failed with status {proc.returncode}")
        totals.append(sum(json.loads(out.strip().splitlines()[-1])))
    return totals


def counted(tally: collections.Counter, run):
    """``run()``, adding the products it split to ``tally`` (``_core._split_counts``: split,
    solo, joined, contended; nothing without the compiled core)."""
    core = getattr(gd._backend, "_core", None)
    if core is None:
        return run()
    before = core._split_counts()
    result = run()
    after = core._split_counts()
    tally.update({key: after[key] - before[key] for key in after})
    return result


def split_summary(tally: collections.Counter) -> str:
    """How often a helper joined a split product, the caller ran alone (the other cores counted
    busy) and a helper came late."""
    if not tally["split"]:
        return "no product split"
    share = {key: 100.0 * tally[key] / tally["split"] for key in ("joined", "solo", "contended")}
    return (f"{tally['split']} products split: a helper joined {share['joined']:.0f}%, the "
            f"caller alone {share['solo']:.0f}%, a helper late {share['contended']:.0f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30, help="digits epochs per fit")
    parser.add_argument("--wide-epochs", type=int, default=3)
    parser.add_argument("--child-wide", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_wide is not None:
        print(json.dumps(wide_epochs(args.child_wide)))
        return

    info = gd.build_info()
    print(f"gdcore {gd.__version__}  kernels {info['kernels_isa']}  OpenBLAS "
          f"{info['blas_corename']}  threads {gd.get_num_threads()}  helpers "
          f"{info['helper_threads']}  split_gemm_limit {info['split_gemm_limit']}  "
          f"load {os.getloadavg()[0]:.2f}")
    default_threads = gd.get_num_threads()

    # 1 and 3: digits, 1 and 2 threads alternating
    ratios, one, two = [], [], []
    identical = True
    splits = {"digits": collections.Counter(), "small": collections.Counter()}  # 2 threads
    for _ in range(args.repeats):
        t1, net1 = fit_digits(1, args.epochs)
        t2, net2 = counted(splits["digits"], lambda: fit_digits(2, args.epochs))
        one.append(t1)
        two.append(t2)
        ratios.append(t2 / t1)
        identical &= all(np.array_equal(a, b) for a, b in zip(net1.parameters(),
                                                              net2.parameters()))
    small = {1: [], 2: []}
    for _ in range(args.repeats):
        small[1].append(small_epoch_seconds(1))
        small[2].append(counted(splits["small"], lambda: small_epoch_seconds(2)))
    gd.set_num_threads(default_threads)
    ratio = statistics.median(ratios)
    print(f"digits 64-100-10 batch 200, {args.epochs} epochs: 1 thread "
          f"{statistics.median(one) * 1e3:.1f} ms, 2 threads {statistics.median(two) * 1e3:.1f} ms,"
          f" 2/1 = {ratio:.2f} (median of {args.repeats} pairs)  "
          f"{'PASS' if ratio <= 1.0 else 'FAIL'} (<= 1)")
    print(f"  with 2 threads: {split_summary(splits['digits'])}")
    print(f"weights with 1 and 2 threads bit-identical: {identical}")
    s1, s2 = statistics.median(small[1]), statistics.median(small[2])
    print(f"small 64-128-10 batch 32 epoch: 1 thread {s1 * 1e3:.2f} ms, 2 threads "
          f"{s2 * 1e3:.2f} ms, 2/1 = {s2 / s1:.2f}  {'PASS' if s2 < s1 else 'FAIL'} (< 1)")
    print(f"  with 2 threads: {split_summary(splits['small'])}")

    # 2: two processes at once against one alone
    alone = [run_wide(1, args.wide_epochs)[0] for _ in range(2)]
    together = run_wide(2, args.wide_epochs)
    alone_s = min(alone)
    worst = max(together) / alone_s
    print(f"64-256-256-10 batch 32, {args.wide_epochs} epochs of 20000 rows: alone "
          f"{alone_s:.2f} s; two processes at once {together[0]:.2f} s and {together[1]:.2f} s;"
          f" worst/alone = {worst:.2f}  {'PASS' if worst <= 2.5 else 'FAIL'} (<= 2.5)")


if __name__ == "__main__":
    main()
