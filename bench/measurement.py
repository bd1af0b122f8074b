"""Timing and memory measurements for compare.py: medians of repeated runs, the machine.

Each time is the median of ``repeats`` runs after one warm-up run, with the spread of the
runs beside it; engines that cannot run a measurement are logged as skipped.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Optional

import numpy as np

import gdcore as gd
from engines import (EPOCH_RUNNERS, GDCORE_BACKENDS, Epoch, Skipped, gdcore_backend,
                     gdcore_epoch, predict_callables)
from workloads import PREDICT_WORKLOAD, WORKLOADS, Workload, cpp_available

PREDICT_CALLS = 5000
GEMM_SIZE = 2048
SETTLE_SECONDS = 0.5
#: Epochs are timed until their runs add up to this (see median_seconds), at most MAX_REPEATS.
MIN_TIMED_SECONDS = 0.25
MAX_REPEATS = 1000
#: The engines are timed in turns, this many rounds (at most --repeats): see median_seconds.
ROUNDS = 3
#: Environment variables that force OpenBLAS's kernel choice; benchmarks run without them.
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
MiB = 2 ** 20
#: The script whose ``--memory-probe`` runs :func:`memory_probe` in a fresh process.
COMPARE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compare.py")


# --- timing ----------------------------------------------------------------------------------

def settle() -> None:
    """Let the thread pools of the engine measured before stop spinning (OpenBLAS's and
    OpenMP's workers busy-wait for a while after each call, and would steal the cores)."""
    time.sleep(SETTLE_SECONDS)


def spread(times: list) -> float:
    """(max - min) / median: how much the repetitions disagree (load from other processes)."""
    return (max(times) - min(times)) / statistics.median(times)


def round_sizes(repeats: int, rounds: int) -> list:
    """Runs per round when ``repeats`` runs are spread over ``rounds`` rounds (at most
    ``repeats`` rounds, at least one): as even as the division allows, summing to
    ``repeats``."""
    rounds = max(1, min(rounds, repeats))
    return [(repeats * (r + 1)) // rounds - (repeats * r) // rounds for r in range(rounds)]


def timed_block(epoch: Epoch, runs: int, min_seconds: float, max_runs: int) -> tuple[list, float]:
    """One block of timed runs of ``epoch`` (each from ``reset``), after a settle: at least
    ``runs``, and more until they add up to ``min_seconds`` (at most ``max_runs``). The times
    and the last loss."""
    settle()
    times: list = []
    loss = float("nan")
    while len(times) < runs or (sum(times) < min_seconds and len(times) < max_runs):
        epoch.reset()
        start = time.perf_counter()
        loss = epoch.run()
        times.append(time.perf_counter() - start)
    return times, float(loss)


def median_seconds(epochs: dict, repeats: int, rounds: int = ROUNDS) -> dict:
    """name -> (median wall time, last loss, spread) of each epoch in ``epochs`` (name ->
    Epoch), timed in turns: ``rounds`` rounds, each running a block of every epoch in order.
    A VM's speed drifts by up to 2x from one minute to the next, so epochs timed one after the
    other in single blocks could each meet a different speed; in turns they share the drift.
    Over all rounds each epoch runs at least ``repeats`` times (after one warm-up run), and
    short epochs more often, until their timed runs add up to MIN_TIMED_SECONDS (at most
    MAX_REPEATS runs): the same rule for every engine, so that a sub-millisecond epoch's median
    is not five samples of a noisy machine."""
    sizes = round_sizes(repeats, rounds)
    for epoch in epochs.values():
        epoch.reset()
        epoch.run()
    times: dict = {name: [] for name in epochs}
    losses: dict = {}
    for runs in sizes:
        for name, epoch in epochs.items():
            block, losses[name] = timed_block(epoch, runs, MIN_TIMED_SECONDS / len(sizes),
                                              MAX_REPEATS // len(sizes))
            times[name] += block
    return {name: (statistics.median(t), losses[name], spread(t)) for name, t in times.items()}


@dataclasses.dataclass
class Row:
    workload: str
    engine: str
    seconds: float
    loss: float
    spread: float
    engine_seconds: Optional[float] = None  # gdcore: net.train_epoch alone


def run_workload(w: Workload, engines, repeats: int, log, rounds: int = ROUNDS) -> list[Row]:
    """One Row per engine: a timed epoch from the same initial weights on every engine, the
    engines timed in turns (median_seconds)."""
    data = w.data()
    initial = [p.copy() for p in w.network().parameters()]  # seeded: the same on every engine
    epochs: dict = {}
    for engine in engines:
        try:
            epochs[engine] = EPOCH_RUNNERS[engine](w, data, initial)
            if engine in GDCORE_BACKENDS:
                epochs[(engine, "bare")] = gdcore_epoch(w, data, initial,
                                                        GDCORE_BACKENDS[engine], bare=True)
        except Skipped as reason:
            log(f"  {w.name:7s} {engine:8s} skipped: {reason}")
    timed = median_seconds(epochs, repeats, rounds)
    rows = []
    for engine in engines:
        if engine not in timed:
            continue
        row = Row(w.name, engine, *timed[engine])
        if (engine, "bare") in timed:
            row.engine_seconds = timed[(engine, "bare")][0]
        rows.append(row)
    return rows


def predict_one(engines, repeats: int, log, rounds: int = ROUNDS) -> dict:
    """predict-1: forward on one row of the small network. Median over repetitions of the
    mean time per call (``PREDICT_CALLS`` calls each), the engines in turns as in
    median_seconds."""
    w = WORKLOADS[PREDICT_WORKLOAD]
    x_row = w.data()[0][0]  # 1-D float32 (n_inputs,)
    initial = [p.copy() for p in w.network().parameters()]
    callables = {}
    for engine in engines:
        try:
            callables[engine] = predict_callables(engine, w, x_row, initial)
        except Skipped as reason:
            log(f"  predict-1 {engine:8s} skipped: {reason}")
    times: dict = {engine: [] for engine in callables}
    for runs in round_sizes(repeats, rounds):
        for engine, (predict, context) in callables.items():
            settle()
            with context:
                for _ in range(PREDICT_CALLS // 10):  # warm-up
                    predict()
                for _ in range(runs):
                    start = time.perf_counter()
                    for _ in range(PREDICT_CALLS):
                        predict()
                    times[engine].append((time.perf_counter() - start) / PREDICT_CALLS)
    return {engine: {"seconds": statistics.median(t), "spread": spread(t)}
            for engine, t in times.items()}


# --- memory: peak of one medium fit, in a fresh child process ------------------------------

def rss_bytes() -> int:
    """Resident set size now (Linux /proc; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """High-water mark of the RSS (Linux VmHWM, which reset_peak_rss restarts; else maxrss)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def reset_peak_rss() -> bool:
    """Start a new high-water mark at the current RSS (Linux >= 4.0); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_probe(backend: str, threads: int) -> dict:
    """Child process: the memory one medium fit epoch needs, data included.

    The data are made first (their generator's temporaries and NumPy's BLAS buffers are not
    the fit's) and counted at their exact size; then the RSS growth from there to the
    process's high-water mark after the fit counts the network, the optimizer state and
    everything fit and the engine allocate (activations, gradients, validation temporaries,
    the core's OpenBLAS buffers on first use). The optimizer's state is allocated by the
    first fit (gdcore binds it there); it is counted with the network at its exact size
    (``network``: network and optimizer) and taken out of ``fit``. A second epoch under
    tracemalloc gives the peak of the NumPy/Python allocations made inside fit (C++
    allocations are not traced).
    """
    import tracemalloc
    from threadpoolctl import threadpool_limits
    gd.set_num_threads(threads)
    threadpool_limits(threads)
    w = WORKLOADS["medium"]
    X, y = w.data()
    with gdcore_backend(backend):
        after_data = rss_bytes()
        peak_was_reset = reset_peak_rss()
        net = w.network()
        opt = w.optimizer()
        before_fit = rss_bytes()
        net.fit(X, y, optimizer=opt, epochs=1, batch_size=w.batch_size, shuffle=False)
        peak = peak_rss_bytes()
        tracemalloc.start()
        net.fit(X, y, optimizer=opt, epochs=1, batch_size=w.batch_size, shuffle=False)
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    data = X.nbytes + y.nbytes
    state = sum(s.nbytes for s in opt.state_dict()["state"])
    params_and_state = sum(p.nbytes for p in net.parameters()) + state
    return {"backend": backend, "data": data, "params_and_state": params_and_state,
            "used": data + peak - after_data, "network": before_fit - after_data + state,
            "fit": peak - before_fit - state, "traced_peak_in_fit": traced_peak,
            "peak_was_reset": peak_was_reset}


def measure_memory(engines, threads: int, log) -> dict:
    """:func:`memory_probe` for each gdcore engine asked for, each in a fresh process."""
    results = {}
    for engine, backend in GDCORE_BACKENDS.items():
        if engine not in engines:
            continue
        if backend == "cpp" and not cpp_available():
            log(f"  memory  {engine:8s} skipped: gdcore C++ core not built")
            continue
        out = subprocess.run([sys.executable, COMPARE_SCRIPT, "--memory-probe", backend,
                              "--threads", str(threads)],
                             capture_output=True, text=True, check=True)
        results[engine] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


def memory_budget(mem: dict) -> float:
    """Bytes allowed: the data, the parameters with their optimizer state, and 64 MiB."""
    return mem["data"] + mem["params_and_state"] + 64 * MiB


# --- the machine and its GEMM rate -----------------------------------------------------------

def blas_libraries() -> list[dict]:
    """Every BLAS threadpoolctl sees, labelled by the package that ships it."""
    from threadpoolctl import threadpool_info
    owners = (("scipy_openblas32", "gdcore"), ("numpy", "numpy"), ("scipy", "scipy"),
              ("torch", "torch"))
    libraries = []
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        path = info.get("filepath", "")
        owner = next((name for key, name in owners if f"/{key}" in path), "?")
        libraries.append({"used_by": owner, "library": os.path.basename(path),
                          "version": info.get("version"),
                          "architecture": info.get("architecture"),
                          "threads": info.get("num_threads")})
    return libraries


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "gdcore": gd.__version__}
    for module in ("torch", "sklearn", "jax"):
        try:
            versions[module] = importlib.import_module(module).__version__
        except ImportError:
            versions[module] = None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": cpu_model(), "cores": cores, "platform": platform.platform(),
            "load_average": load,
            "versions": versions, "gdcore_build": gd.build_info(), "blas": blas_libraries(),
            "openblas_overrides": {k: os.environ[k] for k in OPENBLAS_OVERRIDES
                                   if k in os.environ}}


def gemm_gflops(repeats: int) -> tuple[float, float]:
    """The machine's practical float32 rate: NumPy's ``A @ B`` on GEMM_SIZE^3 (median GFLOP/s
    and the spread of the times)."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((GEMM_SIZE, GEMM_SIZE), dtype=np.float32)
    B = rng.standard_normal((GEMM_SIZE, GEMM_SIZE), dtype=np.float32)
    C = np.empty_like(A)
    np.matmul(A, B, out=C)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(A, B, out=C)
        times.append(time.perf_counter() - start)
    return 2 * GEMM_SIZE ** 3 / statistics.median(times) / 1e9, spread(times)
