#!/usr/bin/env python
"""The C API's cost per call against the Python one: one row at a time.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/capi_overhead.py [--threads 2]

Builds tests/capi_user/user_forward.pyx (Cython, against the installed gdcore) into a temporary
folder, then times, per row, on the predict-1 network (small: 64-128-10 relu/softmax) and the
tiny one (2-16-1 tanh/sigmoid), float32, rows ready as they are (C-contiguous, the network's
dtype, so no conversion):

- ``net.predict(x)``: the public call, one (1, n_inputs) row per call, from Python;
- ``engine.predict(x)``: the compiled engine's own method (what net.predict calls);
- ``gd_forward_f32`` from Cython: a ``nogil`` loop making one call per row;
- ``gd_forward_f32`` from a ``prange`` of ``--threads`` threads (OpenMP): time per row over all
  threads (throughput; absent when the compiler has no OpenMP).

Each figure is the median of 7 runs of enough calls to last ~0.1 s (warm caches). Run it on an
idle machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "capi_user"))

import gdcore as gd  # noqa: E402
import capi_build  # noqa: E402

NETWORKS = {  # name: sizes, hidden activation, output activation, loss
    "small": ([64, 128, 10], "relu", "softmax", "cross_entropy"),
    "tiny": ([2, 16, 1], "tanh", "sigmoid", "bce"),
}


def median_seconds(fn, calls_per_run: int, runs: int = 7) -> float:
    """Median over `runs` of the seconds per call of fn(), which makes calls_per_run calls."""
    fn()  # warm
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) / calls_per_run)
    return statistics.median(times)


def calls_for(fn_one, seconds: float = 0.1) -> int:
    """How many calls of fn_one() take about `seconds`."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn_one()
        if time.perf_counter() - t0 > seconds / 4:
            return max(1, int(n * seconds / (time.perf_counter() - t0)))
        n *= 2


def bench(user, openmp: bool, name: str, threads: int) -> None:
    sizes, hidden, output, loss = NETWORKS[name]
    with gd.use_backend("cpp"):
        net = gd.Network.from_sizes(sizes, activation=hidden, output_activation=output,
                                    loss=loss, dtype="float32", seed=0)
    n_rows = 4096
    X = np.random.default_rng(0).standard_normal((n_rows, sizes[0])).astype(np.float32)
    row = np.ascontiguousarray(X[:1])
    want = net.predict(X)

    n = calls_for(lambda: net.predict(row))
    public = median_seconds(lambda: [net.predict(row) for _ in range(n)], n)
    engine = net._engine
    engine_call = median_seconds(lambda: [engine.predict(row) for _ in range(n)], n)

    h = user.Handle(net)
    out = np.zeros_like(want)
    repeats = max(1, calls_for(lambda: h.rows(X, out), 0.1))
    capi = median_seconds(lambda: h.rows(X, out, repeats), n_rows * repeats)
    assert h.rows(X, out) == 0
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-6)

    print(f"\n{name} {'-'.join(map(str, sizes))} float32, one row per call "
          f"({sizes[0]} inputs, {sum(a * b for a, b in zip(sizes, sizes[1:]))} multiply-adds)")
    show("net.predict(row) from Python", public, public)
    show("engine.predict(row) from Python", engine_call, public)
    show("gd_forward_f32 from Cython (nogil loop)", capi, public)
    if openmp:
        codes = np.zeros(n_rows, np.int32)
        tid = np.zeros(n_rows, np.int32)
        par = median_seconds(lambda: h.rows_prange(X, out, codes, tid, threads, 1), n_rows)
        assert (codes == 0).all()
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-6)
        show(f"gd_forward_f32 from a prange of {threads} threads", par, public,
             " (per row, all threads)")
    else:
        print("  (no OpenMP: the prange figure is left out)")


def show(label: str, seconds: float, reference: float, note: str = "") -> None:
    print(f"  {label:48s} {seconds * 1e6:8.3f} us  {reference / seconds:7.1f} x{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="prange threads")
    args = parser.parse_args()
    info = gd.build_info()
    print(f"gdcore {info.get('version')} ({info.get('compiler')}, {info.get('cxx_flags')}), "
          f"kernels {info.get('kernels_isa')}, BLAS {info.get('blas_corename')} "
          f"{info.get('blas_num_threads')} threads; Python {sys.version.split()[0]}, "
          f"NumPy {np.__version__}, {os.cpu_count()} CPUs")
    if capi_build.c_compiler() is None:
        raise SystemExit("no C compiler: cannot build the Cython extension")
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        path, openmp = capi_build.build(Path(folder))
        print(f"user extension built in {time.perf_counter() - t0:.1f} s "
              f"({'with' if openmp else 'without'} OpenMP)")
        user = capi_build.load(path)
        for name in NETWORKS:
            bench(user, openmp, name, args.threads)


if __name__ == "__main__":
    main()
