"""compare.py's output: the tables on stdout and the JSON file."""
from __future__ import annotations

import dataclasses
import json

from measurement import GEMM_SIZE, MiB, OPENBLAS_OVERRIDES, Row, memory_budget
from targets import Results, Target
from workloads import WORKLOADS

#: Repetitions that disagree by more than this fraction of their median are flagged.
NOISY = 0.25


def noisy(spread: float) -> str:
    return "!" if spread > NOISY else ""


def print_machine(info: dict, threads: int) -> None:
    v = info["versions"]
    print(f"machine : {info['cpu']}, {info['cores']} cores available; {info['platform']}")
    print(f"versions: python {v['python']}, numpy {v['numpy']}, torch {v['torch']}, "
          f"scikit-learn {v['sklearn']}, jax {v.get('jax')}, gdcore {v['gdcore']}")
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


def gemm_line(gemm: float, spread: float) -> str:
    return (f"GEMM    : float32 {GEMM_SIZE}^3 with NumPy: {gemm:.1f} GFLOP/s (spread "
            f"{spread:.0%}{noisy(spread)})\n")


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
              f"{noisy(r.spread) or ' '}{bare} {w.n_samples / r.seconds:11.0f} "
              f"{gflops:8.1f} {vs} {gflops / gemm:8.1%} {r.loss:9.5f}")
    print("epoch: median fit(epochs=1) (torch: its loop, sklearn: partial_fit, jax: one jit "
          "function, lax.scan over the batches, compiled in the warm-up); spread: "
          f"(max - min) / median, '!' above {NOISY:.0%} (noisy: rerun on an idle machine); "
          "engine: net.train_epoch, the engine call fit makes per epoch (no history, no "
          "divergence check); GFLOP/s: 6 x sum(n_in*n_out) per sample; "
          "loss: the epoch's loss, the same on every engine when they compute the same thing")


def print_predict(per_call: dict) -> None:
    gdcore = per_call.get("gdcore", {}).get("seconds")
    for engine, m in per_call.items():
        vs = f"{m['seconds'] / gdcore:8.2f} x gdcore" if gdcore else ""
        print(f"predict-1 {engine:8s} {m['seconds'] * 1e6:9.2f} us/call (spread "
              f"{m['spread']:.0%}{noisy(m['spread'])}) {vs}")


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


def print_report(results: Results, targets: list[Target]) -> None:
    """Everything after the measurements: the epoch table, predict-1, memory, the targets."""
    if results.rows:
        print_table(results.rows, results.gemm)
    print()
    print_predict(results.predict)
    print_memory(results.memory)
    print_targets(targets)


def write_json(path: str, info: dict, threads: int, repeats: int, results: Results,
               targets: list[Target]) -> None:
    with open(path, "w") as f:
        json.dump({"machine": info, "threads": threads, "repeats": repeats,
                   "gemm_gflops": results.gemm,
                   "epochs": [dataclasses.asdict(r) for r in results.rows],
                   "predict_1_seconds_per_call": results.predict, "memory": results.memory,
                   "targets": [{**dataclasses.asdict(t), "verdict": t.verdict}
                               for t in targets]}, f, indent=2)
