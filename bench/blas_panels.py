#!/usr/bin/env python
"""Does splitting large products into row panels (so that Ctrl-C is seen within one panel,
csrc/gd/blas.hpp: gemm_interruptible) keep the GEMM rate?

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/blas_panels.py [--rows 16384]
        [--threads 1] [--repeats 5]

One full-batch step of X (rows x 784) into 1024-1024-10 (every large product split into
panels) through the public Network.train_epoch, against NumPy doing the same products
(forward, the three weight gradients, the two input gradients) as whole matmul calls, in one
process with the same thread count: the ratio of the two times is the price of the panels
plus everything else in a step (activations, loss, the update), so it bounds the panels'
cost from above. Medians of --repeats runs after a warm-up.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import gdcore as gd


def median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=16384)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    gd.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(args.threads)
    except ImportError:  # NumPy then uses OPENBLAS_NUM_THREADS
        limits = None
    rng = np.random.default_rng(0)
    sizes = [784, 1024, 1024, 10]
    X = rng.normal(size=(args.rows, sizes[0])).astype(np.float32)
    y = rng.integers(0, 10, size=args.rows)
    net = gd.Network.from_sizes(sizes, output_activation="softmax", loss="cross_entropy",
                                seed=0)
    optimizer = gd.SGD(lr=1e-4, momentum=0.9)

    def gdcore_step():
        net.train_epoch(X, y, optimizer, batch_size=args.rows)

    Ws = [layer.weights for layer in net.layers]
    As = [X]
    for W in Ws[:-1]:
        As.append(np.maximum(As[-1] @ W, 0))
    dZs = [np.ones((args.rows, W.shape[1]), np.float32) for W in Ws]

    def numpy_products():
        for A, W in zip(As, Ws):  # forward
            A @ W
        for A, dZ in zip(As, dZs):  # weight gradients
            A.T @ dZ
        for dZ, W in zip(dZs[1:], Ws[1:]):  # input gradients
            dZ @ W.T

    macs = 3 * args.rows * sum(a * b for a, b in zip(sizes, sizes[1:]))
    t_gd = median_seconds(gdcore_step, args.repeats)
    t_np = median_seconds(numpy_products, args.repeats)
    print(f"build: {gd.build_info()['blas_corename']} kernels {gd.build_info()['kernels_isa']},"
          f" {args.threads} thread(s), {args.rows} rows")
    print(f"gdcore full-batch step  {t_gd * 1e3:8.1f} ms  {2 * macs / t_gd / 1e9:6.1f} GFLOP/s")
    print(f"NumPy, the same GEMMs   {t_np * 1e3:8.1f} ms  {2 * macs / t_np / 1e9:6.1f} GFLOP/s")
    print(f"gdcore rate / NumPy GEMM rate: {t_np / t_gd:.3f}")
    if limits is not None:
        limits.restore_original_limits()


if __name__ == "__main__":
    main()
