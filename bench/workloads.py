"""The benchmark workloads, shared by the pytest benchmarks and ``compare.py``.

Each workload is a network shape, a loss, a batch size, a sample count and an SGD setting;
the data are synthetic float32 drawn from a fixed seed, and one epoch visits the samples in
order (no shuffling), so every engine sees the same batches in the same order.
"""
from __future__ import annotations

import dataclasses

import numpy as np

import gdcore as gd

SEED = 0
DTYPE = np.float32


@dataclasses.dataclass(frozen=True)
class Workload:
    """One training epoch to measure.

    ``sizes`` are the layer widths, inputs first; hidden layers use ``activation``, the last
    one ``output_activation``. The optimizer is ``SGD(lr, momentum)``.
    """

    name: str
    sizes: tuple
    activation: str
    output_activation: str
    loss: str
    batch_size: int
    n_samples: int
    lr: float = 0.01
    momentum: float = 0.0

    @property
    def n_inputs(self) -> int:
        return self.sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.sizes[-1]

    @property
    def multiply_adds(self) -> int:
        """Weight multiply-adds of one forward pass of one sample: ``sum(n_in * n_out)``."""
        return sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    @property
    def train_flops_per_sample(self) -> int:
        """FLOPs of one training sample: 2 per multiply-add forward, 4 backward (dW and dA)."""
        return 6 * self.multiply_adds

    @property
    def n_parameters(self) -> int:
        return sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    def data(self, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
        """``(X, y)``: X float32 ``(n_samples, n_inputs)``; y the labels of a random teacher.

        For ``bce`` (one sigmoid output) y is float32 0/1 ``(n_samples,)``; for
        ``cross_entropy`` y is int64 class indices ``(n_samples,)``.
        """
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((self.n_samples, self.n_inputs), dtype=DTYPE)
        teacher = rng.standard_normal((self.n_inputs, max(self.n_outputs, 2)), dtype=DTYPE)
        scores = X @ teacher
        if self.loss == "bce":
            return X, (scores[:, 0] > scores[:, 1]).astype(DTYPE)
        return X, scores.argmax(axis=1).astype(np.int64)

    def network(self, seed: int = SEED) -> gd.Network:
        """The float32 network, on the backend in force (``gd.set_backend``)."""
        return gd.Network.from_sizes(list(self.sizes), activation=self.activation,
                                     output_activation=self.output_activation,
                                     loss=self.loss, dtype="float32", seed=seed)

    def optimizer(self) -> gd.SGD:
        """A fresh optimizer (zero state)."""
        return gd.SGD(lr=self.lr, momentum=self.momentum)


WORKLOADS = {w.name: w for w in (
    Workload("tiny", (2, 16, 1), "tanh", "sigmoid", "bce", batch_size=32, n_samples=2048),
    Workload("small", (64, 128, 10), "relu", "softmax", "cross_entropy", batch_size=32,
             n_samples=1797, momentum=0.9),
    Workload("medium", (784, 256, 128, 10), "relu", "softmax", "cross_entropy",
             batch_size=128, n_samples=20000, momentum=0.9),
    Workload("large", (1024, 2048, 2048, 10), "relu", "softmax", "cross_entropy",
             batch_size=512, n_samples=8192),
)}

#: predict-1 runs ``forward`` on one row with the network of this workload.
PREDICT_WORKLOAD = "small"


def use_backend(name: str) -> bool:
    """Switch gdcore to backend ``name`` for new networks; False if it is not available."""
    try:
        gd.set_backend(name)
    except RuntimeError:
        return False
    return True


def cpp_available() -> bool:
    """Whether the compiled core with its engines is installed (``set_backend("cpp")``
    accepts it); the backend in force is left as it was."""
    previous = gd.backend()
    try:
        gd.set_backend("cpp")
    except RuntimeError:
        return False
    finally:
        gd.set_backend(previous)
    return True


def snapshot(network: gd.Network) -> list[np.ndarray]:
    """Copies of the network's parameters (W0, b0, W1, b1, ...)."""
    return [p.copy() for p in network.parameters()]


def restore(network: gd.Network, saved: list[np.ndarray]) -> None:
    """Write ``saved`` back into the network's parameter buffers (the engine keeps views)."""
    for p, s in zip(network.parameters(), saved):
        np.copyto(p, s)
