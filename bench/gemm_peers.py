#!/usr/bin/env python
"""The GEMM each engine stands on, on the products of a workload's training step.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/gemm_peers.py \\
        [--workload large] [--repeats 5] [--rounds 3] [--threads 2]

gdcore's large products run on OpenBLAS (scipy-openblas32, split over gdcore's threads),
NumPy's on its own OpenBLAS, PyTorch's on MKL and JAX's on XLA's CPU GEMM. A large epoch is
almost all GEMM, so "large: PyTorch / gdcore" in compare.py cannot beat the ratio of the two
libraries' rates on the same products. This script measures that ratio: every product of one
training step of the workload (forward ``A @ W``, weight gradient ``A^T @ dZ``, input
gradient ``dZ @ W^T``, all float32), with the same thread count. The libraries take turns,
``--rounds`` blocks of ``--repeats`` timed calls each, so that they share the machine's
conditions; each block starts after a pause (compare.py's ``settle``), because a library's
workers spin for a while after its calls and would take the cores from the next library's. Prints the median GFLOP/s
per product and library, and the step's total time per library (the sum of the medians) as a
ratio to NumPy's. PyTorch is timed twice: on gdcore's layouts (W stored n_in x n_out) and on
the layouts its own ``nn.Linear`` uses (W^T stored; the weight gradient computed transposed).
``gd.build_info()`` is printed first.
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
from measurement import OPENBLAS_OVERRIDES, settle  # noqa: E402
from workloads import WORKLOADS  # noqa: E402


def step_products(sizes: tuple, batch: int) -> list[tuple[str, tuple, tuple, bool, bool]]:
    """(label, shape of A, shape of B, transpose A, transpose B) of every product of one step
    with more than 2^20 multiply-adds (the smaller ones do not show a library's rate)."""
    products = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        products.append((f"forward {i}: A @ W", (batch, n_in), (n_in, n_out), False, False))
        products.append((f"dW {i}: A^T @ dZ", (batch, n_in), (batch, n_out), True, False))
        if i > 0:
            products.append((f"dA {i - 1}: dZ @ W^T", (batch, n_out), (n_in, n_out), False, True))
    big = []
    for label, sa, sb, ta, tb in products:
        m, k = (sa[1], sa[0]) if ta else sa
        n = sb[0] if tb else sb[1]
        if m * n * k > 2 ** 20:
            big.append((label, sa, sb, ta, tb))
    return big


def libraries(threads: int) -> dict:
    """name -> function(A, B, ta, tb) returning a callable that computes op(A) @ op(B)."""
    libs = {"NumPy (OpenBLAS)": lambda a, b, ta, tb: (
        lambda: np.matmul(a.T if ta else a, b.T if tb else b))}
    try:
        import torch
        torch.set_num_threads(threads)

        def torch_product(a, b, ta, tb):
            x, y = torch.from_numpy(a), torch.from_numpy(b)
            x, y = (x.t() if ta else x), (y.t() if tb else y)
            return lambda: torch.mm(x, y)
        def torch_linear_product(a, b, ta, tb):
            # The same product in the layouts nn.Linear keeps: its weight is W^T (n_out, n_in),
            # so the forward is A @ (W^T)^T, the weight gradient dZ^T @ A (W^T's shape) and
            # the input gradient dZ @ W^T as stored.
            x, y = torch.from_numpy(a), torch.from_numpy(b)
            if not ta and not tb:  # forward: A @ W
                wt = y.t().contiguous()
                return lambda: torch.mm(x, wt.t())
            if ta:  # weight gradient: A^T @ dZ, as dZ^T @ A
                return lambda: torch.mm(y.t(), x)
            wt = y.t().contiguous()  # input gradient: dZ @ W^T, W^T as stored
            return lambda: torch.mm(x, wt)
        library = "MKL" if torch.backends.mkl.is_available() else "BLAS"
        libs[f"PyTorch ({library})"] = torch_product
        libs["PyTorch, Linear's layouts"] = torch_linear_product
    except ImportError:
        print("PyTorch: not installed, skipped")
    try:
        import jax
        import jax.numpy as jnp

        def jax_product(a, b, ta, tb):
            f = jax.jit(lambda x, y: (x.T if ta else x) @ (y.T if tb else y))
            x, y = jnp.asarray(a), jnp.asarray(b)
            f(x, y).block_until_ready()  # compiled here, not timed
            return lambda: f(x, y).block_until_ready()
        libs["JAX (XLA)"] = jax_product
    except ImportError:
        print("JAX: not installed, skipped")
    return libs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=WORKLOADS, default="large")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per block")
    parser.add_argument("--rounds", type=int, default=3,
                        help="blocks per library, the libraries taking turns")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    overridden = [v for v in OPENBLAS_OVERRIDES if v in os.environ]
    if overridden:
        print(f"warning: {overridden} set: OpenBLAS's kernel choice is forced")
    from threadpoolctl import threadpool_limits
    threadpool_limits(args.threads)
    gd.set_num_threads(args.threads)
    libs = libraries(args.threads)
    print(json.dumps(gd.build_info()))
    w = WORKLOADS[args.workload]
    rng = np.random.default_rng(0)
    rows = []
    for label, sa, sb, ta, tb in step_products(tuple(w.sizes), w.batch_size):
        a = rng.standard_normal(sa, dtype=np.float32)
        b = rng.standard_normal(sb, dtype=np.float32)
        m, k = (sa[1], sa[0]) if ta else sa
        n = sb[0] if tb else sb[1]
        calls = {name: make(a, b, ta, tb) for name, make in libs.items()}
        times: dict = {name: [] for name in calls}
        for _ in range(args.rounds):
            for name, call in calls.items():
                settle()  # the previous library's spinning workers would steal the cores
                call()  # warm-up
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    call()
                    times[name].append(time.perf_counter() - start)
        medians = {name: statistics.median(t) for name, t in times.items()}
        rows.append((f"{label} ({m}x{k} @ {k}x{n})", 2 * m * n * k, medians))
    names = list(libs)
    print(f"{w.name} {list(w.sizes)}, batch {w.batch_size}, {args.threads} threads, medians of "
          f"{args.rounds} x {args.repeats} calls, GFLOP/s")
    print(f"{'product':46s}" + "".join(f"{name:>27s}" for name in names))
    for label, flops, medians in rows:
        print(f"{label:46s}" + "".join(f"{flops / medians[name] / 1e9:27.1f}" for name in names))
    totals = {name: sum(medians[name] for _, _, medians in rows) for name in names}
    base = totals[names[0]]
    print(f"{'step total, time relative to NumPy':46s}" +
          "".join(f"{totals[name] / base:27.3f}" for name in names))
    print(f"load average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
