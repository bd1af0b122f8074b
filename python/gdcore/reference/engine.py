"""``Engine``: the NumPy engine of one network, with the interface of ``docs/design.md``.

It keeps views of the caller's weight and bias arrays (never copies, never rebinds them) and
updates everything in place, exactly like the C++ ``EngineF32``/``EngineF64``. The public layer
validates user input; the cheap checks here only make sure that a bad shape or dtype raises
``ValueError``/``TypeError`` instead of a confusing NumPy error or a silent broadcast.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator, Optional, Sequence

import numpy as np

from .codes import (ACTIVATION_NAMES, ACTIVATIONS, LOSS_NAMES, LOSS_OUTPUT_ACTIVATION, LOSSES,
                    OPTIMIZER_NAMES)
from .losses import loss_gradient, loss_value
from .network import Network
from .optimizers import OptimizerConfig
from . import train

# Non-finite results of a diverging network are returned, not warned about (as in C++).
_QUIET = dict(over="ignore", invalid="ignore", divide="ignore")

# The compiled engine's messages for a call made while another is running (bind_engine.cpp).
BUSY = ("this engine is already running a call (from another thread, or re-entrantly); an "
        "engine runs one call at a time")
PREDICT_IN_CALL = ("predict cannot run in the middle of a call that trains or evaluates this "
                   "network (a signal handler or callback of fit, loss or gradients, on the "
                   "same thread); call it after that call returns")


def _check(name: str, a, dtype, shape: tuple) -> None:
    """TypeError unless ``a`` is an ndarray of ``dtype``; ValueError unless its shape matches
    ``shape`` (``None`` entries match any length)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {a.dtype}")
    if a.ndim != len(shape) or any(s is not None and s != t for s, t in zip(shape, a.shape)):
        expected = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {expected}, got {a.shape}")


class Engine:
    """NumPy engine over the caller's parameter arrays.

    Parameters
    ----------
    weights : list of ndarray
        ``weights[i]`` of shape (n_in_i, n_out_i), C-contiguous, all float32 or all float64
        (the engine's dtype T); ``n_in_{i+1} == n_out_i``.
    biases : list of ndarray
        ``biases[i]`` of shape (n_out_i,), dtype T, C-contiguous.
    activations : list of int
        Activation code of each layer (``codes.ACTIVATIONS``).
    loss : int
        Loss code (``codes.LOSSES``); bce needs a sigmoid output, cross_entropy a softmax one.
    """

    def __init__(self, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                 activations: Sequence[int], loss: int) -> None:
        if not (len(weights) == len(biases) == len(activations) >= 1):
            raise ValueError("weights, biases and activations must be non-empty lists of "
                             f"equal length, got {len(weights)}, {len(biases)}, "
                             f"{len(activations)}")
        dtype = getattr(weights[0], "dtype", None)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"weights must be float32 or float64, got {dtype}")
        for i, (W, b) in enumerate(zip(weights, biases)):
            n_in = None if i == 0 else weights[i - 1].shape[1]
            _check(f"weights[{i}]", W, dtype, (n_in, None))
            _check(f"biases[{i}]", b, dtype, (W.shape[1],))
            if not (W.flags.c_contiguous and b.flags.c_contiguous):
                raise ValueError(f"weights[{i}] and biases[{i}] must be C-contiguous")
        for i, act in enumerate(activations):
            if act not in ACTIVATION_NAMES:
                raise ValueError(f"activations[{i}]: unknown activation code {act!r}")
        if loss not in LOSS_NAMES:
            raise ValueError(f"unknown loss code {loss!r}")
        needed = LOSS_OUTPUT_ACTIVATION.get(LOSS_NAMES[loss])
        if needed is not None and activations[-1] != ACTIVATIONS[needed]:
            raise ValueError(f"loss {LOSS_NAMES[loss]!r} needs a "
                             f"{needed!r} output layer")

        self.weights = list(weights)  # a new list of the *same* arrays: views, not copies
        self.biases = list(biases)
        self.activations = [int(a) for a in activations]
        self.loss_code = int(loss)
        self.dtype = np.dtype(dtype)
        # the network over the same arrays; it owns train_epoch's gradient buffers
        self.network = Network.from_arrays(self.weights, self.biases, self.activations,
                                           self.loss_code)
        # The thread inside loss / gradients / train_epoch: a Python signal handler can run in
        # the middle of one (between any two bytecodes), on that thread. As the compiled
        # engine, refuse its calls on this engine rather than read half-updated weights.
        self._running: Optional[int] = None

    @contextlib.contextmanager
    def _one_call(self) -> Iterator[None]:
        if self._running is not None:
            raise RuntimeError(BUSY)
        self._running = threading.get_ident()
        try:
            yield
        finally:
            self._running = None

    @property
    def n_inputs(self) -> int:
        return self.weights[0].shape[0]

    @property
    def n_outputs(self) -> int:
        return self.weights[-1].shape[1]

    def __repr__(self) -> str:
        layers = ", ".join(f"{W.shape[0]}->{W.shape[1]} {ACTIVATION_NAMES[a]}"
                           for W, a in zip(self.weights, self.activations))
        return f"Engine([{layers}], loss={LOSS_NAMES[self.loss_code]!r}, dtype={self.dtype})"

    # ------------------------------------------------------------------------ checks

    def _check_X(self, X) -> None:
        _check("X", X, self.dtype, (None, self.n_inputs))

    def _check_Y(self, Y, n_samples: int) -> None:
        if (self.loss_code == LOSSES["cross_entropy"] and isinstance(Y, np.ndarray)
                and Y.ndim == 1):
            if not np.issubdtype(Y.dtype, np.integer):
                raise TypeError(f"class indices Y must be integers, got {Y.dtype}")
            _check("Y", Y, Y.dtype, (n_samples,))
            if n_samples and (Y.min() < 0 or Y.max() >= self.n_outputs):
                raise ValueError(f"class indices Y must be in [0, {self.n_outputs})")
        else:
            _check("Y", Y, self.dtype, (n_samples, self.n_outputs))

    def _check_sample_weight(self, sample_weight, n_samples: int) -> None:
        if sample_weight is not None:
            _check("sample_weight", sample_weight, self.dtype, (n_samples,))

    def _check_data(self, X, Y, sample_weight) -> None:
        self._check_X(X)
        self._check_Y(Y, X.shape[0])
        self._check_sample_weight(sample_weight, X.shape[0])

    # ------------------------------------------------------------------------ interface

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Output activations, shape (n_samples, n_outputs), for X of shape (n_samples, n_inputs)."""
        if self._running == threading.get_ident():
            raise RuntimeError(PREDICT_IN_CALL)
        self._check_X(X)
        with np.errstate(**_QUIET):
            return self.network.predict(X)

    def loss(self, X: np.ndarray, Y: np.ndarray,
             sample_weight: Optional[np.ndarray] = None) -> float:
        """The mean loss ``sum_j(w_j l_j) / sum_j(w_j)`` over the rows of X, computed in T."""
        self._check_data(X, Y, sample_weight)
        with self._one_call(), np.errstate(**_QUIET):
            self.network.forward(X, output_activation=True)
            return loss_value(self.loss_code, self.network.output_logits(),
                              self.network.output_activations(), Y, sample_weight)

    def gradients(self, X: np.ndarray, Y: np.ndarray, sample_weight: Optional[np.ndarray],
                  dW: Sequence[np.ndarray], db: Sequence[np.ndarray]) -> float:
        """Fill ``dW[i]``, ``db[i]`` in place with the gradient of ``loss(X, Y, sample_weight)``.

        Parameters
        ----------
        X, Y, sample_weight : as :meth:`loss`
        dW : list of ndarray, shapes of ``weights[i]``, dtype T
        db : list of ndarray, shapes of ``biases[i]``, dtype T

        Returns
        -------
        float
            The loss.
        """
        self._check_data(X, Y, sample_weight)
        if len(dW) != len(self.weights) or len(db) != len(self.biases):
            raise ValueError(f"dW and db must hold {len(self.weights)} arrays each")
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            _check(f"dW[{i}]", dW[i], self.dtype, W.shape)
            _check(f"db[{i}]", db[i], self.dtype, b.shape)
        with self._one_call(), np.errstate(**_QUIET):
            self.network.forward(X, output_activation=False)
            value, dZ = loss_gradient(self.loss_code, self.activations[-1],
                                      self.network.output_logits(),
                                      self.network.output_activations(), Y, sample_weight)
            self.network.backward(X, dZ, dW, db)
        return value

    def train_epoch(self, X: np.ndarray, Y: np.ndarray, sample_weight: Optional[np.ndarray],
                    order: np.ndarray, batch_size: int, optimizer: int, hyper: np.ndarray,
                    state: Sequence[np.ndarray], step: np.ndarray) -> float:
        """One epoch of mini-batch training, in place; returns the epoch loss.

        See :func:`gdcore.reference.train.train_epoch` and ``docs/design.md`` for the arguments
        (``order`` int64 (m,), ``hyper`` float64 (8,), ``state`` the flat slot list, ``step``
        int64 (1,)).
        """
        self._check_data(X, Y, sample_weight)
        if not isinstance(order, np.ndarray) or not np.issubdtype(order.dtype, np.integer):
            raise TypeError("order must be an integer numpy array")
        _check("order", order, order.dtype, (None,))
        if len(order) == 0 or order.min() < 0 or order.max() >= X.shape[0]:
            raise ValueError(f"order must be non-empty with indices in [0, {X.shape[0]})")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if optimizer not in OPTIMIZER_NAMES:
            raise ValueError(f"unknown optimizer code {optimizer!r}")
        _check("hyper", hyper, np.float64, (8,))
        params = [p for W, b in zip(self.weights, self.biases) for p in (W, b)]
        config = OptimizerConfig.from_hyper(optimizer, hyper)
        slots = config.n_slots()
        if len(state) != slots * len(params):
            raise ValueError(f"state must hold {slots * len(params)} arrays "
                             f"({slots} per parameter), got {len(state)}")
        for k, s in enumerate(state):
            _check(f"state[{k}]", s, self.dtype, params[k // slots].shape)
        _check("step", step, np.int64, (1,))
        with self._one_call():
            return train.train_epoch(self.network, X, Y, sample_weight, order,
                                     int(batch_size), config, state, step)
