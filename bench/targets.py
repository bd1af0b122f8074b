"""The performance targets compare.py checks, as a table: (name, measure, threshold).

A measure takes the :class:`Results` of a run and returns the value to compare with the
threshold, or None when the run did not measure what it needs (then the verdict is SKIP).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

from measurement import memory_budget
from workloads import WORKLOADS


@dataclasses.dataclass
class Results:
    """What one run of compare.py measured."""

    rows: list            # measurement.Row per (workload, engine)
    predict: dict         # engine -> {"seconds", "spread"} per predict-1 call
    memory: dict          # engine -> memory_probe's dict
    gemm: float           # NumPy's float32 GEMM rate, GFLOP/s

    def seconds(self, workload: str, engine: str) -> Optional[float]:
        return next((r.seconds for r in self.rows
                     if r.workload == workload and r.engine == engine), None)


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


# --- measures --------------------------------------------------------------------------------

def slower_than_gdcore(workload: str, peer: str) -> Callable[[Results], Optional[float]]:
    """The peer's epoch time over gdcore's on ``workload``."""
    def measure(r: Results) -> Optional[float]:
        gdcore, other = r.seconds(workload, "gdcore"), r.seconds(workload, peer)
        return other / gdcore if gdcore and other else None
    return measure


def large_gemm_fraction(r: Results) -> Optional[float]:
    """gdcore's GFLOP/s on the large epoch over NumPy's GEMM rate."""
    large = WORKLOADS["large"]
    seconds = r.seconds("large", "gdcore")
    if not seconds:
        return None
    return large.train_flops_per_sample * large.n_samples / seconds / 1e9 / r.gemm


def predict_ratio(r: Results) -> Optional[float]:
    if "torch" in r.predict and "gdcore" in r.predict:
        return r.predict["torch"]["seconds"] / r.predict["gdcore"]["seconds"]
    return None


def memory_fraction(r: Results) -> Optional[float]:
    mem = r.memory.get("gdcore")
    return None if mem is None else mem["used"] / memory_budget(mem)


#: (name, measure, threshold, at_most): the value must be >= threshold (<= with at_most).
TARGETS = [
    ("tiny: PyTorch / gdcore", slower_than_gdcore("tiny", "torch"), 200, False),
    ("tiny: NumPy reference / gdcore", slower_than_gdcore("tiny", "numpy"), 10, False),
    ("tiny: JAX (jit + scan) / gdcore", slower_than_gdcore("tiny", "jax"), 1, False),
    ("small: PyTorch / gdcore", slower_than_gdcore("small", "torch"), 25, False),
    ("small: scikit-learn / gdcore", slower_than_gdcore("small", "sklearn"), 12, False),
    ("small: JAX (jit + scan) / gdcore", slower_than_gdcore("small", "jax"), 1, False),
    ("medium: PyTorch / gdcore", slower_than_gdcore("medium", "torch"), 1.4, False),
    ("medium: JAX (jit + scan) / gdcore", slower_than_gdcore("medium", "jax"), 1, False),
    ("large: PyTorch / gdcore", slower_than_gdcore("large", "torch"), 0.95, False),
    ("large: JAX (jit + scan) / gdcore", slower_than_gdcore("large", "jax"), 0.95, False),
    ("large: gdcore GFLOP/s / GEMM rate", large_gemm_fraction, 0.95, False),
    ("predict-1: PyTorch / gdcore per call", predict_ratio, 25, False),
    ("medium fit: memory used / budget", memory_fraction, 1.0, True),
]


def evaluate(results: Results) -> list[Target]:
    return [Target(name, measure(results), threshold, at_most)
            for name, measure, threshold, at_most in TARGETS]
