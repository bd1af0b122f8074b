"""``Engine``: the NumPy engine of one network, with the interface of ``docs/design.md``.

It keeps views of the caller's weight and bias arrays (never copies, never rebinds them) and
updates everything in place, exactly like the C++ ``EngineF32``/``EngineF64``: the twin of
``csrc/bindings/bind_engine.cpp``. The public layer validates user input; the checks here
(``checks.py``, the twin of the bindings' ``checks.hpp``) are the compiled engine's, with its
messages and error codes: only what keeps the array accesses right.
"""
from __future__ import annotations

import contextlib
import math
import threading
from typing import Iterator, Optional, Sequence

import numpy as np

from . import checks
from .checks import array_of, dim, fail
from .codes import (ACTIVATION_NAMES, ACTIVATIONS, HYPER, LBFGS_CONFIG, LBFGS_RUN, LOSS_NAMES,
                    LOSSES, OPTIMIZER_NAMES, OPTIMIZERS)
from .lbfgs import LbfgsConfig, lbfgs_step
from .network import Network
from .objective import Regularisers, objective_gradient, objective_value
from .optimizers import OptimizerConfig
from . import train

# Non-finite results of a diverging network are returned, not warned about (as in C++).
_QUIET = dict(over="ignore", invalid="ignore", divide="ignore")

# The largest history_size lbfgs_step takes (bind_engine.cpp's max_history_size).
MAX_HISTORY_SIZE = 100000

# The compiled engine's messages for a call made while another is running (bind_engine.cpp).
BUSY = ("this engine is already running a call (from another thread, or re-entrantly); an "
        "engine runs one call at a time")
PREDICT_IN_CALL = ("predict cannot run in the middle of a call that trains or evaluates this "
                   "network (a signal handler or callback of fit, loss or gradients, on the "
                   "same thread); call it after that call returns")


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
    dtype : float32 or float64, optional
        T, as the choice between ``EngineF32`` and ``EngineF64``; that of ``weights[0]`` by
        default.
    """

    def __init__(self, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                 activations: Sequence[int], loss: int, dtype: Optional[np.dtype] = None) -> None:
        w_items = checks.items(weights, "weights")
        b_items = checks.items(biases, "biases")
        a_items = checks.items(activations, "activations")
        if not w_items:
            fail("shape", "weights must hold at least one array")
        if not len(b_items) == len(a_items) == len(w_items):
            fail("shape", "weights, biases and activations must have the same length, got "
                          f"{len(w_items)}, {len(b_items)} and {len(a_items)}")
        loss = checks.code_in(loss, "loss", "a loss code", len(LOSSES))
        # T: as EngineF32 / EngineF64, or that of weights[0] when not given.
        if dtype is None:
            dtype = getattr(w_items[0], "dtype", np.dtype(np.float64))
            dtype = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)
        dtype = np.dtype(dtype)
        codes = []
        for i, (W, b, act) in enumerate(zip(w_items, b_items, a_items)):
            wname = f"weights[{i}]"
            array_of(W, wname, dtype, 2, "(n_inputs, n_outputs)", writeable=True)
            n_in, n_out = W.shape
            if n_in < 1 or n_out < 1:
                fail("shape", f"{wname} must have at least one row and one column, got shape "
                              f"{checks.shape_of(W)}")
            if i > 0 and n_in != w_items[i - 1].shape[1]:
                fail("shape", f"{wname} must have {w_items[i - 1].shape[1]} rows, the outputs "
                              f"of weights[{i - 1}], got shape {checks.shape_of(W)}")
            bname, bshape = f"biases[{i}]", f"({n_out},)"
            array_of(b, bname, dtype, 1, bshape, writeable=True)
            dim(b, 0, n_out, bname, bshape)
            codes.append(checks.code_in(act, f"activations[{i}]", "an activation code",
                                        len(ACTIVATIONS)))
        weights, biases, activations = w_items, b_items, codes
        self.weights = list(weights)  # a new list of the *same* arrays: views, not copies
        self.biases = list(biases)
        self.activations = [int(a) for a in activations]
        self.loss_code = int(loss)
        self.dtype = np.dtype(dtype)
        # the network over the same arrays; it owns train_epoch's gradient buffers
        try:  # the network checks its structure, as gd::Network does
            self.network = Network.from_arrays(self.weights, self.biases, self.activations,
                                               self.loss_code)
        except ValueError as error:
            fail("structure", str(error))
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

    def _check_x(self, X, min_rows: int) -> np.ndarray:
        shape = f"(n_samples, {self.n_inputs})"
        x = array_of(X, "X", self.dtype, 2, shape)
        dim(x, 1, self.n_inputs, "X", shape)
        if x.shape[0] < min_rows:
            fail("shape", f"X must have at least one row, got shape {checks.shape_of(x)}")
        return x

    def _check_data(self, X, Y, sample_weight) -> None:
        """X, Y and sample_weight of loss / gradients / train_epoch."""
        n = self._check_x(X, 1).shape[0]
        k = self.n_outputs
        dense_shape = f"({n}, {k})"
        cross_entropy = self.loss_code == LOSSES["cross_entropy"]
        if cross_entropy and isinstance(Y, np.ndarray) and Y.dtype == np.int64 \
                and Y.dtype.isnative:
            shape = f"({n},)"
            array_of(Y, "Y", np.int64, 1, shape)
            dim(Y, 0, n, "Y", shape)
            bad = np.flatnonzero((Y < 0) | (Y >= k))
            if bad.size:
                fail("index", f"Y must hold class indices in [0, {k}), got {Y[bad[0]]} at row "
                              f"{bad[0]}")
        else:
            if cross_entropy and isinstance(Y, np.ndarray) and Y.dtype != self.dtype:
                fail("dtype", f"Y must be int64 class indices of shape ({n},) or a "
                              f"{self.dtype.name} array of shape {dense_shape}, got dtype "
                              f"{Y.dtype}")
            array_of(Y, "Y", self.dtype, 2, dense_shape)
            dim(Y, 0, n, "Y", dense_shape)
            dim(Y, 1, k, "Y", dense_shape)
        if sample_weight is not None:
            shape = f"({n},)"
            array_of(sample_weight, "sample_weight", self.dtype, 1, shape)
            dim(sample_weight, 0, n, "sample_weight", shape)

    def _check_like_parameters(self, arrays, name: str, weights: bool) -> None:
        """dW (weights) or db: a list of writeable arrays in the shapes of the parameters."""
        items = checks.items(arrays, name)
        if len(items) != len(self.weights):
            fail("shape", f"{name} must hold {len(self.weights)} arrays, got {len(items)}")
        for i, a in enumerate(items):
            self._check_parameter_shaped(a, f"{name}[{i}]", i, weights)

    def _check_parameter_shaped(self, a, item: str, layer: int, weights: bool) -> None:
        """A writeable C-contiguous T array of the shape of layer's weights or bias."""
        W = self.weights[layer]
        shape = checks.shape_of(W) if weights else f"({W.shape[1]},)"
        array_of(a, item, self.dtype, 2 if weights else 1, shape, writeable=True)
        if weights:
            dim(a, 0, W.shape[0], item, shape)
        dim(a, 1 if weights else 0, W.shape[1], item, shape)

    def _regularisers(self, l2: float, label_smoothing: float, dropout,
                      dropout_seed: int) -> Regularisers:
        """The regularisers of a call: l2 and label_smoothing as given (their values are the
        caller's to check), ``dropout`` None or float64 of shape (n_layers,)."""
        if dropout is not None:
            shape = f"({len(self.weights)},)"
            array_of(dropout, "dropout", np.float64, 1, shape)
            dim(dropout, 0, len(self.weights), "dropout", shape)
        return Regularisers(float(l2), float(label_smoothing), dropout, int(dropout_seed))

    # ------------------------------------------------------------------------ interface

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Output activations, shape (n_samples, n_outputs), for X of shape (n_samples, n_inputs)."""
        if self._running == threading.get_ident():
            raise RuntimeError(PREDICT_IN_CALL)
        self._check_x(X, 0)
        with np.errstate(**_QUIET):
            return self.network.predict(X)

    def loss(self, X: np.ndarray, Y: np.ndarray, sample_weight: Optional[np.ndarray] = None,
             l2: float = 0.0, label_smoothing: float = 0.0, dropout=None,
             dropout_seed: int = 0, dropout_step: int = 0) -> float:
        """The mean loss ``sum_j(w_j l_j) / sum_j(w_j)`` over the rows of X, computed in T,
        plus the l2 penalty ``0.5 l2 sum_i ||W_i||^2 / sum_j(w_j)``.

        ``label_smoothing`` smooths cross_entropy and bce targets (torch's formula);
        ``dropout`` (None or float64 rates per layer) applies the masks of ``(dropout_seed,
        dropout_step)`` as training does (``objective.objective_value``). Values unchecked.
        """
        self._check_data(X, Y, sample_weight)
        reg = self._regularisers(l2, label_smoothing, dropout, dropout_seed)
        with self._one_call(), np.errstate(**_QUIET):
            return objective_value(self.network, X, Y, sample_weight, reg, int(dropout_step))

    def gradients(self, X: np.ndarray, Y: np.ndarray, sample_weight: Optional[np.ndarray],
                  dW: Sequence[np.ndarray], db: Sequence[np.ndarray], l2: float = 0.0,
                  label_smoothing: float = 0.0, dropout=None, dropout_seed: int = 0,
                  dropout_step: int = 0) -> float:
        """Fill ``dW[i]``, ``db[i]`` in place with the gradient of ``loss(X, Y, sample_weight,
        l2, label_smoothing, dropout, dropout_seed, dropout_step)``.

        Parameters
        ----------
        X, Y, sample_weight, l2, label_smoothing, dropout, dropout_seed, dropout_step :
            as :meth:`loss`
        dW : list of ndarray, shapes of ``weights[i]``, dtype T
        db : list of ndarray, shapes of ``biases[i]``, dtype T

        Returns
        -------
        float
            The loss.
        """
        self._check_data(X, Y, sample_weight)
        self._check_like_parameters(dW, "dW", True)
        self._check_like_parameters(db, "db", False)
        reg = self._regularisers(l2, label_smoothing, dropout, dropout_seed)
        with self._one_call(), np.errstate(**_QUIET):
            return objective_gradient(self.network, X, Y, sample_weight, reg,
                                      int(dropout_step), dW, db)

    def train_epoch(self, X: np.ndarray, Y: np.ndarray, sample_weight: Optional[np.ndarray],
                    order: np.ndarray, batch_size: int, optimizer: int, hyper: np.ndarray,
                    state: Sequence[np.ndarray], step: np.ndarray, l2: float = 0.0,
                    label_smoothing: float = 0.0, dropout=None, dropout_seed: int = 0) -> float:
        """One epoch of mini-batch training, in place; returns the epoch loss.

        See :func:`gdcore.reference.train.train_epoch` and ``docs/design.md`` for the arguments
        (``order`` int64 (m,), ``hyper`` float64 (12,), ``state`` the flat slot list, ``step``
        int64 (1,); ``l2``, ``label_smoothing``, ``dropout``, ``dropout_seed`` as
        :meth:`loss`: each batch's loss includes the l2 penalty over its weight sum, its
        dropout masks are those of step ``step[0] + 1``).
        """
        config, items, reg = self._check_epoch(X, Y, sample_weight, order, batch_size,
                                               optimizer, hyper, state, step, l2,
                                               label_smoothing, dropout, dropout_seed)
        with self._one_call():
            return train.train_epoch(self.network, X, Y, sample_weight, order,
                                     batch_size, config, reg, items, step)

    @staticmethod
    def train_epoch_many(jobs: Sequence[tuple], n_threads: int = 1) -> list:
        """``train_epoch`` on several engines in one call, each network exactly as its own
        call, interleaved batch by batch (the twin of ``EngineF32/F64.train_epoch_many``).

        ``jobs``: a list of tuples ``(engine, X, Y, sample_weight, order, batch_size,
        optimizer, hyper, state, step, l2, label_smoothing, dropout, dropout_seed)``, each
        checked as that engine's ``train_epoch`` checks its arguments; the engines must be
        distinct (a repeated one is busy: RuntimeError). ``n_threads`` (>= 1) is the compiled
        engine's; NumPy runs on this thread. Returns the epoch losses, in the order of the jobs.
        """
        items = checks.items(jobs, "jobs")
        n_threads = checks.integer(n_threads, "n_threads")
        if n_threads < 1:
            fail("index", f"n_threads must be at least 1, got {n_threads}")
        epochs, engines = [], []
        for i, job in enumerate(items):
            if not isinstance(job, tuple) or len(job) != 14:
                fail("type", f"jobs[{i}] must be a tuple (engine, X, Y, sample_weight, order, "
                             "batch_size, optimizer, hyper, state, step, l2, "
                             "label_smoothing, dropout, dropout_seed)")
            engine = job[0]
            if not isinstance(engine, Engine):
                fail("type", f"jobs[{i}][0] must be a {Engine.__module__}.Engine, got "
                             f"{type(engine).__name__}")
            if any(engine is e for e in engines) or engine._running is not None:
                raise RuntimeError(BUSY)
            engines.append(engine)
            X, Y, sample_weight, order, batch_size = job[1:6]
            config, state, reg = engine._check_epoch(*job[1:])
            epochs.append(train.EpochJob(engine.network, X, Y, sample_weight, order,
                                         int(batch_size), config, reg, state, job[9]))
        with contextlib.ExitStack() as stack:
            for engine in engines:
                stack.enter_context(engine._one_call())
            train.train_epoch_many(epochs, n_threads)
        return [job.result for job in epochs]

    def _check_epoch(self, X, Y, sample_weight, order, batch_size, optimizer, hyper, state,
                     step, l2, label_smoothing, dropout, dropout_seed) -> tuple:
        """train_epoch's arguments checked: ``(config, state items, regularisers)``."""
        self._check_data(X, Y, sample_weight)
        n = X.shape[0]
        array_of(order, "order", np.int64, 1, "(n_order,)")
        bad = np.flatnonzero((order < 0) | (order >= n))
        if bad.size:
            fail("index", f"order must hold row indices of X in [0, {n}), got {order[bad[0]]} "
                          f"at position {bad[0]}")
        # (A batch size is a row count: at least one row per batch.)
        batch_size = checks.integer(batch_size, "batch_size")
        if batch_size < 1:
            fail("index", f"batch_size must be at least 1, got {batch_size}")
        optimizer = checks.code_in(optimizer, "optimizer", "an optimizer code", len(OPTIMIZERS))
        if optimizer == OPTIMIZERS["lbfgs"]:
            fail("index", f"optimizer {optimizer} (lbfgs) is a full-batch solver: call "
                          "lbfgs_step, not train_epoch")
        hyper_shape = f"({len(HYPER)},)"
        array_of(hyper, "hyper", np.float64, 1, hyper_shape)
        dim(hyper, 0, len(HYPER), "hyper", hyper_shape)
        config = OptimizerConfig.from_hyper(optimizer, hyper)
        items = self._check_state(state, config.n_slots(), f"{OPTIMIZER_NAMES[optimizer]} "
                                                           f"with momentum {config.momentum:f}")
        array_of(step, "step", np.int64, 1, "(1,)", writeable=True)
        dim(step, 0, 1, "step", "(1,)")
        reg = self._regularisers(l2, label_smoothing, dropout, dropout_seed)
        return config, items, reg

    def _check_state(self, state, slots: int, rule: str) -> list:
        """Optimizer state: ``slots`` arrays per parameter W0, b0, W1, b1, ... in their shapes;
        ``rule`` names the optimizer and what sets its slot count, for the message."""
        items = checks.items(state, "state")
        expected = 2 * len(self.weights) * slots
        if len(items) != expected:
            fail("shape", f"state must hold {expected} arrays ({slots} per parameter for "
                          f"{rule}), got {len(items)}")
        for e, a in enumerate(items):
            p = e // slots  # parameter: W_i (p = 2i) or b_i (p = 2i + 1)
            self._check_parameter_shaped(a, f"state[{e}]", p // 2, p % 2 == 0)
        return items

    def lbfgs_step(self, X: np.ndarray, Y: np.ndarray, sample_weight: Optional[np.ndarray],
                   config: np.ndarray, state: Sequence[np.ndarray], run: np.ndarray,
                   step: np.ndarray, l2: float = 0.0, label_smoothing: float = 0.0) -> float:
        """One L-BFGS step on the full batch, in place; returns the objective where it started.

        See :func:`gdcore.reference.lbfgs.lbfgs_step` and ``docs/design.md`` (``config``
        float64 laid out by ``codes.LBFGS_CONFIG``, ``state`` ``2 * history_size + 4`` arrays
        per parameter, ``run`` float64 laid out by ``codes.LBFGS_RUN``, ``step`` int64 (1,)).
        """
        self._check_data(X, Y, sample_weight)
        config_shape = f"({len(LBFGS_CONFIG)},)"
        array_of(config, "config", np.float64, 1, config_shape)
        dim(config, 0, len(LBFGS_CONFIG), "config", config_shape)
        history = float(config[LBFGS_CONFIG.index("history_size")])
        if not (1.0 <= history <= MAX_HISTORY_SIZE and history == math.floor(history)):
            fail("index", f"config[{LBFGS_CONFIG.index('history_size')}] (history_size) must be "
                          f"a whole number in [1, {MAX_HISTORY_SIZE}], got {history!r}")
        lconfig = LbfgsConfig.from_config(config)
        items = self._check_state(state, lconfig.n_slots(),
                                  f"lbfgs with history_size {lconfig.history_size}")
        run_shape = f"({len(LBFGS_RUN)},)"
        array_of(run, "run", np.float64, 1, run_shape, writeable=True)
        dim(run, 0, len(LBFGS_RUN), "run", run_shape)
        n_pairs = float(run[LBFGS_RUN.index("n_pairs")])
        newest = float(run[LBFGS_RUN.index("newest")])
        if not (0.0 <= n_pairs <= history and n_pairs == math.floor(n_pairs)
                and 0.0 <= newest < history and newest == math.floor(newest)):
            fail("index", f"run must hold whole numbers n_pairs in [0, history_size] and newest "
                          f"in [0, history_size), got {n_pairs!r} and {newest!r}")
        array_of(step, "step", np.int64, 1, "(1,)", writeable=True)
        dim(step, 0, 1, "step", "(1,)")
        with self._one_call(), np.errstate(**_QUIET):
            return lbfgs_step(self.network, X, Y, sample_weight,
                              self._regularisers(l2, label_smoothing, None, 0), lconfig, items,
                              run, step)
