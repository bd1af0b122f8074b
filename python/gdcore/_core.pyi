"""Type stub of gdcore's compiled core (csrc/bindings). The engine contract is docs/design.md."""
from typing import Any, Optional, Sequence

import numpy as np

def build_info() -> dict[str, Any]:
    """Compiler, flags, version and BLAS (configuration, CPU kernel, threads) of the build."""

def set_num_threads(n: int) -> None:
    """Set the number of threads the core's OpenBLAS uses (process-wide)."""

def get_num_threads() -> int:
    """The number of threads the core's OpenBLAS uses."""

def all_finite(a: np.ndarray) -> bool:
    """Whether every value of a C-contiguous float32/float64 array is finite."""

def dropout_mask(seed: int, step: int, layer: int, rate: float, rows: int, cols: int,
                 dtype: Any = "float64") -> np.ndarray:
    """The dropout mask (rows, cols) of (seed, step, layer): 1 / (1 - rate) where kept, else 0."""

def descend(function: int, data: int, x0: np.ndarray, lrs: np.ndarray, momentum: float,
            max_iter: int, tol: float) -> list[tuple[int, int, float, float, float, int,
                                                     np.ndarray, np.ndarray]]:
    """One heavy-ball descent per rate of lrs from x0 over the C function at address
    `function` (gd.minimize's compiled path): (status, nit, fun, grad_norm, limit, unfilled,
    x, path) per rate."""

def _kernel_isas() -> list[str]: ...
def _set_kernel_isa(isa: str) -> None: ...
def _split_counts() -> dict[str, int]: ...
def _lane_epochs() -> int: ...

_C_API: Any
"""The C API's function table (PyCapsule "gdcore._core._C_API"; gdcore/capi.h)."""

class _Engine:
    def __init__(self, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                 activations: Sequence[int], loss: int) -> None: ...
    @property
    def n_inputs(self) -> int: ...
    @property
    def n_outputs(self) -> int: ...
    @property
    def n_layers(self) -> int: ...
    @property
    def loss_code(self) -> int: ...
    @property
    def activations(self) -> list[int]: ...
    @property
    def weights(self) -> list[np.ndarray]: ...
    @property
    def biases(self) -> list[np.ndarray]: ...
    @property
    def dtype(self) -> np.dtype: ...
    def forward(self, X: np.ndarray) -> np.ndarray:
        """Output activations (n_samples, n_outputs) for X of shape (n_samples, n_inputs)."""
    def predict(self, X: Any) -> np.ndarray:
        """forward for any input: ready arrays directly, the rest through the converter."""
    def loss(self, X: np.ndarray, Y: np.ndarray, sample_weight: Optional[np.ndarray],
             l2: float = 0.0, label_smoothing: float = 0.0,
             dropout: Optional[np.ndarray] = None, dropout_seed: int = 0,
             dropout_step: int = 0) -> float:
        """The mean loss sum_j(w_j l_j) / sum_j(w_j) plus the l2 penalty (the objective)."""
    def gradients(self, X: np.ndarray, Y: np.ndarray, sample_weight: Optional[np.ndarray],
                  dW: Sequence[np.ndarray], db: Sequence[np.ndarray], l2: float = 0.0,
                  label_smoothing: float = 0.0, dropout: Optional[np.ndarray] = None,
                  dropout_seed: int = 0, dropout_step: int = 0) -> float:
        """Fill dW[i], db[i] in place with the gradient of loss(X, Y, sample_weight, ...)."""
    def train_epoch(self, X: np.ndarray, Y: np.ndarray, sample_weight: Optional[np.ndarray],
                    order: np.ndarray, batch_size: int, optimizer: int, hyper: np.ndarray,
                    state: Sequence[np.ndarray], step: np.ndarray, l2: float = 0.0,
                    label_smoothing: float = 0.0, dropout: Optional[np.ndarray] = None,
                    dropout_seed: int = 0) -> float:
        """One epoch over the batches of `order`; parameters, state and step change in place."""
    @staticmethod
    def train_epoch_many(jobs: Sequence[tuple], n_threads: int = 1) -> list[float]:
        """train_epoch on several distinct engines of this class in one call: each job is
        (engine, <train_epoch's 13 arguments>); the networks interleaved batch by batch, split
        over up to n_threads threads, each exactly as its own train_epoch. The epoch losses."""
    def lbfgs_step(self, X: np.ndarray, Y: np.ndarray, sample_weight: Optional[np.ndarray],
                   config: np.ndarray, state: Sequence[np.ndarray], run: np.ndarray,
                   step: np.ndarray, l2: float = 0.0, label_smoothing: float = 0.0) -> float:
        """One L-BFGS step on the full batch; parameters, state, run and step change in place.
        Returns the objective (with l2 and label smoothing) where the step started."""
    def _lock_parameters(self) -> None:
        """Hold the parameters exclusively, for Python code writing them in place (the C API's
        GIL-free forwards wait); no call on this engine until _unlock_parameters()."""
    def _unlock_parameters(self) -> None: ...

class EngineF32(_Engine): ...
class EngineF64(_Engine): ...
