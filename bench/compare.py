#!/usr/bin/env python
"""gdcore against its NumPy reference, PyTorch, scikit-learn and JAX on the benchmark workloads.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/compare.py \\
        [--repeats N] [--rounds R] [--threads T] \\
        [--only tiny,small,medium,large,predict-1,memory] \\
        [--engines gdcore,numpy,torch,sklearn,jax] [--kernels auto|avx512|avx2|x86-64]
        [--json out.json]

Everything runs in this one process (the memory probe in a fresh child), with the same thread
count for every engine. An epoch is timed as the user calls it: ``net.fit(X, y, optimizer=...,
epochs=1, batch_size=bs, shuffle=False)`` from the same initial weights and a fresh optimizer
each repetition; the "engine" column is ``net.train_epoch(X, y, optimizer, batch_size=bs)``,
the engine call fit makes per epoch without its history and divergence check, so the
difference is fit's own work. JAX runs the whole epoch as one ``jit`` function (``lax.scan``
over the batches), compiled in the warm-up run, so compilation is not timed. Each time is the
median of at least ``--repeats`` runs after one warm-up run; short epochs run until the timed
runs add up to 0.25 s (at most 1000 runs), by the same rule for every engine. The engines take
turns: ``--rounds`` rounds (3 by default), each timing a block of every engine in order, so that
the machine's speed drifting between minutes (these VMs drift by up to 2x) meets every engine
alike instead of one block each. Engines that are not installed are reported as skipped.

The pieces: ``engines.py`` (one adapter per engine), ``measurement.py`` (timing, memory, the
machine), ``targets.py`` (the table of targets), ``report.py`` (printing and JSON).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from engines import ENGINES, load_libraries  # noqa: E402
from measurement import (ROUNDS, gemm_gflops, machine_info, measure_memory,  # noqa: E402
                         memory_probe, predict_one, run_workload, settle)
from report import gemm_line, print_machine, print_report, write_json  # noqa: E402
from targets import Results, evaluate  # noqa: E402
from workloads import WORKLOADS, cpp_available  # noqa: E402

MEASURES = (*WORKLOADS, "predict-1", "memory")


def names(text: str, allowed: tuple, option: str) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in allowed]
    if unknown:
        raise SystemExit(f"{option}: unknown {unknown}; choose from {', '.join(allowed)}")
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5,
                        help="repetitions per median (3 or more for figures worth quoting)")
    parser.add_argument("--rounds", type=int, default=ROUNDS,
                        help="rounds in which the engines take turns (at most --repeats)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every engine")
    parser.add_argument("--only", default=",".join(MEASURES),
                        help=f"comma-separated subset of {','.join(MEASURES)}")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help=f"comma-separated subset of {','.join(ENGINES)}")
    parser.add_argument("--kernels", default="auto",
                        help="gdcore's own kernels: auto (the best this CPU runs), avx512, avx2 "
                             "or x86-64 (to measure another machine kind's code path; set "
                             "OPENBLAS_CORETYPE=Haswell as well for AVX2's OpenBLAS kernels)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--memory-probe", choices=("cpp", "numpy"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe, args.threads)))
        return 0
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    only = names(args.only, MEASURES, "--only")
    engines = names(args.engines, ENGINES, "--engines")
    if args.kernels != "auto":
        from gdcore import _core
        if args.kernels not in _core._kernel_isas():
            parser.error(f"--kernels {args.kernels}: this CPU runs {_core._kernel_isas()}")
        _core._set_kernel_isa(args.kernels)
    load_libraries(args.threads)

    def log(line: str) -> None:
        print(line, flush=True)

    info = machine_info()
    print_machine(info, args.threads)
    if "gdcore" in engines and not cpp_available():
        log("gdcore C++ core not built: skipped (the numpy column is gdcore's NumPy reference)")
    settle()
    gemm, gemm_spread = gemm_gflops(args.repeats)
    log(gemm_line(gemm, gemm_spread))

    rows = []
    for name in only:
        if name in WORKLOADS:
            rows += run_workload(WORKLOADS[name], engines, args.repeats, log, args.rounds)
    per_call = (predict_one(engines, args.repeats, log, args.rounds) if "predict-1" in only
                else {})
    memory = measure_memory(engines, args.threads, log) if "memory" in only else {}

    results = Results(rows, per_call, memory, gemm)
    targets = evaluate(results)
    print_report(results, targets)
    if args.json:
        write_json(args.json, info, args.threads, args.repeats, results, targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
