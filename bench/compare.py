#!/usr/bin/env python
"""gdcore against its NumPy reference, PyTorch and scikit-learn on the workloads of issue 4.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/compare.py \\
        [--repeats N] [--threads T] [--only tiny,small,medium,large,predict-1,memory] \\
        [--engines gdcore,numpy,torch,sklearn] [--json out.json]

Everything runs in this one process (the memory probe in a fresh child), with the same thread
count for every engine. An epoch is timed as the user calls it: ``net.fit(X, y, optimizer=...,
epochs=1, batch_size=bs, shuffle=False)`` from the same initial weights and a fresh optimizer
each repetition; the "engine" column is the bare ``train_epoch`` call underneath, so the
difference is the Python layer. Each time is the median of ``--repeats`` runs after one
warm-up run. Engines that are not installed are reported as skipped.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable, Optional

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gdcore as gd  # noqa: E402
from workloads import (PREDICT_WORKLOAD, WORKLOADS, Workload, cpp_available,  # noqa: E402
                       restore)

ENGINES = ("gdcore", "numpy", "torch", "sklearn")
MEASURES = (*WORKLOADS, "predict-1", "memory")
#: Environment variables that force OpenBLAS's kernel choice; benchmarks run without them.
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
PREDICT_CALLS = 5000
GEMM_SIZE = 2048
SETTLE_SECONDS = 0.5
#: Repetitions that disagree by more than this fraction of their median are flagged.
NOISY = 0.25
MiB = 2 ** 20


class Skipped(Exception):
    """An engine cannot run this measurement; the message says why."""


def optional_import(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise Skipped(f"{module.split('.')[0]} not installed") from None


@contextlib.contextmanager
def gdcore_backend(name: str):
    """Networks built inside use gdcore backend ``name`` ("cpp" or "numpy")."""
    if name == "cpp" and not cpp_available():
        raise Skipped("gdcore C++ core not built")
    previous = gd.backend()
    gd.set_backend(name)
    try:
        yield
    finally:
        gd.set_backend(previous)


# ------------------------------------------------------------------------------------------
# One epoch on each engine. Each function prepares its engine for a workload and returns an
# Epoch: ``reset`` (untimed) puts back the initial weights and a fresh optimizer, ``run``
# (timed) trains one epoch and returns its loss.

@dataclasses.dataclass
class Epoch:
    reset: Callable[[], None]
    run: Callable[[], float]


def gdcore_epoch(w: Workload, data, initial, backend: str, bare: bool = False) -> Epoch:
    """``fit(epochs=1)``; with ``bare``, the engine's ``train_epoch`` call alone."""
    with gdcore_backend(backend):
        net = w.network()
    X, y = data
    current = {}

    def reset():
        restore(net, initial)
        current["opt"] = w.optimizer()

    def fit():
        history = net.fit(X, y, optimizer=current["opt"], epochs=1, batch_size=w.batch_size,
                          shuffle=False)
        return history.loss[0]

    if not bare:
        return Epoch(reset, fit)

    # What fit hands the engine (private API): validated arrays, the visiting order, the
    # optimizer's hyper-parameters and its state bound to this network.
    X_valid, Y_valid, _ = net._data(X, y)
    order = np.arange(len(X), dtype=np.int64)

    def reset_bare():
        reset()
        opt = current["opt"]
        opt.bind(net, net.parameters())
        current["hyper"] = opt.hyper(opt.lr)

    def train_epoch():
        opt = current["opt"]
        return float(net._engine.train_epoch(X_valid, Y_valid, None, order, w.batch_size,
                                              opt.kind, current["hyper"], opt.state, opt.step))

    return Epoch(reset_bare, train_epoch)


TORCH_ACTIVATIONS = {"identity": "Identity", "sigmoid": "Sigmoid", "tanh": "Tanh",
                     "relu": "ReLU", "softmax": "Softmax"}


def torch_model(w: Workload, initial, with_output_activation: bool):
    """``nn.Sequential`` with gdcore's initial weights; the output layer gives logits unless
    ``with_output_activation`` (the losses below take logits, as gdcore's fused ones do)."""
    torch = optional_import("torch")
    nn = torch.nn
    layers = []
    n_layers = len(w.sizes) - 1
    for i in range(n_layers):
        linear = nn.Linear(w.sizes[i], w.sizes[i + 1])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(initial[2 * i].T.copy()))  # (out, in)
            linear.bias.copy_(torch.from_numpy(initial[2 * i + 1]))
        layers.append(linear)
        name = w.activation if i < n_layers - 1 else w.output_activation
        if i < n_layers - 1 or with_output_activation:
            module = getattr(nn, TORCH_ACTIVATIONS[name])
            layers.append(module(dim=-1) if name == "softmax" else module())
    return nn.Sequential(*layers)


def torch_epoch(w: Workload, data, initial) -> Epoch:
    """A plain loop over the same batches: zero_grad, forward, loss, backward, step."""
    torch = optional_import("torch")
    model = torch_model(w, initial, with_output_activation=False)
    if w.loss == "bce":
        loss_fn = torch.nn.BCEWithLogitsLoss()
        targets = torch.from_numpy(data[1]).reshape(-1, 1)
    else:
        loss_fn = torch.nn.CrossEntropyLoss()
        targets = torch.from_numpy(data[1])
    batches = list(zip(torch.from_numpy(data[0]).split(w.batch_size),
                       targets.split(w.batch_size)))
    params = list(model.parameters())
    start = [p.detach().clone() for p in params]
    current = {}

    def reset():
        with torch.no_grad():
            for p, p0 in zip(params, start):
                p.copy_(p0)
        current["opt"] = torch.optim.SGD(params, lr=w.lr, momentum=w.momentum)

    def run():
        opt, total = current["opt"], 0.0
        for xb, yb in batches:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        return total / w.n_samples

    return Epoch(reset, run)


SKLEARN_ACTIVATIONS = {"identity": "identity", "sigmoid": "logistic", "tanh": "tanh",
                       "relu": "relu"}


def sklearn_epoch(w: Workload, data, initial) -> Epoch:
    """``MLPClassifier.partial_fit`` once over the data (its epoch), plain SGD settings."""
    neural_network = optional_import("sklearn.neural_network")
    # MLPClassifier ends in a logistic unit (2 classes, log-loss = bce) or a softmax
    # (cross-entropy), and knows four hidden activations.
    expressible = ((w.loss, w.output_activation) in
                   (("bce", "sigmoid"), ("cross_entropy", "softmax"))
                   and w.activation in SKLEARN_ACTIVATIONS)
    if not expressible:
        raise Skipped(f"MLPClassifier cannot express {w.name}")
    X, y = data
    classes = np.unique(y)
    current = {}

    def reset():
        clf = neural_network.MLPClassifier(
            hidden_layer_sizes=w.sizes[1:-1], activation=SKLEARN_ACTIVATIONS[w.activation],
            solver="sgd", batch_size=w.batch_size, learning_rate="constant",
            learning_rate_init=w.lr, momentum=w.momentum, nesterovs_momentum=False, alpha=0.0,
            shuffle=False, random_state=0)
        # One call on one batch builds the model; then load gdcore's initial weights into its
        # arrays and drop its optimizer (private attribute) so that the timed call starts a
        # fresh one with zero velocity over those same arrays.
        clf.partial_fit(X[:w.batch_size], y[:w.batch_size], classes=classes)
        for target, value in zip(clf.coefs_ + clf.intercepts_, initial[0::2] + initial[1::2]):
            np.copyto(target, value)
        del clf._optimizer
        current["clf"] = clf

    def run():
        clf = current["clf"]
        clf.partial_fit(X, y)
        return clf.loss_

    return Epoch(reset, run)


#: The engines that are gdcore, and the backend each one uses.
GDCORE_BACKENDS = {"gdcore": "cpp", "numpy": "numpy"}
EPOCH_RUNNERS = {
    "gdcore": functools.partial(gdcore_epoch, backend="cpp"),
    "numpy": functools.partial(gdcore_epoch, backend="numpy"),
    "torch": torch_epoch,
    "sklearn": sklearn_epoch,
}


def settle() -> None:
    """Let the thread pools of the engine measured before stop spinning (OpenBLAS's and
    OpenMP's workers busy-wait for a while after each call, and would steal the cores)."""
    time.sleep(SETTLE_SECONDS)


def spread(times: list) -> float:
    """(max - min) / median: how much the repetitions disagree (load from other processes)."""
    return (max(times) - min(times)) / statistics.median(times)


def median_seconds(epoch: Epoch, repeats: int) -> tuple[float, float, float]:
    """Median wall time of ``run`` over ``repeats`` (after one warm-up), the last loss, and
    the spread of the times."""
    settle()
    epoch.reset()
    epoch.run()
    times = []
    for _ in range(repeats):
        epoch.reset()
        start = time.perf_counter()
        loss = epoch.run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), float(loss), spread(times)


@dataclasses.dataclass
class Row:
    workload: str
    engine: str
    seconds: float
    loss: float
    spread: float
    engine_seconds: Optional[float] = None  # gdcore: the bare train_epoch call


def run_workload(w: Workload, engines, repeats: int, log) -> list[Row]:
    data = w.data()
    initial = [p.copy() for p in w.network().parameters()]  # seeded: the same on every engine
    rows = []
    for engine in engines:
        try:
            row = Row(w.name, engine,
                      *median_seconds(EPOCH_RUNNERS[engine](w, data, initial), repeats))
            if engine in GDCORE_BACKENDS:
                bare = gdcore_epoch(w, data, initial, GDCORE_BACKENDS[engine], bare=True)
                row.engine_seconds = median_seconds(bare, repeats)[0]
        except Skipped as reason:
            log(f"  {w.name:7s} {engine:8s} skipped: {reason}")
            continue
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------
# predict-1: forward on one row of the small network, per call.

def predict_callables(engine: str, w: Workload, x_row: np.ndarray, initial):
    """A zero-argument function that predicts ``x_row`` once, and a context to call it in."""
    if engine in GDCORE_BACKENDS:
        with gdcore_backend(GDCORE_BACKENDS[engine]):
            net = w.network()
        restore(net, initial)
        return (lambda: net.forward(x_row)), contextlib.nullcontext()
    if engine == "torch":
        torch = optional_import("torch")
        model = torch_model(w, initial, with_output_activation=True)
        x = torch.from_numpy(x_row.reshape(1, -1))
        return (lambda: model(x)), torch.no_grad()
    raise Skipped("no single-row predict measured for this engine")


def predict_one(engines, repeats: int, log) -> dict:
    """Median over repetitions of the mean time per call (``PREDICT_CALLS`` calls each)."""
    w = WORKLOADS[PREDICT_WORKLOAD]
    x_row = w.data()[0][0]  # 1-D float32 (n_inputs,)
    initial = [p.copy() for p in w.network().parameters()]
    per_call = {}
    for engine in engines:
        try:
            predict, context = predict_callables(engine, w, x_row, initial)
        except Skipped as reason:
            log(f"  predict-1 {engine:8s} skipped: {reason}")
            continue
        settle()
        with context:
            for _ in range(PREDICT_CALLS // 10):  # warm-up
                predict()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                for _ in range(PREDICT_CALLS):
                    predict()
                times.append((time.perf_counter() - start) / PREDICT_CALLS)
        per_call[engine] = {"seconds": statistics.median(times), "spread": spread(times)}
    return per_call


# ------------------------------------------------------------------------------------------
# Peak memory of one medium fit, measured in a fresh child process.

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
    the core's OpenBLAS buffers on first use). A second epoch under tracemalloc gives the peak
    of the NumPy/Python allocations made inside fit (C++ allocations are not traced).
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
        opt.bind(net, net.parameters())
        before_fit = rss_bytes()
        net.fit(X, y, optimizer=opt, epochs=1, batch_size=w.batch_size, shuffle=False)
        peak = peak_rss_bytes()
        tracemalloc.start()
        net.fit(X, y, optimizer=opt, epochs=1, batch_size=w.batch_size, shuffle=False)
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    data = X.nbytes + y.nbytes
    params_and_state = sum(p.nbytes for p in net.parameters()) + sum(s.nbytes for s in opt.state)
    return {"backend": backend, "data": data, "params_and_state": params_and_state,
            "used": data + peak - after_data, "network": before_fit - after_data,
            "fit": peak - before_fit, "traced_peak_in_fit": traced_peak,
            "peak_was_reset": peak_was_reset}


def measure_memory(engines, threads: int, log) -> dict:
    results = {}
    for engine, backend in GDCORE_BACKENDS.items():
        if engine not in engines:
            continue
        if backend == "cpp" and not cpp_available():
            log(f"  memory  {engine:8s} skipped: gdcore C++ core not built")
            continue
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-probe",
                              backend, "--threads", str(threads)],
                             capture_output=True, text=True, check=True)
        results[engine] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


# ------------------------------------------------------------------------------------------
# The machine and the GEMM rate.

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
    for module in ("torch", "sklearn"):
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


# ------------------------------------------------------------------------------------------
# Targets of issue 4.

@dataclasses.dataclass
class Target:
    name: str
    value: Optional[float]
    threshold: float
    at_most: bool = False  # the value must stay <= threshold instead of >=

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "SKIP"
        ok = self.value <= self.threshold if self.at_most else self.value >= self.threshold
        return "PASS" if ok else "FAIL"


def evaluate(rows: list[Row], predict: dict, memory: dict, gemm: float) -> list[Target]:
    seconds = {(r.workload, r.engine): r.seconds for r in rows}

    def ratio(workload: str, peer: str) -> Optional[float]:
        gdcore, other = seconds.get((workload, "gdcore")), seconds.get((workload, peer))
        return other / gdcore if gdcore and other else None

    large = WORKLOADS["large"]
    large_gdcore = seconds.get(("large", "gdcore"))
    large_fraction = (large.train_flops_per_sample * large.n_samples / large_gdcore / 1e9 / gemm
                      if large_gdcore else None)
    predict_ratio = (predict["torch"]["seconds"] / predict["gdcore"]["seconds"]
                     if "torch" in predict and "gdcore" in predict else None)
    mem = memory.get("gdcore")
    return [
        Target("tiny: PyTorch / gdcore", ratio("tiny", "torch"), 100),
        Target("tiny: NumPy reference / gdcore", ratio("tiny", "numpy"), 10),
        Target("small: PyTorch / gdcore", ratio("small", "torch"), 15),
        Target("small: scikit-learn / gdcore", ratio("small", "sklearn"), 8),
        Target("medium: PyTorch / gdcore", ratio("medium", "torch"), 1.2),
        Target("large: PyTorch / gdcore", ratio("large", "torch"), 0.95),
        Target("large: gdcore GFLOP/s / GEMM rate", large_fraction, 0.9),
        Target("predict-1: PyTorch / gdcore per call", predict_ratio, 10),
        Target("medium fit: memory used / budget",
               None if mem is None else mem["used"] / memory_budget(mem), 1.0, at_most=True),
    ]


def memory_budget(mem: dict) -> float:
    """Bytes allowed: the data, the parameters with their optimizer state, and 64 MiB."""
    return mem["data"] + mem["params_and_state"] + 64 * MiB


# ------------------------------------------------------------------------------------------
# Output.

def print_machine(info: dict, threads: int) -> None:
    v = info["versions"]
    print(f"machine : {info['cpu']}, {info['cores']} cores available; {info['platform']}")
    print(f"versions: python {v['python']}, numpy {v['numpy']}, torch {v['torch']}, "
          f"scikit-learn {v['sklearn']}, gdcore {v['gdcore']}")
    print(f"gdcore  : {info['gdcore_build']}")
    for lib in info["blas"]:
        print(f"BLAS    : {lib['used_by']:7s} {lib['library']} {lib['version']} "
              f"kernel={lib['architecture']} threads={lib['threads']}")
    print(f"threads : {threads} for every engine")
    if info["load_average"] is not None and info["load_average"] > 0.5:
        print(f"WARNING : load average {info['load_average']:.2f}: something else is running; "
              f"with {info['cores']} cores the timings are not reliable")
    for name, value in info["openblas_overrides"].items():
        print(f"WARNING : {name}={value} is set and forces OpenBLAS's kernels; run as "
              f"`env -u {' -u '.join(OPENBLAS_OVERRIDES)} python bench/compare.py`")


def print_table(rows: list[Row], gemm: float) -> None:
    print(f"\n{'workload':8s} {'engine':8s} {'epoch':>10s} {'spread':>7s} {'engine':>10s} "
          f"{'samples/s':>11s} {'GFLOP/s':>8s} {'/gdcore':>8s} {'of GEMM':>8s} {'loss':>9s}")
    gdcore = {r.workload: r.seconds for r in rows if r.engine == "gdcore"}
    for r in rows:
        w = WORKLOADS[r.workload]
        gflops = w.train_flops_per_sample * w.n_samples / r.seconds / 1e9
        vs = f"{r.seconds / gdcore[r.workload]:8.2f}" if r.workload in gdcore else f"{'n/a':>8s}"
        bare = f"{r.engine_seconds * 1e3:8.2f}ms" if r.engine_seconds else f"{'':10s}"
        print(f"{r.workload:8s} {r.engine:8s} {r.seconds * 1e3:8.2f}ms {r.spread:6.0%}"
              f"{'!' if r.spread > NOISY else ' '}{bare} {w.n_samples / r.seconds:11.0f} "
              f"{gflops:8.1f} {vs} {gflops / gemm:8.1%} {r.loss:9.5f}")
    print("epoch: median fit(epochs=1) (torch: its loop, sklearn: partial_fit); spread: "
          f"(max - min) / median, '!' above {NOISY:.0%} (noisy: rerun on an idle machine); "
          "engine: the bare train_epoch call; GFLOP/s: 6 x sum(n_in*n_out) per sample; "
          "loss: the epoch's loss, the same on every engine when they compute the same thing")


def print_predict(per_call: dict) -> None:
    gdcore = per_call.get("gdcore", {}).get("seconds")
    for engine, m in per_call.items():
        vs = f"{m['seconds'] / gdcore:8.2f} x gdcore" if gdcore else ""
        print(f"predict-1 {engine:8s} {m['seconds'] * 1e6:9.2f} us/call (spread "
              f"{m['spread']:.0%}{'!' if m['spread'] > NOISY else ''}) {vs}")


def print_memory(memory: dict) -> None:
    """What the medium fit used in a fresh process, against the budget."""
    for engine, m in memory.items():
        print(f"memory {engine:8s} medium fit: {m['used'] / MiB:.1f} MiB used, budget "
              f"{memory_budget(m) / MiB:.1f} MiB (data {m['data'] / MiB:.1f} + parameters and "
              f"optimizer state {m['params_and_state'] / MiB:.1f} + 64)")
        print(f"       {'':8s} used = data {m['data'] / MiB:.1f} + RSS growth: network and "
              f"optimizer {m['network'] / MiB:.1f}, fit's peak {m['fit'] / MiB:.1f} MiB above "
              f"that (NumPy allocations inside fit peak at "
              f"{m['traced_peak_in_fit'] / MiB:.1f} MiB)"
              + ("" if m["peak_was_reset"] else " [peak RSS could not be reset: it may "
                 "include the imports]"))


def print_targets(targets: list[Target]) -> None:
    print()
    for t in targets:
        value = "n/a" if t.value is None else f"{t.value:.3g}"
        print(f"{t.verdict:4s}  {t.name:40s} {value:>8s}  (target {'<=' if t.at_most else '>='}"
              f" {t.threshold:g})")


# ------------------------------------------------------------------------------------------

def names(text: str, allowed: tuple, option: str) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in allowed]
    if unknown:
        raise SystemExit(f"{option}: unknown {unknown}; choose from {', '.join(allowed)}")
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="repetitions per median (>= 3)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every engine")
    parser.add_argument("--only", default=",".join(MEASURES),
                        help=f"comma-separated subset of {','.join(MEASURES)}")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help=f"comma-separated subset of {','.join(ENGINES)}")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--memory-probe", choices=("cpp", "numpy"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe, args.threads)))
        return 0
    if args.repeats < 3:
        parser.error("--repeats must be at least 3")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    only = names(args.only, MEASURES, "--only")
    engines = names(args.engines, ENGINES, "--engines")

    # Load every engine's libraries first: threadpoolctl limits only what is loaded.
    for module in ("torch", "sklearn.neural_network"):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    from threadpoolctl import threadpool_limits
    threadpool_limits(args.threads)
    gd.set_num_threads(args.threads)
    with contextlib.suppress(ImportError):
        importlib.import_module("torch").set_num_threads(args.threads)

    def log(line: str) -> None:
        print(line, flush=True)

    info = machine_info()
    print_machine(info, args.threads)
    if "gdcore" in engines and not cpp_available():
        log("gdcore C++ core not built: skipped (the numpy column is gdcore's NumPy reference)")
    settle()
    gemm, gemm_spread = gemm_gflops(args.repeats)
    log(f"GEMM    : float32 {GEMM_SIZE}^3 with NumPy: {gemm:.1f} GFLOP/s (spread "
        f"{gemm_spread:.0%}{'!' if gemm_spread > NOISY else ''})\n")

    rows = []
    for name in only:
        if name in WORKLOADS:
            rows += run_workload(WORKLOADS[name], engines, args.repeats, log)
    per_call = predict_one(engines, args.repeats, log) if "predict-1" in only else {}
    memory = measure_memory(engines, args.threads, log) if "memory" in only else {}

    if rows:
        print_table(rows, gemm)
    print()
    print_predict(per_call)
    print_memory(memory)
    targets = evaluate(rows, per_call, memory, gemm)
    print_targets(targets)

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "threads": args.threads, "repeats": args.repeats,
                       "gemm_gflops": gemm, "epochs": [dataclasses.asdict(r) for r in rows],
                       "predict_1_seconds_per_call": per_call, "memory": memory,
                       "targets": [{**dataclasses.asdict(t), "verdict": t.verdict}
                                   for t in targets]}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
