"""One epoch of mini-batch gradient descent over a ``network.Network``, in place.

Twin of ``csrc/gd/train.{hpp,cpp}``: :func:`train_epoch` with the C++ argument order (the C++
``EpochData`` is spelled out as ``X, Y, sample_weight, order``; the interrupt hook is Python's
own KeyboardInterrupt) and the same four phases per batch, as in libfann's ``fann_train``:
**run** (gather the batch, forward pass), **compute the error** (batch loss and dL/dZ of the
output layer), **backpropagate** (dW, db of every layer), **update** (``optimizer_update`` on
W0, b0, W1, b1, ..., then count the step).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .network import Network
from .objective import Regularisers, objective_gradient
from .optimizers import OptimizerConfig, optimizer_update


@dataclass
class Batch:
    """A batch's inputs ``x``, targets ``y`` and sample weights ``w`` (or None)."""
    x: np.ndarray
    y: np.ndarray
    w: Optional[np.ndarray]


def gather(X: np.ndarray, Y: np.ndarray, sample_weight: Optional[np.ndarray],
           rows: np.ndarray) -> Batch:
    """The rows ``rows`` of the data, copied (the C++ reads consecutive rows in place instead;
    the values are the same)."""
    return Batch(X[rows], Y[rows], None if sample_weight is None else sample_weight[rows])


def parameters_finite(net: Network) -> bool:
    """Whether every weight and bias of ``net`` is finite."""
    return all(np.isfinite(net.layer(i).weights).all() and np.isfinite(net.layer(i).bias).all()
               for i in range(net.n_layers()))


class EpochRun:
    """One epoch of one network, a batch at a time: :func:`train_epoch`'s loop as an object,
    so that :func:`train_epoch_many` can interleave the epochs of several networks (twin of
    the C++ ``EpochRun``; the arguments are :func:`train_epoch`'s). :meth:`step` does exactly
    what one iteration of the loop does."""

    def __init__(self, net: Network, X: np.ndarray, Y: np.ndarray,
                 sample_weight: Optional[np.ndarray], order: np.ndarray, batch_size: int,
                 config: OptimizerConfig, reg: Regularisers, state: Sequence[np.ndarray],
                 step: np.ndarray) -> None:
        self.net, self.X, self.Y, self.sample_weight = net, X, Y, sample_weight
        self.order, self.batch_size, self.config, self.reg = order, batch_size, config, reg
        self.state, self.step_count = state, step
        self._start = 0            # first position in order of the next batch
        self._ended = False
        self._non_finite: Optional[float] = None  # the non-finite batch loss that ended it
        self._weighted_loss = 0.0  # sum_b loss_b w_b
        self._total_weight = 0.0   # sum_b w_b
        self._steps = 0

    def more(self) -> bool:
        """True while batches are left and the epoch has not ended (non-finite loss, end())."""
        return not self._ended and self._start < len(self.order)

    def next_rows(self) -> int:
        """The rows of the next batch."""
        return min(self.batch_size, len(self.order) - self._start)

    def advance(self) -> None:
        """Skip the next batch's rows (a lane group of the C++ core runs the batch itself)."""
        self._start += self.next_rows()

    def step(self) -> None:
        """The next batch: gather, objective and gradient, update."""
        net, step = self.net, self.step_count
        rows = self.order[self._start:self._start + self.next_rows()]
        self.advance()
        # A diverging run overflows; inf/nan is then the documented result, not a warning.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            # 1. Run: gather the batch (objective_gradient passes it forward). A batch of zero
            #    total sample weight has no gradient to follow: it is skipped (no update, no
            #    step, not in the loss).
            batch = gather(self.X, self.Y, self.sample_weight, rows)
            batch_weight = float(len(rows)) if batch.w is None else float(np.sum(batch.w))
            if not batch_weight > 0.0:
                return
            # The dropout masks are those of step t.
            t = int(step[0]) + 1
            # 2.-3. Forward, compute the error (the batch's objective and dL/dZ of the output
            #    layer) and backpropagate into the network's gradient buffers.
            loss = objective_gradient(net, batch.x, batch.y, batch.w, self.reg, t,
                                      net.weight_gradients(), net.bias_gradients())
        self.take_step(loss, batch_weight)

    def take_step(self, loss: float, batch_weight: float) -> None:
        """Finish a step whose objective is ``loss`` and whose gradient is in the network's
        gradient buffers: a non-finite loss ends the epoch before the update; else the update,
        and the step counts with the batch's total sample weight."""
        t = int(self.step_count[0]) + 1
        if not self.count_step(loss, batch_weight):
            return  # stop before this batch's update
        net, config = self.net, self.config
        dW, db = net.weight_gradients(), net.bias_gradients()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            # 4. Update every parameter in place (W0, b0, W1, b1, ...).
            n_slots, state = config.n_slots(), self.state
            for i in range(net.n_layers()):
                l = net.layer(i)
                w_state = state[(2 * i) * n_slots:(2 * i + 1) * n_slots]
                b_state = state[(2 * i + 1) * n_slots:(2 * i + 2) * n_slots]
                optimizer_update(config, t, l.weights, dW[i], w_state)
                optimizer_update(config, t, l.bias, db[i], b_state)

    def count_step(self, loss: float, batch_weight: float) -> bool:
        """``take_step`` without the update: True if the step counts, False if a non-finite
        loss ended the epoch."""
        if not math.isfinite(loss):
            self._non_finite, self._ended = loss, True
            return False
        self.step_count[0] += 1
        self._steps += 1
        self._weighted_loss += loss * batch_weight
        self._total_weight += batch_weight
        return True

    def end(self) -> None:
        """End the epoch here."""
        self._ended = True

    def result(self, interrupted: bool) -> float:
        """The epoch's loss once it ended (see :func:`train_epoch`). ``interrupted`` is the
        C++ flag of an epoch a stop ended; here KeyboardInterrupt propagates instead, and a
        loss is still given for what ran."""
        if self._non_finite is not None:
            return self._non_finite
        loss = (self._weighted_loss / self._total_weight if self._total_weight > 0.0
                else math.nan)
        # The last update may have overflowed with a finite loss: the epoch then diverged too.
        if self._steps > 0 and not parameters_finite(self.net):
            loss = math.nan
        return loss


@dataclass
class EpochJob:
    """The epoch of one network in :func:`train_epoch_many`: :func:`train_epoch`'s arguments
    and, once run, its loss in ``result``."""
    net: Network
    X: np.ndarray
    Y: np.ndarray
    sample_weight: Optional[np.ndarray]
    order: np.ndarray
    batch_size: int
    config: OptimizerConfig
    reg: Regularisers
    state: Sequence[np.ndarray]
    step: np.ndarray
    result: float = math.nan


def train_epoch_many(jobs: Sequence[EpochJob], n_threads: int) -> None:
    """:func:`train_epoch` for every job, each network exactly as its own call, interleaved
    batch by batch (round r runs batch r of every job in turn); each job's loss lands in its
    ``result``. The networks must be distinct. ``n_threads`` is the C++ thread count (the
    results do not depend on it); NumPy runs every job on this thread."""
    runs = []
    for job in jobs:
        if len(job.order) == 0 or job.batch_size <= 0:
            job.result = math.nan  # no batch: no loss
            runs.append(None)
        else:
            runs.append(EpochRun(job.net, job.X, job.Y, job.sample_weight, job.order,
                                 job.batch_size, job.config, job.reg, job.state, job.step))
    active = [run for run in runs if run is not None]
    while active:
        for run in active:
            run.step()
        active = [run for run in active if run.more()]
    for job, run in zip(jobs, runs):
        if run is not None:
            job.result = run.result(False)


def train_epoch(net: Network, X: np.ndarray, Y: np.ndarray,
                sample_weight: Optional[np.ndarray], order: np.ndarray, batch_size: int,
                config: OptimizerConfig, reg: Regularisers, state: Sequence[np.ndarray],
                step: np.ndarray) -> float:
    """One epoch; the parameters (views in ``net``), ``state`` and ``step`` change in place.

    Parameters
    ----------
    net : Network
    X : ndarray of shape (n_samples, n_inputs)
    Y : ndarray of shape (n_samples, n_outputs), or int64 (n_samples,) for cross_entropy
    sample_weight : None or ndarray of shape (n_samples,)
    order : int64 ndarray of shape (m,)
        Rows of X in the order they are visited; the batches are ``order[0:bs]``,
        ``order[bs:2bs]``, ..., the last one possibly short.
    batch_size : int
    config : OptimizerConfig
    reg : Regularisers
        Each batch's loss is its objective (:func:`objective_gradient`: label smoothing, the l2
        penalty over the batch's weight sum, the dropout masks of step ``t = step[0] + 1``).
    state : list of ndarray
        ``config.n_slots()`` arrays per parameter (W0, b0, W1, b1, ...; entry
        ``p * n_slots + s`` has the shape of parameter ``p``), all zero before the first step.
    step : int64 ndarray of shape (1,)
        Steps taken so far; incremented after each step (Adam's bias correction uses it).

    Returns
    -------
    float
        The epoch loss ``sum_b(loss_b w_b) / sum_b(w_b)``: ``loss_b`` is the batch's loss in its
        forward pass, before its update, and ``w_b`` its sample count or its sum of sample
        weights (accumulated in Python floats). A batch whose weights sum to zero is skipped
        (no update, no step). If a batch loss is not finite, the epoch stops before that
        batch's update and returns that loss. NaN if no batch had weight, or if a parameter is
        not finite after the last update.
    """
    if len(order) == 0 or batch_size <= 0:
        return math.nan  # no batch: no loss
    run = EpochRun(net, X, Y, sample_weight, order, batch_size, config, reg, state, step)
    while run.more():
        run.step()
    return run.result(False)
